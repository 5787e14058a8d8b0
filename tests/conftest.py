"""Fixtures shared by every offgen test.

Every test runs with ``OFFGEN_HOME`` (and HF / WandB homes) pointed at a temporary directory, so no
test reads or writes the real cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from offgen.data import Episode, make_episode


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("offgen_home")
    monkeypatch.setenv("OFFGEN_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("OFFGEN_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield home


def random_episode(
    rng: np.random.Generator, length: int, game: str = "coinrun", **kw: object
) -> Episode:
    """An episode of random frames (for format tests; real frames come from ``procgen_episodes``)."""
    return make_episode(
        rng.integers(0, 256, (length + 1, 64, 64, 3), dtype=np.uint8),
        rng.integers(0, 15, length),
        rng.standard_normal(length).astype(np.float32),
        game=game,
        level_seed=int(rng.integers(0, 200)),
        **kw,  # type: ignore[arg-type]
    )


def _collect_procgen(game: str, num_episodes: int, seed: int) -> list[Episode]:
    """Real Procgen episodes from envpool with a uniform random policy (true final frames)."""
    envpool = pytest.importorskip("envpool")
    env = envpool.make_gymnasium(
        f"{game.capitalize()}Easy-v0", num_envs=1, num_levels=200, start_level=0, seed=seed
    )
    rng = np.random.default_rng(seed)
    obs, info = env.reset()
    episodes: list[Episode] = []
    frames = [obs[0]]
    actions: list[int] = []
    rewards: list[float] = []
    seed_of_episode = int(info["level_seed"][0])
    while len(episodes) < num_episodes:
        action = int(rng.integers(0, 15))
        obs, reward, terminated, truncated, info = env.step(np.array([action]))
        frames.append(obs[0])
        actions.append(action)
        rewards.append(float(reward[0]))
        if terminated[0] or truncated[0]:
            episodes.append(
                make_episode(
                    np.stack(frames),
                    np.array(actions),
                    np.array(rewards, dtype=np.float32),
                    game=game,
                    level_seed=seed_of_episode,
                    terminated=bool(terminated[0]),
                    truncated=bool(truncated[0]),
                    layout="CHW",
                    policy_id="random",
                )
            )
            obs, _, _, _, info = env.step(np.array([0]))  # envpool's reset step
            frames, actions, rewards = [obs[0]], [], []
            seed_of_episode = int(info["level_seed"][0])
    return episodes


@pytest.fixture(scope="session")
def procgen_episodes() -> list[Episode]:
    """Twelve real coinrun episodes (random policy), collected once per test session."""
    return _collect_procgen("coinrun", 12, seed=7)
