"""The decoded-frame memmap cache: every frame of a store decoded once into a local ``.npy`` file.

Location: ``$OFFGEN_HOME/cache/frames/<store fingerprint>/observations.npy`` (HWC, as stored) or
``observations_chw.npy`` (CHW, built when a sampler asks for that layout, so batches need no
transpose), plus a ``meta.json``.
The fingerprint changes whenever the store's committed episodes change (an append, a rewrite), so
a stale cache is never read; building a new cache for a store deletes the caches of its earlier
fingerprints. The file is written to a temporary name and renamed when complete, under a file lock,
so concurrent processes build it once and a killed build leaves nothing that looks valid.

Reading goes through ``np.load(mmap_mode="r")``: pages live in the OS page cache (shared,
reclaimable), not in the process's private memory.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from filelock import FileLock, Timeout

from offgen._io import atomic_open, atomic_write_json
from offgen._progress import progress_bar
from offgen.data.format import now_iso
from offgen.data.sampling.frames import FRAME_BYTES, frame_shape, read_in_layout
from offgen.data.sampling.warm import start_warming
from offgen.data.schema import Layout
from offgen.data.store import OffgenStore
from offgen.errors import CorruptStoreError
from offgen.paths import cache_dir

__all__ = ["cache_location", "frame_cache_exists", "open_frame_cache"]

_FILES: dict[Layout, str] = {"HWC": "observations.npy", "CHW": "observations_chw.npy"}
_META = "meta.json"


def cache_location(store: OffgenStore) -> Path:
    """Directory of the frame cache of ``store`` (it may not exist yet)."""
    return cache_dir("frames", store.fingerprint)


def _header_size(frames: int, layout: Layout) -> int:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, _header(frames, layout))
    return buf.tell()


def _header(frames: int, layout: Layout) -> dict[str, Any]:
    return {"descr": "|u1", "fortran_order": False, "shape": (frames, *frame_shape(layout))}


def _valid(directory: Path, store: OffgenStore, layout: Layout) -> bool:
    try:
        meta = json.loads((directory / _META).read_bytes())
        size = (directory / _FILES[layout]).stat().st_size
    except (OSError, ValueError):
        return False
    frames = store.num_frames_stored
    return bool(
        meta.get("fingerprint") == store.fingerprint
        and meta.get("frames") == frames
        and size == _header_size(frames, layout) + frames * FRAME_BYTES
    )


def frame_cache_exists(store: OffgenStore, layout: Layout = "HWC") -> bool:
    """Whether a complete, current frame cache of ``store`` in ``layout`` exists."""
    return _valid(cache_location(store), store, layout)


def open_frame_cache(
    store: OffgenStore, *, layout: Layout = "HWC", progress: bool = True
) -> npt.NDArray[np.uint8]:
    """Memory-map the store's decoded frames, building the cache first if needed.

    Args:
        store: The store.
        layout: Layout of the frames (one cache file per layout).
        progress: Show a progress bar while building.

    Returns:
        A read-only ``(frames, 64, 64, 3)`` (or ``(frames, 3, 64, 64)``) uint8 memmap indexed by
        store frame number.

    Raises:
        CorruptStoreError: If the store cannot be decoded, or the cache file is unreadable.
    """
    directory = cache_location(store)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        if not _valid(directory, store, layout):
            _build(store, directory, layout, progress)
            _remove_stale(store, directory)
    path = directory / _FILES[layout]
    try:
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
        if not isinstance(loaded, np.memmap) or loaded.dtype != np.uint8:
            raise ValueError("not a uint8 .npy array")
        frames: npt.NDArray[np.uint8] = _mapping_for(path, loaded)
    except (OSError, ValueError) as exc:
        raise CorruptStoreError(
            f"{path}: frame cache unreadable ({exc}). Delete {directory} and it is rebuilt."
        ) from exc
    return frames


def _mapping_for(path: Path, loaded: np.memmap[Any, Any]) -> npt.NDArray[np.uint8]:
    """How the cache file is mapped, by its size against the memory available now.

    * under half: every page mapped at open (:func:`_populated_view`): it stays in the page cache
      beside everything else;
    * under 90%: the plain mapping, warmed into the page cache by one sequential read in the
      background (:mod:`offgen.data.sampling.warm`), so a cold cache is not read one random 4 KiB
      page per frame for the whole run;
    * larger: the plain mapping; the page cache keeps what it can.

    Every mapping is advised ``MADV_RANDOM`` (:func:`_random_access`).
    """
    import psutil

    size, available = path.stat().st_size, psutil.virtual_memory().available
    if size < available // 2:
        return _populated_view(path, loaded)
    if size < available * 0.9:
        start_warming(path)
    _random_access(getattr(loaded, "_mmap", None))  # numpy keeps its mmap object there
    return loaded


def _random_access(mapping: mmap.mmap | None) -> None:
    """Advise the kernel that ``mapping`` is read at random: no read-around on a page fault.

    Why: a fault on a page that is not in the page cache otherwise reads the device's whole
    read-ahead window around it (8 MiB on this project's machine) to serve one 12 KiB frame.
    Gathering random batches from a cache that the page cache holds only in part (an 11.5 GiB
    cache beside a large training job) then read 130-550 MB/s from disk, spent a third of the CPU
    in the kernel, and slowed an IQL update that ran beside it to 0.75x (docs/benchmarks.md).
    Sequential warming (:mod:`offgen.data.sampling.warm`) reads through ``read``, not the mapping,
    and keeps its read-ahead.
    """
    advice = getattr(mmap, "MADV_RANDOM", None)
    if mapping is None or advice is None:  # pragma: no cover - not Linux / BSD
        return
    with contextlib.suppress(OSError):  # advice only: the mapping works without it
        mapping.madvise(advice)


def _populated_view(path: Path, frames: np.memmap[Any, Any]) -> npt.NDArray[np.uint8]:
    """The same frames through a mapping whose pages are all mapped at open (``MAP_POPULATE``).

    Random batches otherwise take a page fault on every first touch of a page (three per frame),
    which halves the gather rate on a 12 GB cache until every page has been touched once. The
    pages are file-backed page cache, shared and reclaimable: they do not count as private memory.
    """
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    with open(path, "rb") as handle:
        mapping = mmap.mmap(handle.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
    _random_access(mapping)  # pages dropped later under memory pressure come back one by one
    view = np.frombuffer(mapping, dtype=np.uint8, offset=frames.offset, count=frames.size)
    return view.reshape(frames.shape)


def _build(store: OffgenStore, directory: Path, layout: Layout, progress: bool) -> None:
    name = _FILES[layout]
    directory.mkdir(parents=True, exist_ok=True)
    # Leftovers of a killed build of this layout; the other layout's file stays (it is checked on
    # its own against meta.json).
    for leftover in directory.glob(f".{name}.tmp-*"):
        leftover.unlink(missing_ok=True)
    total = store.num_frames_stored
    step = store.info.codec.shard_frames
    with (
        atomic_open(directory / name, "wb") as handle,
        progress_bar(
            total=total,
            unit="frame",
            desc="building frame cache",
            enabled=progress,
            leave=False,
        ) as bar,
    ):
        np.lib.format.write_array_header_1_0(handle, _header(total, layout))
        for start in range(0, total, step):
            block = read_in_layout(store, start, min(start + step, total), layout)
            handle.write(np.ascontiguousarray(block).data)
            bar.update(len(block))
    atomic_write_json(
        directory / _META,
        {
            "fingerprint": store.fingerprint,
            "location": store.canonical_location,
            "frames": total,
            "created": now_iso(),
        },
    )


def _remove_stale(store: OffgenStore, current: Path) -> None:
    """Delete caches of earlier versions of the same store (same location, other fingerprint)."""
    for other in current.parent.iterdir():
        if other == current or not other.is_dir():
            continue
        try:
            meta = json.loads((other / _META).read_bytes())
        except (OSError, ValueError):
            continue
        if meta.get("location") == store.canonical_location:
            # Another process may be reading it (it holds no lock then) or rebuilding it (it does):
            # skip only the latter.
            with contextlib.suppress(Timeout), FileLock(str(other) + ".lock", timeout=0):
                shutil.rmtree(other, ignore_errors=True)
