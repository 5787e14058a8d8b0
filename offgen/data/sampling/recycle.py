"""Batch frame arrays recycled once nothing but the sampler refers to them.

A window batch of 512 x 10 frames is a 63 MB array, above glibc's largest ``mmap`` threshold
(32 MiB, see :mod:`offgen._allocator`), so each fresh one is a fresh mapping whose ~15k pages
fault in and are zeroed while the gather writes them. Measured here (a 100k-frame array in RAM):
window batches (K=10, B=512) came at 37k windows/s into fresh arrays and at 68k/s into a reused
one; transition batches (B=256, 3 MiB, already reused by glibc's heap) at 661k against 690k/s.

An array is handed out again only when its reference count says that the pool alone holds it: a
batch the caller still holds, a view of it, or a tensor made from it with ``torch.from_numpy``
keeps its array out of reuse, so a batch is never overwritten under its user. (Only code that
keeps a raw pointer without a Python reference, e.g. ``__array_interface__``'s address, could see
it change; offgen does not.)
"""

from __future__ import annotations

import mmap
import sys
import threading

import numpy as np
import numpy.typing as npt

from offgen._compiled import compiled_kernel
from offgen.data.sampling.index import I64

__all__ = ["FrameTaker"]

_will_need_rows = compiled_kernel("will_need_rows")

# The pool's list, the loop variable and getrefcount's own argument.
_UNUSED_REFCOUNT = 3


class FrameTaker:
    """Gathers rows of a frame array into recycled output arrays (see the module docstring).

    Args:
        keep: Arrays kept for reuse (a prefetcher with batches in flight holds several; those
            beyond ``keep`` are allocated fresh and freed as before).
    """

    def __init__(self, keep: int = 6) -> None:
        self._keep = keep
        self._arrays: list[npt.NDArray[np.uint8]] = []
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, int]:
        # A sampler sent to DataLoader workers: each process recycles its own arrays.
        return {"keep": self._keep}

    def __setstate__(self, state: dict[str, int]) -> None:
        self._keep, self._arrays, self._lock = state["keep"], [], threading.Lock()

    def __call__(self, frames: npt.NDArray[np.uint8], index: I64) -> npt.NDArray[np.uint8]:
        """``frames[index]`` (``index`` of any shape), written into a recycled array.

        Raises:
            IndexError: If an index is outside ``[0, len(frames))``.
        """
        if index.size and (index.min() < 0 or index.max() >= len(frames)):
            raise IndexError(f"frame index outside [0, {len(frames)})")
        out = self._array((*index.shape, *frames.shape[1:]), frames.dtype)
        _read_ahead(frames, index)
        # mode="clip" (the indices are checked above): with "raise" numpy buffers `out` and copies
        # it again, which ran at the speed of a fresh array.
        np.take(frames, index, axis=0, out=out, mode="clip")
        return out

    def _array(self, shape: tuple[int, ...], dtype: np.dtype[np.uint8]) -> npt.NDArray[np.uint8]:
        with self._lock:
            evictable = -1
            for i in range(len(self._arrays)):  # not enumerate: its tuple holds a reference too
                array = self._arrays[i]
                if sys.getrefcount(array) == _UNUSED_REFCOUNT:
                    if array.shape == shape and array.dtype == dtype:
                        return array
                    evictable = i
            fresh: npt.NDArray[np.uint8] = np.empty(shape, dtype=dtype)
            if len(self._arrays) < self._keep:
                self._arrays.append(fresh)
            elif evictable >= 0:
                self._arrays[evictable] = fresh
            return fresh


def _read_ahead(frames: npt.NDArray[np.uint8], index: I64) -> None:
    """Ask the kernel to read the rows a gather is about to copy, all at once, if ``frames`` is a
    file mapping (the memmap frame cache); see ``will_need_rows`` in ``offgen/_decode.c``.

    Why: rows the page cache no longer holds otherwise come in one synchronous page fault at a
    time. On this project's VM, which reclaims cold page-cache pages by itself, a 512 x 10 window
    batch took 1.26-1.29 s to gather from a cache gone cold and 0.05 s with the rows advised
    first. Arrays in memory are left alone (the advice would only cost system calls).
    """
    if _will_need_rows is None or index.size == 0 or not _file_mapped(frames):
        return
    rows = np.ascontiguousarray(index, dtype=np.int64).reshape(-1)
    _will_need_rows(frames, rows, frames.strides[0])


def _file_mapped(frames: npt.NDArray[np.uint8]) -> bool:
    """Whether ``frames`` is a C-contiguous view of an ``mmap`` (np.memmap or a frombuffer)."""
    if not frames.flags.c_contiguous:
        return False
    base: object = frames
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):  # np.frombuffer(mapping)
        base = base.obj
    return isinstance(base, mmap.mmap)
