"""The allocator tuning: batch buffers come from the heap instead of a fresh mmap per batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from offgen.data import OffgenDataset
from sampling.conftest import mixed_episodes, write_store

CHILD = """
import json, resource, sys
from offgen.data import OffgenDataset
from offgen.data.sampling.allocator import tune_allocator
ds = OffgenDataset.open(sys.argv[1])
sampler = ds.transitions(256, strategy="ram", seed=0, progress=False)
for _ in range(5):
    next(sampler)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    next(sampler)
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


def test_batches_reuse_heap_memory_instead_of_faulting_in_fresh_pages(tmp_path: Path) -> None:
    ds: OffgenDataset = write_store(tmp_path / "store", mixed_episodes(0))
    tuned = _faults(ds.store.location, "1")
    untuned = _faults(ds.store.location, "0")
    assert tuned["tuned"] and not untuned["tuned"]
    # 40 batches of two 3 MiB frame arrays: ~60k fresh pages when each is a new mmap.
    assert untuned["faults"] > 20_000, untuned
    assert tuned["faults"] < untuned["faults"] / 10, (tuned, untuned)
