"""Every transition of a selection at once, as D4RL's ``get_dataset()`` dict of numpy arrays.

The arrays are the transition gather (:class:`~offgen.data.sampling.gather.TransitionGather`) applied
to every selected step in order, over the selection's frames decoded once (the ``ram`` strategy's
decoding), so their semantics (frame stacks, ``next_observations``, episode-end flags) are the
samplers' exactly. Before anything is decoded the peak memory is estimated and a selection that
would not fit is refused with :class:`~offgen.errors.MemoryBudgetError`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import psutil

from offgen.data.sampling.build import DecodedFrames
from offgen.data.sampling.frames import FRAME_BYTES, SelectedEpisodes, frame_shape
from offgen.data.sampling.gather import TransitionGather
from offgen.data.sampling.strategy import parse_bytes
from offgen.data.schema import Layout
from offgen.errors import MemoryBudgetError

__all__ = ["PER_STEP_BYTES", "arrays_bytes", "transition_arrays"]

PER_STEP_BYTES = 8 + 4 + 1 + 1 + 8 + 8
"""Bytes per step of the arrays other than frames (action, reward, two flags, episode, timestep)."""

_CHUNK = 4096  # steps gathered per call: bounds the gather's temporary arrays


def arrays_bytes(
    episodes: SelectedEpisodes, *, frame_stack: int = 1, next_observations: bool = True
) -> int:
    """Peak bytes of :func:`transition_arrays`: the decoded frames plus the arrays returned."""
    steps = episodes.num_steps
    frame_arrays = 2 if next_observations else 1
    returned = steps * (FRAME_BYTES * frame_stack * frame_arrays + PER_STEP_BYTES)
    decoded = episodes.num_frames * FRAME_BYTES
    temporary = min(steps, _CHUNK) * FRAME_BYTES * frame_stack * 2
    return returned + decoded + temporary


def transition_arrays(
    episodes: SelectedEpisodes,
    *,
    layout: Layout = "HWC",
    frame_stack: int = 1,
    next_observations: bool = True,
    max_bytes: int | str | None = None,
    progress: bool = True,
) -> dict[str, npt.NDArray[np.generic]]:
    """Every selected step's transition, in selection order (see ``OffgenDataset.to_dict``).

    Raises:
        MemoryBudgetError: If :func:`arrays_bytes` exceeds ``max_bytes`` (default: the memory
            available now).
        ValueError: If the selection holds no steps, or ``frame_stack < 1``.
    """
    if frame_stack < 1:
        raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
    steps = episodes.num_steps
    if steps == 0:
        raise ValueError("the selection holds no steps (empty filter?); nothing to return")
    need = arrays_bytes(episodes, frame_stack=frame_stack, next_observations=next_observations)
    _check_budget(need, steps, max_bytes, next_observations)
    frames, index = DecodedFrames().get(episodes, "ram", layout, progress=progress)
    store = episodes.store
    gather = TransitionGather(store.actions, store.rewards, frame_stack)
    shape = (steps, *((frame_stack,) if frame_stack > 1 else ()), *frame_shape(layout))
    out: dict[str, npt.NDArray[np.generic]] = {
        "observations": np.empty(shape, dtype=np.uint8),
        "actions": np.empty(steps, dtype=np.int64),
        "rewards": np.empty(steps, dtype=np.float32),
        "terminals": np.empty(steps, dtype=bool),
        "timeouts": np.empty(steps, dtype=bool),
        "episode": np.empty(steps, dtype=np.int64),
        "timestep": np.empty(steps, dtype=np.int64),
    }
    if next_observations:
        out["next_observations"] = np.empty(shape, dtype=np.uint8)
    fields = {
        "observations": "obs",
        "actions": "action",
        "rewards": "reward",
        "terminals": "terminated",
        "timeouts": "truncated",
        "episode": "episode",
        "timestep": "timestep",
        "next_observations": "next_obs",
    }
    for lo in range(0, steps, _CHUNK):
        hi = min(lo + _CHUNK, steps)
        batch = gather(frames, index, np.arange(lo, hi, dtype=np.int64))
        for name, array in out.items():
            array[lo:hi] = getattr(batch, fields[name])
    return out


def _check_budget(
    need: int, steps: int, max_bytes: int | str | None, next_observations: bool
) -> None:
    if max_bytes is not None:
        limit, what = parse_bytes(max_bytes), "max_bytes"
    else:
        limit, what = int(psutil.virtual_memory().available), "the memory available now"
    if need <= limit:
        return
    smaller = " or next_observations=False," if next_observations else ","
    raise MemoryBudgetError(
        f"to_dict of {steps:,} steps needs about {need / 2**30:.2f} GiB (frames decoded once plus "
        f"the returned arrays), more than {what} ({limit / 2**30:.2f} GiB): select fewer "
        f"episodes (ds.filter, ds.split_by_levels){smaller} or sample batches with "
        "ds.transitions(...) instead"
    )
