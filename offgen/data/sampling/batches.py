"""Batch types returned by the samplers: frozen dataclasses of numpy arrays."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["Batch", "TransitionBatch", "WindowBatch", "concat_batches"]


@dataclass(frozen=True)
class TransitionBatch:
    """A batch of ``B`` random transitions.

    Attributes:
        obs: Frames at step ``t``: ``(B, H, W, C)`` (``layout="HWC"``) or ``(B, C, H, W)``; with
            ``frame_stack=k > 1`` a stack axis is inserted after ``B``: ``(B, k, ...)``, oldest first.
        action: ``(B,)`` int64 actions.
        reward: ``(B,)`` float32 rewards.
        next_obs: Frames at step ``t + 1`` of the same episode, shaped like ``obs``.
        terminated: ``(B,)`` bool, true only at the last step of an episode that terminated.
        truncated: ``(B,)`` bool, true only at the last step of an episode that was truncated.
        episode: ``(B,)`` int64 table position (in the store) of each transition's episode.
        timestep: ``(B,)`` int64 step index ``t`` within the episode.
        source: ``(B,)`` int64 component index in a mixture (all zeros otherwise).

    ``observations``, ``actions``, ``rewards`` and ``next_observations`` name the same arrays in the
    plural vocabulary of :class:`~offgen.data.Episode`, :class:`WindowBatch` and
    ``OffgenDataset.to_dict`` (the short field names are kept: they are what every training loop
    written against offgen reads, and the torch dict keys).
    """

    obs: npt.NDArray[np.uint8]
    action: npt.NDArray[np.int64]
    reward: npt.NDArray[np.float32]
    next_obs: npt.NDArray[np.uint8]
    terminated: npt.NDArray[np.bool_]
    truncated: npt.NDArray[np.bool_]
    episode: npt.NDArray[np.int64]
    timestep: npt.NDArray[np.int64]
    source: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.action.shape[0])

    @property
    def observations(self) -> npt.NDArray[np.uint8]:
        """``obs`` under the episodes' name."""
        return self.obs

    @property
    def actions(self) -> npt.NDArray[np.int64]:
        """``action`` under the episodes' name."""
        return self.action

    @property
    def rewards(self) -> npt.NDArray[np.float32]:
        """``reward`` under the episodes' name."""
        return self.reward

    @property
    def next_observations(self) -> npt.NDArray[np.uint8]:
        """``next_obs`` under the D4RL name."""
        return self.next_obs


@dataclass(frozen=True)
class WindowBatch:
    """A batch of ``B`` sequence windows of ``K`` steps (Decision Transformer / BCT).

    Padded positions hold zeros and ``mask == False``.

    Attributes:
        states: ``(B, K, H, W, C)`` uint8 (or ``(B, K, C, H, W)``; ``(B, K, k, ...)`` with a frame
            stack of ``k``).
        actions: ``(B, K)`` int64.
        rewards: ``(B, K)`` float32.
        returns_to_go: ``(B, K)`` float32: the (discounted, ``gamma=1`` by default) sum of rewards
            from that step to the end of its episode.
        timesteps: ``(B, K)`` int64 step index within the episode.
        mask: ``(B, K)`` bool, true at real steps, false at padding.
        episode: ``(B,)`` int64 table position (in the store) of each window's episode.
        source: ``(B,)`` int64 component index in a mixture (all zeros otherwise).
    """

    states: npt.NDArray[np.uint8]
    actions: npt.NDArray[np.int64]
    rewards: npt.NDArray[np.float32]
    returns_to_go: npt.NDArray[np.float32]
    timesteps: npt.NDArray[np.int64]
    mask: npt.NDArray[np.bool_]
    episode: npt.NDArray[np.int64]
    source: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.actions.shape[0])


Batch = TransitionBatch | WindowBatch
B = TypeVar("B", TransitionBatch, WindowBatch)


def concat_batches(batches: list[B], sources: list[int] | None = None) -> B:
    """Concatenate batches of one type along the batch axis.

    Args:
        batches: Batches of the same type and trailing shapes.
        sources: If given, the ``source`` of every row of ``batches[i]`` is set to ``sources[i]``.
    """
    if not batches:
        raise ValueError("concat_batches needs at least one batch")
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(batches[0]):
        fields[f.name] = np.concatenate([getattr(b, f.name) for b in batches])
    if sources is not None:
        fields["source"] = np.concatenate(
            [np.full(len(b), s, dtype=np.int64) for b, s in zip(batches, sources, strict=True)]
        )
    return type(batches[0])(**fields)
