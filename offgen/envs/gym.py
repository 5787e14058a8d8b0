"""Procgen games as single gymnasium environments: ``gymnasium.make("offgen/coinrun-v0")``.

Importing this module registers ``offgen/<game>-v0`` for the 16 games (``gymnasium.make`` also
imports it itself given ``"offgen.envs.gym:offgen/coinrun-v0"``). Each is one envpool Procgen
environment with HWC ``uint8`` observations (the stores' layout) and 15 discrete actions; the level
range is a split name (``split="train"``) or ``start_level`` / ``num_levels``, as in ``EnvSpec``.
Minari datasets exported by offgen record these ids, so their ``recover_environment()`` works.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from offgen._optional import require
from offgen.envs.procgen import EnvSpec, make_env, resolve_distribution_mode
from offgen.registry import GAMES

gym = require("gymnasium", "collect")
_Env: Any = gym.Env

__all__ = ["ProcgenEnv", "env_id", "register_envs"]


def env_id(game: str) -> str:
    """The gymnasium id of a game, e.g. ``"offgen/coinrun-v0"``."""
    return f"offgen/{game}-v0"


class ProcgenEnv(_Env):  # type: ignore[misc]
    """One Procgen environment (envpool) with the gymnasium single-environment API.

    Args:
        game: Procgen game.
        split: Level split name (``train``, ``validation``, ``test``, ``full``, ``level_K``); ignored
            when ``start_level`` / ``num_levels`` are given.
        start_level: First level seed.
        num_levels: Number of levels (0: all).
        distribution_mode: ``easy`` (the published data), ``hard``, ...
        seed: envpool seed until ``reset(seed=...)`` gives another.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        game: str,
        *,
        split: str = "train",
        start_level: int | None = None,
        num_levels: int | None = None,
        distribution_mode: str = "easy",
        seed: int = 0,
    ) -> None:
        mode = resolve_distribution_mode(distribution_mode)
        spec = EnvSpec.from_split(game, split, mode)
        if start_level is not None or num_levels is not None:
            spec = EnvSpec(
                spec.game,
                mode,
                spec.start_level if start_level is None else start_level,
                spec.num_levels if num_levels is None else num_levels,
                split=None,
            )
        self.procgen = spec
        self.observation_space = gym.spaces.Box(0, 255, (64, 64, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(15)
        self._seed = seed
        self._env: Any = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.uint8], dict[str, Any]]:
        """Start an episode; a ``seed`` restarts the level sequence from that seed."""
        super().reset(seed=seed)
        if seed is not None or self._env is None:
            self.close()
            self._seed = self._seed if seed is None else int(seed)
            self._env = make_env(self.procgen, 1, self._seed)
        obs, info = self._env.reset()
        return obs[0], {"level_seed": int(info["level_seed"][0])}

    def step(self, action: int) -> tuple[npt.NDArray[np.uint8], float, bool, bool, dict[str, Any]]:
        """One step (call :meth:`reset` after an episode ends)."""
        obs, reward, terminated, truncated, info = self._env.step(np.asarray([int(action)]))
        return (
            obs[0],
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            {"level_seed": int(info["level_seed"][0])},
        )

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


def register_envs() -> None:
    """Register ``offgen/<game>-v0`` for every game (idempotent)."""
    for game in GAMES:
        if env_id(game) not in gym.envs.registry:
            gym.register(
                id=env_id(game),
                entry_point="offgen.envs.gym:ProcgenEnv",
                kwargs={"game": game},
            )


register_envs()
