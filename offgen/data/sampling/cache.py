"""The decoded-frame memmap cache: every frame of a store decoded once into a local ``.npy`` file.

Location: ``$OFFGEN_HOME/cache/frames/<store fingerprint>/observations.npy`` plus a ``meta.json``.
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
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from offgen._io import atomic_open, atomic_write_json
from offgen.data.format import now_iso
from offgen.data.sampling.frames import FRAME_BYTES
from offgen.data.schema import FRAME_SHAPE_HWC
from offgen.data.store import OffgenStore
from offgen.errors import CorruptStoreError
from offgen.paths import cache_dir

__all__ = ["cache_location", "frame_cache_exists", "open_frame_cache"]

_FILE = "observations.npy"
_META = "meta.json"


def cache_location(store: OffgenStore) -> Path:
    """Directory of the frame cache of ``store`` (it may not exist yet)."""
    return cache_dir("frames", store.fingerprint)


def _header_size(frames: int) -> int:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, _header(frames))
    return buf.tell()


def _header(frames: int) -> dict[str, Any]:
    return {"descr": "|u1", "fortran_order": False, "shape": (frames, *FRAME_SHAPE_HWC)}


def _valid(directory: Path, store: OffgenStore) -> bool:
    try:
        meta = json.loads((directory / _META).read_bytes())
        size = (directory / _FILE).stat().st_size
    except (OSError, ValueError):
        return False
    frames = store.num_frames_stored
    return bool(
        meta.get("fingerprint") == store.fingerprint
        and meta.get("frames") == frames
        and size == _header_size(frames) + frames * FRAME_BYTES
    )


def frame_cache_exists(store: OffgenStore) -> bool:
    """Whether a complete, current frame cache exists for ``store``."""
    return _valid(cache_location(store), store)


def open_frame_cache(store: OffgenStore, *, progress: bool = True) -> npt.NDArray[np.uint8]:
    """Memory-map the store's decoded frames, building the cache first if needed.

    Args:
        store: The store.
        progress: Show a progress bar while building.

    Returns:
        A read-only ``(frames, 64, 64, 3)`` uint8 memmap indexed by store frame number.

    Raises:
        CorruptStoreError: If the store cannot be decoded, or the cache file is unreadable.
    """
    directory = cache_location(store)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        if not _valid(directory, store):
            _build(store, directory, progress)
            _remove_stale(store, directory)
    path = directory / _FILE
    try:
        frames = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CorruptStoreError(
            f"{path}: frame cache unreadable ({exc}). Delete {directory} and it is rebuilt."
        ) from exc
    assert isinstance(frames, np.ndarray)
    return frames


def _build(store: OffgenStore, directory: Path, progress: bool) -> None:
    if directory.exists():
        shutil.rmtree(directory)  # a partial or stale directory of this fingerprint
    directory.mkdir(parents=True)
    total = store.num_frames_stored
    step = int(store.info["codec"].get("shard_frames", 16384))
    with (
        atomic_open(directory / _FILE, "wb") as handle,
        tqdm(
            total=total,
            unit="frame",
            desc="building frame cache",
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        np.lib.format.write_array_header_1_0(handle, _header(total))
        for start in range(0, total, step):
            block = store.read_frames(start, min(start + step, total))
            handle.write(np.ascontiguousarray(block).data)
            bar.update(len(block))
    atomic_write_json(
        directory / _META,
        {
            "fingerprint": store.fingerprint,
            "location": store.location,
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
        if meta.get("location") == store.location:
            # Another process may be reading it (it holds no lock then) or rebuilding it (it does):
            # skip only the latter.
            with contextlib.suppress(Timeout), FileLock(str(other) + ".lock", timeout=0):
                shutil.rmtree(other, ignore_errors=True)
