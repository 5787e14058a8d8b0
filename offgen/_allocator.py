"""Keeping batch buffers out of fresh ``mmap`` calls (glibc only).

A transition batch of 256 frames is a 3 MiB array, allocated and freed once per batch. glibc's
``malloc`` serves blocks above ``M_MMAP_THRESHOLD`` (128 KiB until the process has freed a large
block) with a fresh ``mmap`` and unmaps them on ``free``, so every batch faults in and zeroes its
pages again: measured on a 1M-transition memmap cache, a fresh process sampled ~90k transitions/s
against ~570k/s once the threshold was raised (see ``docs/benchmarks.md``). Whether a process
happened to free a large block first decided which of the two a user saw.

:func:`tune_allocator` raises the threshold to glibc's ceiling (32 MiB on 64-bit) and the trim
threshold above it, once per process, when a sampler is built, a legacy conversion starts (each
decoded episode is a fresh ~10 MB array: untuned, zeroing its new pages took ~8% of the
conversion's CPU time) or an evaluation starts (batched inference allocates activation buffers of
several MB per call: bfloat16 IMPALA inference at batch 64 ran at 4.4k frames/s untuned against
6.6k tuned; fp32 was unaffected, measured). Memory is still returned to the system by ``free`` of
larger blocks and by trimming above 64 MiB of free heap top. Set ``OFFGEN_MALLOC_TUNING=0`` to leave the allocator
alone. Elsewhere (musl, macOS) it does nothing.

:func:`release_free_memory` hands memory that is free but still held by glibc back to the system
(``malloc_trim``). glibc returns only the top of each heap on ``free``; a collection that kept and
freed thousands of frame batches from several threads left ~1.1 GB of free but resident memory in
the process after it returned (measured: 1,671 MiB resident after a 300k-step collection, 581 MiB
after the trim). The collector calls it when it finishes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
from collections.abc import Iterator
from typing import Any

__all__ = [
    "MMAP_THRESHOLD",
    "TRIM_THRESHOLD",
    "heap_allocations",
    "release_free_memory",
    "tune_allocator",
]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_DEFAULT_MMAP_MAX = 65536  # glibc's DEFAULT_MMAP_MAX
MMAP_THRESHOLD = 32 << 20  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit glibc: mallopt refuses more
TRIM_THRESHOLD = 64 << 20

_done: bool | None = None


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds once per process (see the module docstring).

    Returns:
        Whether the thresholds are set (False: not glibc, refused, or ``OFFGEN_MALLOC_TUNING=0``).
    """
    global _done
    if _done is None:
        _done = _apply()
    return _done


def release_free_memory() -> bool:
    """Return free heap memory to the system (glibc ``malloc_trim``; elsewhere a no-op).

    Returns:
        Whether any memory was released.
    """
    libc = _glibc()
    if libc is None:
        return False
    trim = libc.malloc_trim
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0) == 1)


@contextlib.contextmanager
def heap_allocations() -> Iterator[bool]:
    """While training: every allocation from glibc's heap, none from a fresh ``mmap``.

    Why: a training update's largest activations are above glibc's highest mmap threshold (32 MiB;
    the first stage of an IMPALA update at batch 256 outputs 67 MB), so every update mapped them
    afresh and faulted in and zeroed their pages again. Measured on one BC learner fed the same
    batch: updates took 1.5-2.6 s, drifting, and 0.42-0.46 s with this on (after the same ~8
    warm-up updates). With ``M_MMAP_MAX = 0`` freed blocks stay in the heap for the next update
    (the heap top is still trimmed above 64 MiB free). The setting is process state, so it is
    restored (glibc's default, 65,536 mappings) on exit. Yields whether it is in effect (False:
    not glibc, or ``OFFGEN_MALLOC_TUNING=0``).
    """
    mallopt = _mallopt() if os.environ.get("OFFGEN_MALLOC_TUNING", "1") != "0" else None
    applied = mallopt is not None and mallopt(_M_MMAP_MAX, 0) == 1
    try:
        yield applied
    finally:
        if applied and mallopt is not None:
            mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)


def _mallopt() -> Any | None:
    libc = _glibc()
    if libc is None:
        return None
    try:
        mallopt = libc.mallopt
    except AttributeError:
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _apply() -> bool:
    if os.environ.get("OFFGEN_MALLOC_TUNING", "1") == "0":
        return False
    mallopt = _mallopt()
    if mallopt is None:
        return False
    # Trim first: glibc ties the trim threshold to twice the mmap threshold only while it adjusts
    # them itself; an explicit mmap threshold turns that adjustment off.
    trimmed = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and trimmed)
