"""What a sampler gathers at the positions it draws: transitions or windows.

A sampler draws positions (steps of a :class:`StepIndex`) and hands them, with the frame array the
index points into, to a :class:`Gather`; the same two gathers serve every frame source (the RAM
array, the memmap cache, a stream pool), as d3rlpy's replay buffer takes a transition picker or a
trajectory slicer. Frames are already in the requested layout (see :mod:`.frames`), so a gather
only indexes them.

Frame stacks: the stack of step ``t`` holds frames ``t-k+1 .. t`` of the same episode, oldest
first; positions before the episode's first frame repeat the first frame (no zero frames, no frames
of the previous episode). ``next_obs`` is the stack of step ``t + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.index import I64, StepIndex
from offgen.data.sampling.recycle import FrameTaker

__all__ = ["Gather", "Pad", "TransitionGather", "WindowGather", "window_offsets"]

Pad = Literal["left", "right"]
B_co = TypeVar("B_co", TransitionBatch, WindowBatch, covariant=True)


class Gather(Protocol[B_co]):
    """Builds one batch from the steps at ``positions`` of ``index`` in ``frames``."""

    @property
    def kind(self) -> str:
        """``"transitions"`` or ``"windows"`` (recorded in state dicts)."""
        ...

    def __call__(self, frames: npt.NDArray[np.uint8], index: StepIndex, positions: I64) -> B_co:
        """The batch of ``len(positions)`` rows."""
        ...


def _stack(frame: I64, first: I64, k: int) -> I64:
    """Frame indices ``(..., k)`` of the stacks ending at ``frame``, clamped at ``first``."""
    if k == 1:
        return frame
    back = np.arange(k - 1, -1, -1, dtype=np.int64)
    out: I64 = np.maximum(frame[..., None] - back, first[..., None])
    return out


@dataclass(frozen=True, eq=False)
class TransitionGather:
    """Transitions ``(obs, action, reward, next_obs, terminated, truncated)``.

    Attributes:
        actions: All actions of the store, by store step.
        rewards: All rewards of the store, by store step.
        frame_stack: Frames per observation (``k``).
        take: Gathers frames into recycled arrays (:mod:`.recycle`).
    """

    kind: ClassVar[str] = "transitions"
    actions: npt.NDArray[Any]
    rewards: npt.NDArray[np.float32]
    frame_stack: int = 1
    take: FrameTaker = field(default_factory=FrameTaker, repr=False)

    def __call__(
        self, frames: npt.NDArray[np.uint8], index: StepIndex, positions: I64
    ) -> TransitionBatch:
        """Transitions at step ``positions`` of ``index``."""
        ep, t, step = index.locate(positions)
        frame = index.frame[positions]
        first = index.ep_frame[ep]
        last = t == index.ep_length[ep] - 1
        return TransitionBatch(
            obs=self.take(frames, _stack(frame, first, self.frame_stack)),
            action=self.actions[step].astype(np.int64),
            reward=self.rewards[step].astype(np.float32, copy=False),
            next_obs=self.take(frames, _stack(frame + 1, first, self.frame_stack)),
            terminated=last & index.ep_terminated[ep],
            truncated=last & index.ep_truncated[ep],
            episode=index.ep_table[ep],
            timestep=t,
            source=np.zeros(len(positions), dtype=np.int64),
        )


def window_offsets(
    t: I64, length: I64, context: int, pad: Pad
) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Step-in-episode of each window slot and whether it is real.

    A window starting at step ``t`` covers steps ``t .. min(t + K, T) - 1``; a window cut short by
    the episode's end is padded on the ``pad`` side to ``K`` slots.

    Returns:
        ``(steps, mask)``, both ``(B, K)``; padded slots have ``steps == 0`` and ``mask == False``.
    """
    real = np.minimum(context, length - t)
    j = np.arange(context, dtype=np.int64)[None, :]
    offset = (
        j - (context - real)[:, None] if pad == "left" else np.broadcast_to(j, (len(t), context))
    )
    mask = (offset >= 0) & (offset < real[:, None])
    steps = np.where(mask, t[:, None] + offset, 0)
    return steps.astype(np.int64), mask


@dataclass(frozen=True, eq=False)
class WindowGather:
    """Windows of ``context`` steps with returns-to-go, timesteps and a padding mask.

    Attributes:
        actions: All actions of the store, by store step.
        rewards: All rewards of the store, by store step.
        rtg: Returns-to-go of the store, by store step (see :func:`.index.returns_to_go`).
        context: Window length ``K``.
        pad: Side padded when the episode ends inside the window (see :func:`window_offsets`).
        frame_stack: Frames per state.
        take: Gathers frames into recycled arrays (:mod:`.recycle`).

    Raises:
        ValueError: If ``context < 1`` or ``pad`` is neither ``"left"`` nor ``"right"``.
    """

    kind: ClassVar[str] = "windows"
    actions: npt.NDArray[Any]
    rewards: npt.NDArray[np.float32]
    rtg: npt.NDArray[np.float32]
    context: int
    pad: Pad = "left"
    frame_stack: int = 1
    take: FrameTaker = field(default_factory=FrameTaker, repr=False)

    def __post_init__(self) -> None:
        if self.context < 1:
            raise ValueError(f"context must be >= 1, got {self.context}")
        if self.pad not in ("left", "right"):
            raise ValueError(f"pad must be 'left' or 'right', got {self.pad!r}")

    def __call__(
        self, frames: npt.NDArray[np.uint8], index: StepIndex, positions: I64
    ) -> WindowBatch:
        """Windows starting at step ``positions`` of ``index``."""
        ep, t, _ = index.locate(positions)
        steps, mask = window_offsets(t, index.ep_length[ep], self.context, self.pad)
        first = index.ep_frame[ep][:, None]
        frame = first + steps
        states = self.take(
            frames, _stack(frame, np.broadcast_to(first, frame.shape), self.frame_stack)
        )
        states[~mask] = 0
        store_step = index.ep_step[ep][:, None] + steps
        return WindowBatch(
            states=states,
            actions=np.where(mask, self.actions[store_step], 0).astype(np.int64),
            rewards=np.where(mask, self.rewards[store_step], 0).astype(np.float32),
            returns_to_go=np.where(mask, self.rtg[store_step], 0).astype(np.float32),
            timesteps=steps,
            mask=mask,
            episode=index.ep_table[ep],
            source=np.zeros(len(positions), dtype=np.int64),
        )
