"""The memmap frame cache: built once, reused, invalidated when the store changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures.assertions import Reference
from fixtures.factories import DatasetFactory, EpisodeFactory

from offgen.data import StoreWriter
from offgen.data.dataset import OffgenDataset
from offgen.data.sampling.cache import cache_location, frame_cache_exists
from offgen.data.sampling.strategy import StrategyChoice, choose_strategy, parse_bytes


def test_cache_under_offgen_home_built_once_and_reused(small_ds: OffgenDataset) -> None:
    where = cache_location(small_ds.store)
    assert where.is_relative_to(Path(os.environ["OFFGEN_HOME"]) / "cache")
    assert not frame_cache_exists(small_ds.store)
    small_ds.transitions(strategy="memmap", progress=False)
    npy = where / "observations.npy"
    assert frame_cache_exists(small_ds.store)
    stamp = npy.stat().st_mtime_ns, npy.stat().st_ino
    again = OffgenDataset.open(small_ds.store.location)
    sampler = again.transitions(strategy="auto", progress=False)
    assert sampler.strategy.strategy == "memmap"  # auto prefers an existing cache
    assert (npy.stat().st_mtime_ns, npy.stat().st_ino) == stamp
    frames = np.load(npy, mmap_mode="r")
    assert frames.shape == (small_ds.store.num_frames_stored, 64, 64, 3)
    np.testing.assert_array_equal(frames[:10], small_ds.store.read_frames(0, 10))
    assert not list(where.glob(".*tmp*"))


def test_cache_invalidated_after_append(
    tmp_path: Path, episode_factory: EpisodeFactory, dataset_factory: DatasetFactory
) -> None:
    path = tmp_path / "store"
    episodes = episode_factory.mixed(1, count=10)
    ds = dataset_factory(path, episodes[:6])
    ds.transitions(strategy="memmap", progress=False)
    old = cache_location(ds.store)
    assert old.is_dir()
    with StoreWriter(path, game="coinrun", mode="append") as writer:
        for ep in episodes[6:]:
            writer.write(ep)
    ds2 = OffgenDataset.open(path)
    assert ds2.store.fingerprint != ds.store.fingerprint
    assert not frame_cache_exists(ds2.store)
    sampler = ds2.transitions(256, strategy="memmap", progress=False)
    assert not old.exists()  # the stale cache of the same store is removed
    assert cache_location(ds2.store).is_dir()
    batch = next(sampler)
    assert batch.episode.max() >= 6  # the appended episodes are sampled
    Reference(ds2).check_transitions(batch)


def test_one_cache_per_local_store_whatever_the_path_spelling(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    episode_factory: EpisodeFactory,
    dataset_factory: DatasetFactory,
) -> None:
    path = tmp_path / "store"
    episodes = episode_factory.mixed(3, count=8)
    dataset_factory(path, episodes[:5])
    (tmp_path / "link").symlink_to(path, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    spellings = ["store", "./store/", str(path), f"{path}/../store", "link", f"file://{path}"]
    opened = [OffgenDataset.open(s) for s in spellings]
    assert {ds.store.canonical_location for ds in opened} == {str(path.resolve())}
    assert len({ds.store.fingerprint for ds in opened}) == 1
    assert len({cache_location(ds.store) for ds in opened}) == 1

    relative, absolute = opened[0], opened[2]
    next(relative.transitions(8, strategy="memmap", progress=False))  # built through "store"
    assert frame_cache_exists(absolute.store)  # and found through the absolute path
    sampler = absolute.transitions(8, strategy="auto", progress=False)
    assert sampler.strategy.strategy == "memmap"
    frames_root = cache_location(absolute.store).parent
    assert [p.name for p in frames_root.iterdir() if p.is_dir()] == [
        cache_location(absolute.store).name
    ]

    # A new version built through another spelling replaces the old cache (same store).
    old = cache_location(relative.store)
    with StoreWriter(path, game="coinrun", mode="append") as writer:
        for ep in episodes[5:]:
            writer.write(ep)
    newer = OffgenDataset.open(str(path))
    Reference(newer).check_transitions(
        next(newer.transitions(32, strategy="memmap", progress=False))
    )
    assert not old.exists()
    assert [p.name for p in frames_root.iterdir() if p.is_dir()] == [
        cache_location(newer.store).name
    ]

    # A different store is a different cache even with equal content.
    twin = dataset_factory(tmp_path / "twin", episodes)
    assert twin.store.fingerprint != newer.store.fingerprint


def test_corrupt_cache_is_rebuilt(small_ds: OffgenDataset) -> None:
    small_ds.transitions(strategy="memmap", progress=False)
    npy = cache_location(small_ds.store) / "observations.npy"
    with open(npy, "r+b") as handle:
        handle.truncate(npy.stat().st_size - 100)
    assert not frame_cache_exists(small_ds.store)
    fresh = OffgenDataset.open(small_ds.store.location)
    Reference(fresh).check_transitions(next(fresh.transitions(strategy="memmap", progress=False)))


def test_memmap_keeps_private_memory_low(
    tmp_path: Path, dataset_factory: DatasetFactory, episode_factory: EpisodeFactory
) -> None:
    """Sampling from a 1.2 GB... here 100k-frame-sized cache must not copy it into RssAnon."""
    ds = dataset_factory(tmp_path / "big", episode_factory.mixed(2, count=24), shard_frames=256)
    ds.transitions(strategy="memmap", progress=False)
    code = f"""
