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


def test_heap_allocations_large_blocks_reuse_the_heap() -> None:
    """Inside ``heap_allocations`` a 48 MiB block (above glibc's largest mmap threshold, below the
    tuned trim threshold) freed and allocated again reuses the heap: a small fraction of the page
    faults of the fresh mapping that glibc's default gives."""
    script = """
import json, resource, numpy as np
from offgen._allocator import heap_allocations, tune_allocator

def faults_of_a_second_block():
    np.ones(48 << 20, np.uint8)  # allocated, touched, freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(48 << 20, np.uint8)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

tune_allocator()  # as in training: a sampler was built
outside = faults_of_a_second_block()  # first: a block freed inside would be reused outside too
with heap_allocations() as applied:
    inside = faults_of_a_second_block()
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
        pytest.skip("not glibc")
    assert result["outside"] > 100 and result["inside"] * 10 < result["outside"], result
