"""Vectorised gathers of transition and window batches from a frame array and a step index.

Every function here is pure: the frames may be a RAM array, the memmap cache or a stream pool.

Frame stacks: the stack of step ``t`` holds frames ``t-k+1 .. t`` of the same episode, oldest
first; positions before the episode's first frame repeat the first frame (no zero frames, no frames
of the previous episode). ``next_obs`` is the stack of step ``t + 1``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.index import StepIndex
from offgen.data.schema import Layout

__all__ = ["Pad", "gather_transitions", "gather_windows", "window_offsets"]

Pad = Literal["left", "right"]
I64 = npt.NDArray[np.int64]


def _stack(frame: I64, first: I64, k: int) -> I64:
    """Frame indices ``(..., k)`` of the stacks ending at ``frame``, clamped at ``first``."""
    if k == 1:
        return frame
    back = np.arange(k - 1, -1, -1, dtype=np.int64)
    out: I64 = np.maximum(frame[..., None] - back, first[..., None])
    return out


def _take(frames: npt.NDArray[np.uint8], idx: I64, layout: Layout) -> npt.NDArray[np.uint8]:
    out = frames[idx]
    if layout == "CHW":
        out = np.ascontiguousarray(np.moveaxis(out, -1, -3))
    return np.asarray(out, dtype=np.uint8)


def gather_transitions(
    frames: npt.NDArray[np.uint8],
    index: StepIndex,
    positions: I64,
    actions: npt.NDArray[Any],
    rewards: npt.NDArray[np.float32],
    *,
    frame_stack: int = 1,
    layout: Layout = "HWC",
) -> TransitionBatch:
    """Transitions at step ``positions`` of ``index``.

    Args:
        frames: Frame array the index points into.
        index: The step index.
        positions: ``(B,)`` step positions in ``[0, index.num_steps)``.
        actions: All actions of the store, by store step.
        rewards: All rewards of the store, by store step.
        frame_stack: Frames per observation (``k``).
        layout: ``"HWC"`` or ``"CHW"`` frames in the batch.
    """
    ep, t, step = index.locate(positions)
    frame = index.frame[positions]
    first = index.ep_frame[ep]
    last = t == index.ep_length[ep] - 1
    return TransitionBatch(
        obs=_take(frames, _stack(frame, first, frame_stack), layout),
        action=actions[step].astype(np.int64),
        reward=rewards[step].astype(np.float32, copy=False),
        next_obs=_take(frames, _stack(frame + 1, first, frame_stack), layout),
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


def gather_windows(
    frames: npt.NDArray[np.uint8],
    index: StepIndex,
    positions: I64,
    actions: npt.NDArray[Any],
    rewards: npt.NDArray[np.float32],
    rtg: npt.NDArray[np.float32],
    *,
    context: int,
    frame_stack: int = 1,
    layout: Layout = "HWC",
    pad: Pad = "left",
) -> WindowBatch:
    """Windows of ``context`` steps starting at step ``positions`` of ``index``.

    Args:
        frames: Frame array the index points into.
        index: The step index.
        positions: ``(B,)`` positions of each window's first step.
        actions: All actions of the store, by store step.
        rewards: All rewards of the store, by store step.
        rtg: Returns-to-go of the store, by store step.
        context: Window length ``K``.
        frame_stack: Frames per state.
        layout: ``"HWC"`` or ``"CHW"``.
        pad: Side padded when the episode ends inside the window (see :func:`window_offsets`).
    """
    ep, t, _ = index.locate(positions)
    steps, mask = window_offsets(t, index.ep_length[ep], context, pad)
    first = index.ep_frame[ep][:, None]
    frame = first + steps
    states = _take(frames, _stack(frame, np.broadcast_to(first, frame.shape), frame_stack), layout)
    states[~mask] = 0
    store_step = index.ep_step[ep][:, None] + steps
    return WindowBatch(
        states=states,
        actions=np.where(mask, actions[store_step], 0).astype(np.int64),
        rewards=np.where(mask, rewards[store_step], 0).astype(np.float32),
        returns_to_go=np.where(mask, rtg[store_step], 0).astype(np.float32),
        timesteps=steps,
        mask=mask,
        episode=index.ep_table[ep],
        source=np.zeros(len(positions), dtype=np.int64),
    )
