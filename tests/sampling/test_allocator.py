"""The allocator tuning: batch buffers come from the heap instead of a fresh mmap per batch.

The child holds its last 8 batches, as a prefetcher with batches in flight does: more arrays than
the sampler recycles itself (:mod:`offgen.data.sampling.recycle`), so most batches are fresh
allocations and the allocator decides whether they fault in fresh pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.factories import DatasetFactory, EpisodeFactory

from offgen.data import OffgenDataset

CHILD = """
import json, resource, sys
from collections import deque
from offgen.data import OffgenDataset
from offgen._allocator import tune_allocator
ds = OffgenDataset.open(sys.argv[1])
sampler = ds.transitions(256, strategy="ram", seed=0, progress=False)
held = deque(maxlen=8)
for _ in range(12):  # past the 8 held: the heap has grown to its steady size
    held.append(next(sampler))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    held.append(next(sampler))
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults, "tuned": tune_allocator()}))
"""


def _faults(store: str, tuning: str) -> dict[str, int]:
    env = {**os.environ, "OFFGEN_MALLOC_TUNING": tuning}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(store)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_batches_reuse_heap_memory_instead_of_faulting_in_fresh_pages(
    tmp_path: Path, dataset_factory: DatasetFactory, episode_factory: EpisodeFactory
) -> None:
    ds: OffgenDataset = dataset_factory(tmp_path / "store", episode_factory.mixed(0))
    tuned = _faults(ds.store.location, "1")
    untuned = _faults(ds.store.location, "0")
    assert tuned["tuned"] and not untuned["tuned"]
    # 40 batches of two 3 MiB frame arrays: ~60k fresh pages when each is a new mmap (fewer:
    # the sampler recycles some arrays).
    assert untuned["faults"] > 10_000, untuned
    assert tuned["faults"] < untuned["faults"] / 10, (tuned, untuned)


RELEASE_CHILD = """
import json, sys, threading
import numpy as np
from offgen._allocator import release_free_memory, tune_allocator

tune_allocator()  # as in a process that sampled: 768 KiB blocks come from the heap, not mmap

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

# The collector's pattern: a thread allocates 768 KiB batches that another thread keeps a while
# and frees out of order, leaving free memory inside glibc's heaps that plain free() keeps.
kept = []
def produce():
    for _ in range(1500):
        kept.append(np.ones(786432, dtype=np.uint8))
thread = threading.Thread(target=produce)
thread.start()
thread.join()
del kept[::2]
del kept[: len(kept) - 10]
held = rss()
released = release_free_memory()
print(json.dumps({"held": held, "after": rss(), "released": released}))
"""


def test_release_free_memory_hands_freed_heap_memory_back() -> None:
    out = subprocess.run(
        [sys.executable, "-c", RELEASE_CHILD],
        env={**os.environ, "OFFGEN_MALLOC_TUNING": "1"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # ~1.1 GB allocated, 10 batches (~8 MB) still alive.
    assert got["released"], got
    assert got["after"] < got["held"] / 2, got


def test_heap_allocations_keep_large_blocks_out_of_mmap() -> None:
    """Inside ``heap_allocations`` a 48 MiB block (above glibc's largest mmap threshold) comes from
    the heap, where the next update reuses it; outside, glibc maps it afresh. Read from glibc's own
    count of mmapped bytes (``mallinfo2().hblkhd``): page-fault counts depend on huge pages."""
    script = """
import ctypes, json, numpy as np
from offgen._allocator import heap_allocations, tune_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
if not hasattr(libc, "mallinfo2"):
    print(json.dumps({"applied": False}))
    raise SystemExit
libc.mallinfo2.restype = MallInfo2

def mapped_bytes_while_holding_a_block():
    block = np.ones(48 << 20, np.uint8)
    mapped = libc.mallinfo2().hblkhd
    del block
    return mapped

tune_allocator()  # as in training: a sampler was built
outside = mapped_bytes_while_holding_a_block()
with heap_allocations() as applied:
    inside = mapped_bytes_while_holding_a_block()
print(json.dumps({"applied": applied, "inside": inside, "outside": outside}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "OFFGEN_MALLOC_TUNING": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    if not result["applied"]:
        pytest.skip("not glibc (>= 2.33)")
    assert result["outside"] >= 48 << 20 > result["inside"], result
