"""Decode stored legacy frames (float32 CHW holding 0-255) into HWC uint8, exactly.

Float32 CHW frames go through the compiled kernel (``offgen/_decode.c``) when it was built, and
through a blocked numpy path otherwise; both give identical frames and refuse the same values.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen._compiled import compiled_kernel
from offgen.data.exact import cast_exactly
from offgen.data.legacy._errors import corrupt, reading
from offgen.data.legacy.npy_walk import FileRegion, file_identity
from offgen.data.schema import FRAME_SHAPE_CHW, FRAME_SHAPE_HWC
from offgen.errors import CorruptStoreError, SchemaError

__all__ = ["COMPILED_DECODE", "LegacyFrames", "check_frames_shape", "decode_into"]


_compiled_decode: Callable[[Any, Any, int, int], int] | None = compiled_kernel(
    "chw_float32_to_hwc_uint8"
)

COMPILED_DECODE: bool = _compiled_decode is not None
"""Whether float32 CHW frames are decoded by the compiled kernel (``offgen/_decode.c``) rather than
by numpy. Both give identical frames and reject the same values; the kernel decodes ~1.7x more
frames per second from memory (see the conversion numbers in ``docs/benchmarks.md``)."""

# Cast and check in blocks that stay in the L2 cache (768 KiB of float32 frames): each frame is
# read from memory (or the mapped file) once, every later pass hits the cache.
_BLOCK_FRAMES = 16


def check_frames_shape(obs: npt.NDArray[Any], source: Path) -> None:
    """Raise :class:`~offgen.errors.SchemaError` unless ``obs`` is ``(N, 3, 64, 64)`` or HWC."""
    if obs.ndim != 4 or obs.shape[1:] not in (FRAME_SHAPE_CHW, FRAME_SHAPE_HWC):
        raise SchemaError(
            f"{source}: observations have shape {obs.shape}, expected (T+1, 3, 64, 64)"
        )


def _not_whole_numbers(source: Path) -> SchemaError:
    return SchemaError(f"{source}: observations must hold whole numbers in [0, 255]")


def decode_into(obs: npt.NDArray[Any], out: npt.NDArray[np.uint8], source: Path) -> None:
    """Cast stored frames (CHW or HWC, any numeric dtype) into ``out`` (HWC uint8), exactly.

    Raises:
        SchemaError: If a value is not a whole number in [0, 255] (NaN and infinities included).
    """
    count = obs.shape[0]
    if count == 0:
        return
    if obs.shape[1:] == FRAME_SHAPE_HWC:
        if not cast_exactly(obs, out):
            raise _not_whole_numbers(source)
        return
    if (
        _compiled_decode is not None
        and obs.dtype == np.float32
        and obs.flags.c_contiguous
        and out.flags.c_contiguous
    ):
        if _compiled_decode(obs, out, count, FRAME_SHAPE_CHW[1] * FRAME_SHAPE_CHW[2]) >= 0:
            raise _not_whole_numbers(source)
        return
    pixels = out.reshape(count, -1, 3)
    block_shape = (min(count, _BLOCK_FRAMES), *FRAME_SHAPE_CHW)
    cast_buf = np.empty(block_shape, dtype=np.uint8)
    check = obs.dtype != np.uint8
    for start in range(0, count, _BLOCK_FRAMES):
        block = obs[start : start + _BLOCK_FRAMES]
        n = len(block)
        cast = cast_buf[:n]
        if check:
            if not cast_exactly(block, cast):
                raise _not_whole_numbers(source)
        else:
            np.copyto(cast, block)
        # CHW -> HWC one channel at a time: 2-3x faster than numpy's general transpose copy.
        flat = cast.reshape(n, 3, -1)
        for channel in range(3):
            pixels[start : start + n, :, channel] = flat[:, channel]


@dataclass(frozen=True)
class LegacyFrames:
    """A legacy episode's frames as stored, decoded on demand (a
    :class:`~offgen.data.schema.FrameSource`).

    Frames of a ``.npy`` file are read with ``pread`` in blocks of 16 (768 KiB, which stay in the L2
    cache while they are decoded) rather than through the file mapping: measured on an 81k-frame
    conversion, ~12% less CPU (1.60-1.67 against 1.82-1.90 CPU-s), since no page of the mapping
    is faulted in and unmapped again. A file that changed or shrank since it was opened is a
    :class:`~offgen.errors.CorruptStoreError`, never a crash (a mapping would raise ``SIGBUS``)
    nor a mix of two files.

    Attributes:
        stored: ``(T + 1, 3, 64, 64)`` (or HWC) frames of any numeric dtype, usually a view of the
            memory-mapped ``.npy`` file.
        source: The file, named in errors.
        region: Where ``stored`` lies in ``source`` (read from the file when set).
    """

    stored: npt.NDArray[Any]
    source: Path
    region: FileRegion | None = None

    def __len__(self) -> int:
        return int(self.stored.shape[0])

    def fill(self, start: int, out: npt.NDArray[np.uint8]) -> None:
        """Decode frames ``start .. start + len(out)`` into ``out`` (HWC uint8), checking that each
        value is a whole number in [0, 255] (:class:`~offgen.errors.SchemaError` otherwise)."""
        if self.region is None:
            decode_into(self.stored[start : start + len(out)], out, self.source)
        else:
            self._read_into(self.region, start, out)

    def decode(self) -> npt.NDArray[np.uint8]:
        """All frames, decoded into a new ``(T + 1, 64, 64, 3)`` uint8 array."""
        out = np.empty((len(self), *FRAME_SHAPE_HWC), dtype=np.uint8)
        self.fill(0, out)
        return out

    def _read_into(self, region: FileRegion, start: int, out: npt.NDArray[np.uint8]) -> None:
        frame_shape = self.stored.shape[1:]
        frame_bytes = self.stored[0].nbytes
        block = np.empty((min(len(out), _BLOCK_FRAMES), *frame_shape), dtype=self.stored.dtype)
        raw = block.reshape(-1).view(np.uint8).data
        with reading(self.source, "cannot read its frames"):
            fd = os.open(self.source, os.O_RDONLY)
        try:
            if file_identity(os.fstat(fd)) != region.identity:
                raise CorruptStoreError(
                    f"{self.source}: the file changed while it was being converted; run the "
                    "conversion again (it resumes where it stopped)"
                )
            for first in range(0, len(out), _BLOCK_FRAMES):
                count = min(_BLOCK_FRAMES, len(out) - first)
                wanted = count * frame_bytes
                position = region.offset + (start + first) * frame_bytes
                with reading(self.source, "cannot read its frames"):
                    got = os.preadv(fd, [raw[:wanted]], position)
                if got != wanted:
                    raise corrupt(self.source, "its frames end before the header says")
                decode_into(block[:count], out[first : first + count], self.source)
        finally:
            os.close(fd)
