"""Flat per-step index arrays over a set of episodes: O(1) lookup of a step's frame and episode.

Episode ``i`` of a store owns frames ``[frame_offset, frame_offset + T + 1)`` and steps
``[step_offset, step_offset + T)``. A :class:`StepIndex` maps every selected step (a *position*
``p`` in ``[0, num_steps)``) to the frame holding its observation inside some frame array (the RAM
array, the memmap cache, or a stream pool) and to its episode, so samplers gather whole batches with
vectorised numpy indexing and never scan episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["StepIndex", "returns_to_go"]

I64 = npt.NDArray[np.int64]
"""The integer array type of positions, frames and steps."""


@dataclass(frozen=True)
class StepIndex:
    """Steps of a list of episodes laid out in a frame array.

    Attributes:
        frame: ``(N,)`` int64, frame (in the frame array) of each step's observation; the next
            observation is ``frame + 1``.
        episode: ``(N,)`` int32, position of each step's episode in the per-episode arrays.
        ep_frame: ``(E,)`` int64, frame of each episode's first observation in the frame array.
        ep_length: ``(E,)`` int64 steps per episode.
        ep_step: ``(E,)`` int64, store step offset of each episode (for actions / rewards).
        ep_table: ``(E,)`` int64, table position of each episode in its store.
        ep_terminated: ``(E,)`` bool.
        ep_truncated: ``(E,)`` bool.
    """

    frame: I64
    episode: npt.NDArray[np.int32]
    ep_frame: I64
    ep_length: I64
    ep_step: I64
    ep_table: I64
    ep_terminated: npt.NDArray[np.bool_]
    ep_truncated: npt.NDArray[np.bool_]

    @classmethod
    def build(cls, rows: npt.NDArray[Any], table_positions: I64, ep_frame: I64) -> StepIndex:
        """Index the episodes ``rows`` (table rows) whose first frames sit at ``ep_frame``.

        Args:
            rows: Episode table rows (dtype ``EPISODE_FIELDS``).
            table_positions: Table position of each row in its store.
            ep_frame: Where each episode's first frame lies in the frame array.
        """
        lengths = rows["length"].astype(np.int64)
        n = int(lengths.sum())
        episode = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
        starts = np.zeros(len(rows), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        # frame = ep_frame[e] + t, where t = p - (first position of e)
        frame = np.arange(n, dtype=np.int64)
        frame += np.repeat(np.asarray(ep_frame, dtype=np.int64) - starts, lengths)
        return cls(
            frame=frame,
            episode=episode,
            ep_frame=np.asarray(ep_frame, dtype=np.int64),
            ep_length=lengths,
            ep_step=rows["step_offset"].astype(np.int64),
            ep_table=np.asarray(table_positions, dtype=np.int64),
            ep_terminated=rows["terminated"].astype(bool),
            ep_truncated=rows["truncated"].astype(bool),
        )

    @property
    def num_steps(self) -> int:
        """Steps indexed."""
        return int(self.frame.shape[0])

    @property
    def num_episodes(self) -> int:
        """Episodes indexed."""
        return int(self.ep_length.shape[0])

    def locate(self, positions: I64) -> tuple[I64, I64, I64]:
        """Episode, step-in-episode and store step of each position (vectorised, O(1) each)."""
        ep = self.episode[positions].astype(np.int64)
        t = self.frame[positions] - self.ep_frame[ep]
        return ep, t, self.ep_step[ep] + t


def returns_to_go(
    rewards: npt.NDArray[np.float32], rows: npt.NDArray[Any], gamma: float = 1.0
) -> npt.NDArray[np.float32]:
    """Return-to-go of every stored step: ``sum_{j >= t} gamma^(j - t) r_j`` within its episode.

    Args:
        rewards: All rewards of the store (indexed by store step).
        rows: The episode table rows of the episodes to cover (others are left at 0).
        gamma: Discount; ``1.0`` (the default) gives the undiscounted return-to-go DT uses.

    Returns:
        float32 array shaped like ``rewards``.
    """
    out = np.zeros(rewards.shape[0], dtype=np.float64)
    lengths = rows["length"].astype(np.int64)
    if not len(rows):
        return out.astype(np.float32)
    step0 = rows["step_offset"].astype(np.int64)
    ep = np.repeat(np.arange(len(rows)), lengths)
    firsts = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(lengths[:-1], out=firsts[1:])
    steps = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(firsts, lengths)
    steps += step0[ep]
    r = rewards[steps].astype(np.float64)
    if gamma == 1.0:
        # Reverse cumulative sum per episode from one global cumulative sum (float64: exact enough).
        csum = np.cumsum(r)
        end = csum[firsts + lengths - 1]
        out[steps] = end[ep] - csum + r
    else:
        # Sweep all episodes at once by distance from their end: max(T) vectorised steps.
        from_end = np.repeat(firsts + lengths - 1, lengths) - np.arange(len(r))
        order = np.argsort(from_end, kind="stable")
        bounds = np.searchsorted(from_end[order], np.arange(int(lengths.max()) + 1))
        acc = np.zeros(len(r), dtype=np.float64)
        for d in range(int(lengths.max())):
            idx = order[bounds[d] : bounds[d + 1]]
            acc[idx] = r[idx] + (gamma * acc[idx + 1] if d else 0.0)
        out[steps] = acc
    return out.astype(np.float32)