import resource, numpy as np
from offgen.data.dataset import OffgenDataset
def anon():
    for line in open('/proc/self/status'):
        if line.startswith('RssAnon'):
            return int(line.split()[1]) * 1024
ds = OffgenDataset.open({str(tmp_path / "big")!r})
before = anon()
s = ds.transitions(512, strategy='memmap', progress=False)
for _ in range(200):
    next(s)
frames = s.frames
assert isinstance(frames, np.memmap) or isinstance(frames.base, np.memmap) or frames.base is not None
print(anon() - before)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    grown = int(out.stdout.strip().splitlines()[-1])
    assert grown < 64 << 20  # batches and indexes only; the frames stay in the page cache


def test_choose_strategy() -> None:
    kw = {"store_bytes": 10 << 30, "cache_exists": False, "cache_root": Path("/tmp")}
    assert (
        choose_strategy("auto", selected_bytes=1 << 30, memory_budget="2G", **kw).strategy == "ram"
    )
    got = choose_strategy(
        "auto", selected_bytes=4 << 30, memory_budget="2G", disk_budget="20G", **kw
    )
    assert got.strategy == "memmap"
    got = choose_strategy(
        "auto", selected_bytes=4 << 30, memory_budget="2G", disk_budget="5G", **kw
    )
    assert got.strategy == "stream" and "fit neither" in got.reason
    assert choose_strategy("stream", selected_bytes=1, **kw) == StrategyChoice(
        "stream", "requested"
    )
    exists = {**kw, "cache_exists": True}
    assert choose_strategy("auto", selected_bytes=1, **exists).strategy == "memmap"
    assert parse_bytes("1.5G") == int(1.5 * 2**30) and parse_bytes("512MiB") == 512 << 20
    with pytest.raises(ValueError, match="size in bytes"):
        parse_bytes("lots")


def test_env_memory_budget_forces_stream(
    small_ds: OffgenDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFGEN_MEMORY_BUDGET", "1K")
    monkeypatch.setenv("OFFGEN_DISK_BUDGET", "1K")
    sampler = small_ds.transitions(strategy="auto", unit_frames=64)
    assert sampler.strategy.strategy == "stream"


@pytest.mark.parametrize(
    "available_x_file, populated, warmed",
    [(3.0, True, False), (1.5, False, True), (1.0, False, False)],
)
def test_cache_mapping_follows_the_available_memory(
    small_ds: OffgenDataset,
    monkeypatch: pytest.MonkeyPatch,
    available_x_file: float,
    populated: bool,
    warmed: bool,
) -> None:
    """A cache under half the available memory is mapped with every page present (MAP_POPULATE);
    under 90% it is a plain memmap warmed by a background read; larger, a plain memmap. All give
    exactly the store's frames, read-only."""
    import types

    import psutil

    from offgen.data.sampling import cache as cache_module
    from offgen.data.sampling.cache import cache_location, open_frame_cache

    open_frame_cache(small_ds.store, progress=False)  # built at its real size first
    size = (cache_location(small_ds.store) / "observations.npy").stat().st_size
    available = types.SimpleNamespace(available=int(size * available_x_file))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: available)
    warming: list[Path] = []
    monkeypatch.setattr(cache_module, "start_warming", warming.append)
    frames = open_frame_cache(small_ds.store, progress=False)
    assert isinstance(frames, np.memmap) is not populated
    assert [p.name for p in warming] == (["observations.npy"] if warmed else [])
    n = small_ds.store.num_frames_stored
    assert frames.shape == (n, 64, 64, 3)
    np.testing.assert_array_equal(frames[n - 5 :], small_ds.store.read_frames(n - 5, n))
    with pytest.raises(ValueError):
        frames[0, 0, 0, 0] = 1
    if sys.platform == "linux":  # advised MADV_RANDOM: no 8 MiB read-around per page fault
        assert "rr" in _vm_flags(frames.ctypes.data)


def _vm_flags(address: int) -> list[str]:
    """The ``VmFlags`` of the mapping of this process that holds ``address`` (/proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                start, end = (int(x, 16) for x in head.split("-"))
                inside = start <= address < end
            elif inside and head == "VmFlags:":
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


def test_warming_reads_the_whole_file_once_per_process(tmp_path: Path) -> None:
    from offgen.data.sampling.warm import start_warming, warm_page_cache

    path = tmp_path / "frames.npy"
    path.write_bytes(bytes(range(256)) * 4099)  # not a multiple of the chunk
    assert warm_page_cache(path, chunk_bytes=4096) == 256 * 4099
    assert warm_page_cache(tmp_path / "gone.npy") == 0  # an optimisation never raises
    thread = start_warming(path)
    assert thread is not None and thread.daemon and thread.name == "offgen-cache-warm"
    thread.join(10)
    assert not thread.is_alive()
    assert start_warming(tmp_path / "." / "frames.npy") is None  # same file: started already
