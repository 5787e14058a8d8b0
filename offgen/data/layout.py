"""Frames copied into a layout, contiguous: the one place a HWC -> CHW copy is made.

The samplers decode frames in the layout a user asks for once, so that a CHW batch is the same row
gather as a HWC one. That puts the transpose copy in the decode path, and for a stream sampler in
its read-ahead thread, where numpy's strided copy (~8 us per 64 x 64 frame, ~1.4 GB/s here) was
the bottleneck of CHW transition streams. With the compiled kernel (``offgen/_decode.c``, built by
``pip install``) the same copy takes ~1.5 us per frame and releases the GIL; without a C compiler
numpy's copy is used and gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen._compiled import compiled_kernel
from offgen.data.schema import Layout, to_layout

__all__ = ["COMPILED_TRANSPOSE", "in_layout"]


_hwc_to_chw: Callable[[Any, Any, int, int], None] | None = compiled_kernel("hwc_to_chw_uint8")

COMPILED_TRANSPOSE: bool = _hwc_to_chw is not None
"""Whether HWC -> CHW copies of uint8 frames use the compiled kernel rather than numpy."""


def in_layout(
    frames: npt.NDArray[np.uint8],
    source: Layout,
    target: Layout,
    out: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """``frames`` (``(N, ...)`` uint8 in ``source``) as a C-contiguous array in ``target``.

    Args:
        frames: Frames in the ``source`` layout.
        source: Their layout.
        target: The layout wanted.
        out: Where to write them (``(N, ...)`` in ``target``, C-contiguous); without it, frames
            already C-contiguous in ``target`` are returned as they are, not copied.

    Returns:
        ``out``, or a new (or the same) array.
    """
    if source == target and out is None and frames.flags.c_contiguous:
        return frames
    view = to_layout(frames, source, target)
    if out is None:
        out = np.empty(view.shape, dtype=frames.dtype)
    if (
        _hwc_to_chw is not None
        and source == "HWC"
        and target == "CHW"
        and frames.dtype == np.uint8
        and frames.flags.c_contiguous
        and out.flags.c_contiguous
        and out.shape == view.shape
    ):
        _hwc_to_chw(frames, out, len(frames), frames.shape[1] * frames.shape[2])
    else:
        np.copyto(out, view)
    return out
