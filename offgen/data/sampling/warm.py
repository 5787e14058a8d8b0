"""Warming a frame cache file into the page cache in the background, by one sequential read.

Why: a memmap cache larger than half the available memory is not mapped with ``MAP_POPULATE``
(see :mod:`offgen.data.sampling.cache`), and on a cold page cache every random frame a batch needs
is then a separate 4 KiB disk read, one at a time: 622 transitions/s was measured on an 11.5 GiB
cache (``docs/benchmarks.md``), far below what training consumes. Reading the file once from start
to end in a daemon thread fills the page cache at the disk's sequential speed while sampling goes
on; every frame read afterwards is a memory read. A file that would not fit in the available
memory is not warmed: reading it would only evict its own pages (and other programs') again.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["start_warming", "warm_page_cache"]

CHUNK_BYTES = 8 << 20
"""Bytes per sequential read (large enough for the disk's full sequential rate)."""

_started: set[Path] = set()
_guard = threading.Lock()


def warm_page_cache(path: Path, *, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Read ``path`` once, sequentially, so its pages are in the page cache; returns bytes read.

    The data is read into one reused buffer and dropped: only the page cache keeps it. A file
    removed or shrunk meanwhile ends the read early (the sampler holds its own mapping).
    """
    buffer = bytearray(chunk_bytes)
    view = memoryview(buffer)
    done = 0
    try:
        with open(path, "rb", buffering=0) as handle:
            while (got := handle.readinto(view)) and got > 0:
                done += got
    except OSError:
        pass  # warming is an optimisation: the mapping reads whatever is missing itself
    return done


def start_warming(path: Path) -> threading.Thread | None:
    """Warm ``path`` in a daemon thread, once per process and file; ``None`` if already started.

    The thread holds no lock the samplers use and releases the GIL while reading, so batches are
    gathered meanwhile (faster as more of the file arrives).
    """
    key = Path(os.path.realpath(path))
    with _guard:
        if key in _started:
            return None
        _started.add(key)
    thread = threading.Thread(
        target=warm_page_cache, args=(key,), name="offgen-cache-warm", daemon=True
    )
    thread.start()
    return thread
