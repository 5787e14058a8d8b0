"""Turn vectorised envpool steps into finished episodes (true final frames, level seeds, ends).

Used by the collector and by :class:`offgen.collect.rollouts.RolloutRecorder`. Follows envpool's
semantics (see :mod:`offgen.envs.procgen`): the done step carries the true final frame, and the step
after it is a reset step whose action and reward are ignored and whose observation is the next
episode's first frame.

Frames are not copied per step: the assembler keeps the batch observation array of every vectorised
step back to the oldest episode still in progress (envpool hands out a fresh array per step), and a
finished episode's frames are gathered from them in one pass. Recording a step is then bookkeeping
only; a per-step scatter of the 64 frames into per-environment buffers cost about a third of
envpool's own stepping time. Memory is bounded by the longest episode in progress: at most
``max_episode_steps + 1`` batch arrays (about 0.8 GB for 64 environments and 1000-step episodes),
never growing with the length of the collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.data.schema import StepTotals

__all__ = ["EpisodeAssembler", "RawEpisode"]

# Drop retained step arrays in batches: trimming the list's head on every step would shift it each
# time; a few extra arrays held briefly cost nothing.
_TRIM_EVERY = 32


@dataclass(frozen=True)
class RawEpisode(StepTotals):
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


class EpisodeAssembler:
    """Accumulate per-environment episodes from lockstep vectorised steps.

    Args:
        num_envs: Number of environments.
        max_steps_hint: Expected longest episode (buffers grow beyond it if needed).
        reuse_frames: Hand out finished episodes' frames in buffers that are reused by the next
            :meth:`step` (no fresh allocation per episode: on our machines the page faults of a new
            multi-megabyte array cost more than stepping the environments). Consumers must copy or
            write the frames before stepping again.
        borrow_observations: Keep the observation arrays passed to :meth:`begin` and :meth:`step`
            without copying them. Only for callers that never write into an array after passing
            it, such as envpool, which returns a fresh array on every step; otherwise (the
            default) each batch is copied once.
    """

    def __init__(
        self,
        num_envs: int,
        max_steps_hint: int = 1000,
        *,
        reuse_frames: bool = False,
        borrow_observations: bool = False,
    ) -> None:
        self.num_envs = num_envs
        self._reuse = reuse_frames
        self._borrow = borrow_observations
        self._scratch: list[npt.NDArray[np.uint8]] = []
        self._scratch_used = 0
        self._cap = max_steps_hint + 2
        self._ar = np.arange(num_envs)
        # Batch observations of the steps since the oldest episode in progress began;
        # self._steps[k] is the batch of clock self._base + k.
        self._steps: list[npt.NDArray[np.uint8]] = []
        self._base = 0
        self._first = np.zeros(num_envs, dtype=np.int64)
        """Clock of each environment's current first frame."""
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
        self._steps = [self._keep(obs)]
        self._base = self.clock
        self._first[:] = self.clock
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

    def _keep(self, obs: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        return obs if self._borrow else obs.copy()

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
        self._steps.append(self._keep(obs))
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
            self._first[new] = self.clock
            self.level_seed[new] = np.asarray(info["level_seed"], dtype=np.int64)[new]
        done = cont & (np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool))
        finished: list[RawEpisode] = []
        for i in self._ar[done]:
            finished.append(self._finish(int(i), bool(terminated[i]), bool(truncated[i])))
        self.resetting = done
        if done.any():
            # A finished environment's next first frame arrives on the next step.
            self._first[done] = self.clock + 1
        if self.clock % _TRIM_EVERY == 0:
            drop = int(self._first.min()) - self._base
            if drop > 0:
                del self._steps[:drop]
                self._base += drop
        return finished

    def _finish(self, i: int, terminated: bool, truncated: bool) -> RawEpisode:
        steps = int(self.t[i])
        frames = self._frame_buffer(steps + 1)
        start = int(self._first[i]) - self._base
        # Slices, not integer indexing: (1, 64, 64, 3) views concatenate without a reshape each.
        np.concatenate([batch[i : i + 1] for batch in self._steps[start:]], out=frames)
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

    def _grow(self) -> None:
        cap = self._actions.shape[1] * 2
        for name in ("_actions", "_rewards"):
            old = getattr(self, name)
            new = np.zeros((self.num_envs, cap), dtype=old.dtype)
            new[:, : old.shape[1]] = old
            setattr(self, name, new)
