"""The deterministic rollout engine behind collection and evaluation.

Determinism is what makes a killed collection resumable without duplicates:

* environment ``i`` plays a fixed sequence of levels (envpool, fixed seed);
* the uniforms a stochastic policy samples with come from a generator seeded by
  ``(*rng_key, env, episode ordinal)``, so an episode's actions do not depend on anything that
  happened in other environments or before a restart;
* environments step in lockstep, and finished episodes are emitted in ``(step, env)`` order.

So the stream of episodes is a pure function of the settings. On resume the collector hands the
engine a *tape* per environment: the recorded actions of the episodes already committed. The
engine replays them (no policy inference, envpool speed), checks that the replay reproduces each
committed episode's level, length and return, and continues live from there; only episodes not
yet committed are emitted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offgen.collect.assembler import EpisodeAssembler, RawEpisode
from offgen.envs.procgen import EnvSpec, make_env
from offgen.errors import CorruptStoreError
from offgen.policies.base import Policy

__all__ = ["TapeEntry", "run_episodes"]

_BLOCK = 256


@dataclass(frozen=True)
class TapeEntry:
    """A committed episode to replay on resume: its actions and what it must reproduce."""

    actions: npt.NDArray[np.uint8]
    level_seed: int
    episode_return: float
    cut: bool = False


class _Uniforms:
    """Per-(env, episode) uniform streams, served a block at a time."""

    def __init__(self, num_envs: int, key: Sequence[int]) -> None:
        self.key = [int(k) for k in key]
        self.block = np.zeros((num_envs, _BLOCK), dtype=np.float64)
        self.rngs: list[np.random.Generator | None] = [None] * num_envs

    def start(self, env: int, ordinal: int) -> None:
        rng = np.random.default_rng([*self.key, env, ordinal])
        self.rngs[env] = rng
        self.block[env] = rng.random(_BLOCK)

    def draw(self, t: npt.NDArray[np.int64], envs: npt.NDArray[np.int64]) -> None:
        """Refill the blocks of ``envs`` whose step ``t`` starts a new block."""
        for i in envs[(t[envs] % _BLOCK == 0) & (t[envs] > 0)]:
            rng = self.rngs[int(i)]
            assert rng is not None
            self.block[i] = rng.random(_BLOCK)


def run_episodes(
    spec: EnvSpec,
    *,
    num_envs: int,
    env_seed: int,
    rng_key: Sequence[int],
    policies: Sequence[Policy],
    slot_policy: npt.NDArray[np.int64] | None = None,
    tapes: Sequence[Sequence[TapeEntry]] | None = None,
    reuse_frames: bool = True,
) -> Generator[RawEpisode, None, None]:
    """Run ``policies`` in ``num_envs`` lockstep environments and yield finished episodes.

    Args:
        spec: Game, mode and levels.
        num_envs: Parallel environments.
        env_seed: envpool seed.
        rng_key: Key of the per-episode uniform streams (e.g. ``(seed, shard)``).
        policies: Behaviour policies; environment ``i`` always uses ``policies[slot_policy[i]]``.
        slot_policy: Policy index per environment (default: all use policy 0).
        tapes: Per environment, committed episodes to replay before acting live.
        reuse_frames: Yield frames in buffers reused once the generator advances (fast); pass
            False to keep the yielded episodes' frames.

    Yields:
        Finished, non-replayed episodes in ``(step, env)`` order.

    Raises:
        CorruptStoreError: If a replayed episode does not reproduce the committed one.
    """
    slots = np.zeros(num_envs, dtype=np.int64) if slot_policy is None else np.asarray(slot_policy)
    if slots.shape != (num_envs,) or slots.min() < 0 or slots.max() >= len(policies):
        raise ValueError("slot_policy must give a valid policy index for every environment")
    groups = [np.nonzero(slots == p)[0] for p in range(len(policies))]
    tape = [deque(tapes[i]) if tapes else deque() for i in range(num_envs)]
    env = make_env(spec, num_envs, env_seed)
    try:
        obs, info = env.reset()
        # envpool returns a fresh observation array on every step, so the assembler may keep them.
        asm = EpisodeAssembler(
            num_envs, spec.max_episode_steps, reuse_frames=reuse_frames, borrow_observations=True
        )
        asm.begin(obs, info)
        uniforms = _Uniforms(num_envs, rng_key)
        for i in range(num_envs):
            uniforms.start(i, 0)
        ar = np.arange(num_envs)
        actions = np.zeros(num_envs, dtype=np.int32)
        while True:
            taped = np.array([len(q) > 0 for q in tape])
            live = ~asm.resetting & ~taped
            actions[:] = 0
            t = asm.t
            if taped.any():
                for i in ar[taped & ~asm.resetting]:
                    entry = tape[i][0]
                    if t[i] >= len(entry.actions):
                        raise CorruptStoreError(
                            f"resume replay diverged: environment {i} episode {asm.ordinal[i]} ran "
                            f"past its recorded length {len(entry.actions)}. The output was "
                            "written with different settings or another envpool build; "
                            "collect into a new output or pass --overwrite."
                        )
                    actions[i] = entry.actions[t[i]]
            if live.any():
                uniforms.draw(t, ar[live])
                u = uniforms.block[ar, t % _BLOCK]
                for p, members in enumerate(groups):
                    if members.size and live[members].any():
                        # The whole slot group every time: a constant batch shape keeps the
                        # network's numerics identical between a fresh run and a resumed one.
                        out = policies[p].act(obs[members], u[members])
                        actions[members] = np.where(live[members], out, actions[members])
            obs, rewards, terminated, truncated, info = env.step(actions)
            starting = asm.resetting.copy()
            finished = asm.step(actions, obs, rewards, terminated, truncated, info)
            for i in ar[starting]:
                uniforms.start(int(i), int(asm.ordinal[i]))
                if tape[i] and int(asm.level_seed[i]) != tape[i][0].level_seed:
                    _diverged(
                        i,
                        int(asm.ordinal[i]),
                        "level seed",
                        tape[i][0].level_seed,
                        int(asm.level_seed[i]),
                    )
            for episode in finished:
                i = episode.env
                if tape[i]:
                    entry = tape[i].popleft()
                    _check_replay(episode, entry)
                    continue
                yield episode
    finally:
        env.close()


def _diverged(env: int, ordinal: int, what: str, expected: object, got: object) -> None:
    raise CorruptStoreError(
        f"resume replay diverged: environment {env} episode {ordinal} has {what} {got}, the "
        f"committed episode has {expected}. The output was written with different settings or "
        "another envpool build; collect into a new output or pass --overwrite."
    )


def _check_replay(episode: RawEpisode, entry: TapeEntry) -> None:
    if episode.length != len(entry.actions):
        _diverged(episode.env, episode.ordinal, "length", len(entry.actions), episode.length)
    if abs(episode.episode_return - entry.episode_return) > 1e-3:
        _diverged(
            episode.env, episode.ordinal, "return", entry.episode_return, episode.episode_return
        )
