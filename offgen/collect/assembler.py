"""Turn vectorised envpool steps into finished episodes (true final frames, level seeds, ends).

Used by the collector and by :class:`offgen.collect.rollouts.RolloutRecorder`. Follows envpool's
semantics (see :mod:`offgen.envs.procgen`): the done step carries the true final frame, and the step
after it is a reset step whose action and reward are ignored and whose observation is the next
episode's first frame.

Frames are kept per environment in fixed chunks, so memory is bounded by the episodes in progress
(no per-step Python objects) and a finished episode is assembled with one concatenation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["EpisodeAssembler", "RawEpisode"]

_CHUNK = 64


@dataclass(frozen=True)
class RawEpisode:
    """A finished episode straight from the environment.

    Attributes:
        env: Index of the environment that produced it.
        ordinal: How many episodes that environment had finished before this one.
        clock: Step index (of the vectorised env) on which it finished.
        frames: ``(T + 1, 64, 64, 3)`` uint8 HWC, the last row the true final frame.
        actions: ``(T,)`` int64.
        rewards: ``(T,)`` float32.
        terminated: The game ended the episode.
        truncated: The game's time limit ended it.
        level_seed: The level it was played on.
    """

    env: int
    ordinal: int
    clock: int
    frames: npt.NDArray[np.uint8]
    actions: npt.NDArray[np.int64]
    rewards: npt.NDArray[np.float32]
    terminated: bool
    truncated: bool
    level_seed: int

    @property
    def length(self) -> int:
        """Steps ``T``."""
        return int(self.actions.shape[0])

    @property
    def episode_return(self) -> float:
        """Undiscounted return."""
        return float(self.rewards.sum(dtype=np.float64))


class EpisodeAssembler:
    """Accumulate per-environment episodes from lockstep vectorised steps.

    Args:
        num_envs: Number of environments.
        max_steps_hint: Expected longest episode (buffers grow beyond it if needed).
        reuse_frames: Hand out finished episodes' frames in buffers that are reused by the next
            :meth:`step` (no fresh allocation per episode: on our machines the page faults of a new
            multi-megabyte array cost more than stepping the environments). Consumers must copy or
            write the frames before stepping again.
    """

    def __init__(
        self, num_envs: int, max_steps_hint: int = 1000, *, reuse_frames: bool = False
    ) -> None:
        self.num_envs = num_envs
        self._reuse = reuse_frames
        self._scratch: list[npt.NDArray[np.uint8]] = []
        self._scratch_used = 0
        self._cap = max_steps_hint + 2
        self._ar = np.arange(num_envs)
        # An arena of frame chunks reused across episodes: fresh allocations per chunk would cost
        # a page fault per 4 KiB, which measured slower than the environment itself.
        # np.zeros maps untouched pages lazily, so sizing for the longest episodes costs address
        # space only; resident memory follows the episodes actually in progress.
        per_env = (max_steps_hint + 2) // _CHUNK + 2
        self._arena = np.zeros((num_envs * per_env, _CHUNK, 64, 64, 3), dtype=np.uint8)
        self._free = list(range(num_envs * per_env - 1, num_envs - 1, -1))
        self._current = np.arange(num_envs)
        self._chunks: list[list[int]] = [[] for _ in range(num_envs)]
        cap = max_steps_hint + 2
        self._actions = np.zeros((num_envs, cap), dtype=np.int64)
        self._rewards = np.zeros((num_envs, cap), dtype=np.float32)
        self.t = np.zeros(num_envs, dtype=np.int64)
        """Steps taken in each environment's current episode."""
        self.level_seed = np.zeros(num_envs, dtype=np.int64)
        self.ordinal = np.zeros(num_envs, dtype=np.int64)
        """Episodes each environment has finished."""
        self.resetting = np.zeros(num_envs, dtype=bool)
        """Environments whose next step is envpool's reset step."""
        self.clock = 0
        self._started = False

    def begin(self, obs: npt.NDArray[np.uint8], info: Mapping[str, Any]) -> None:
        """Start every environment's first episode from ``env.reset()``'s output."""
        self._check_obs(obs)
        for i in range(self.num_envs):
            self._release(i)
        self._arena[self._current, 0] = obs
        self.t[:] = 0
        self.level_seed[:] = np.asarray(info["level_seed"], dtype=np.int64)
        self.resetting[:] = False
        self._started = True

    def _check_obs(self, obs: npt.NDArray[Any]) -> None:
        if obs.shape != (self.num_envs, 64, 64, 3) or obs.dtype != np.uint8:
            raise ValueError(
                f"expected observations (num_envs={self.num_envs}, 64, 64, 3) uint8 HWC (make_env "
                f"asks envpool for channel_first=False), got {obs.shape} {obs.dtype}"
            )

    def step(
        self,
        actions: npt.NDArray[Any],
        obs: npt.NDArray[np.uint8],
        rewards: npt.NDArray[Any],
        terminated: npt.NDArray[Any],
        truncated: npt.NDArray[Any],
        info: Mapping[str, Any],
    ) -> list[RawEpisode]:
        """Record one vectorised step (the actions sent and what ``env.step`` returned).

        Returns:
            The episodes that finished on this step, in environment order.
        """
        if not self._started:
            raise RuntimeError("call begin(obs, info) with env.reset()'s output first")
        self._check_obs(obs)
        self.clock += 1
        self._scratch_used = 0
        new = self.resetting.copy()
        cont = ~new
        idx = self._ar[cont]
        t = self.t
        if idx.size:
            if int(t[idx].max()) + 1 >= self._actions.shape[1]:
                self._grow()
            self._actions[idx, t[idx]] = np.asarray(actions)[idx]
            self._rewards[idx, t[idx]] = np.asarray(rewards, dtype=np.float32)[idx]
            t[idx] += 1
        if new.any():
            t[new] = 0
            self.level_seed[new] = np.asarray(info["level_seed"], dtype=np.int64)[new]
        pos = t
        spill = cont & (pos % _CHUNK == 0) & (pos > 0)
        for i in self._ar[spill]:
            self._chunks[i].append(int(self._current[i]))
            self._current[i] = self._take()
        self._arena[self._current, pos % _CHUNK] = obs
        done = cont & (np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool))
        finished: list[RawEpisode] = []
        for i in self._ar[done]:
            finished.append(self._finish(int(i), bool(terminated[i]), bool(truncated[i])))
        self.resetting = done
        return finished

    def _finish(self, i: int, terminated: bool, truncated: bool) -> RawEpisode:
        steps = int(self.t[i])
        frames = self._frame_buffer(steps + 1)
        for k, chunk in enumerate([*self._chunks[i], int(self._current[i])]):
            start = k * _CHUNK
            stop = min(start + _CHUNK, steps + 1)
            frames[start:stop] = self._arena[chunk, : stop - start]
        self._release(i)
        episode = RawEpisode(
            env=i,
            ordinal=int(self.ordinal[i]),
            clock=self.clock,
            frames=frames,
            actions=self._actions[i, :steps].copy(),
            rewards=self._rewards[i, :steps].copy(),
            terminated=terminated,
            truncated=truncated and not terminated,
            level_seed=int(self.level_seed[i]),
        )
        self.ordinal[i] += 1
        return episode

    def _frame_buffer(self, count: int) -> npt.NDArray[np.uint8]:
        if not self._reuse:
            return np.empty((count, 64, 64, 3), dtype=np.uint8)
        k = self._scratch_used
        self._scratch_used += 1
        if k == len(self._scratch):
            self._scratch.append(np.zeros((self._cap, 64, 64, 3), dtype=np.uint8))
        if self._scratch[k].shape[0] < count:
            self._scratch[k] = np.zeros((count, 64, 64, 3), dtype=np.uint8)
        return self._scratch[k][:count]

    def _take(self) -> int:
        if not self._free:
            old = self._arena
            self._arena = np.concatenate([old, np.zeros_like(old)])
            self._free = list(range(len(old), len(self._arena)))
        return self._free.pop()

    def _release(self, env: int) -> None:
        """Return an environment's spilled chunks; its current chunk is reused for the next one."""
        self._free.extend(self._chunks[env])
        self._chunks[env].clear()

    def _grow(self) -> None:
        cap = self._actions.shape[1] * 2
        for name in ("_actions", "_rewards"):
            old = getattr(self, name)
            new = np.zeros((self.num_envs, cap), dtype=old.dtype)
            new[:, : old.shape[1]] = old
            setattr(self, name, new)
