"""Benchmark: random batches from a memmap frame cache whose pages are not in the page cache.

The case (``docs/benchmarks.md``, issue 14): a frame cache between half and all of the available
memory is mapped without ``MAP_POPULATE``; when its pages are cold (after a reboot, or evicted by
other work), every frame of a random batch was a separate 4 KiB disk read, one at a time: 622
transitions/s on an 11.5 GiB cache. offgen now warms such a file with one sequential read in a
background thread (:mod:`offgen.data.sampling.warm`).

Same run, same file, both cold (``posix_fadvise(DONTNEED)`` evicts its pages first): batches of
``--batch`` random frames gathered from a plain ``np.memmap`` for ``--seconds``, (a) as before and
(b) with the background warm-up started at open. Prints frames/s per second of the run and the
ratio (b)/(a) over the whole window. The file holds random bytes (content does not matter to the
page cache); it is written once and removed at the end.

Usage::

    python benchmarks/cold_cache_bench.py --gib 4 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from offgen.data.sampling.warm import start_warming

FRAME = (64, 64, 3)
FRAME_BYTES = 64 * 64 * 3


def _write(path: Path, gib: float) -> int:
    frames = int(gib * (1 << 30)) // FRAME_BYTES
    block = np.random.default_rng(0).integers(0, 256, (4096, *FRAME), dtype=np.uint8).tobytes()
    with open(path, "wb") as handle:
        for start in range(0, frames, 4096):
            handle.write(block[: min(4096, frames - start) * FRAME_BYTES])
        handle.flush()
        os.fsync(handle.fileno())
    return frames


def _evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _sample(path: Path, frames: int, batch: int, seconds: float, warm: bool) -> list[float]:
    """Frames gathered in each second of the window."""
    _evict(path)
    mapping = np.memmap(path, dtype=np.uint8, mode="r", shape=(frames, *FRAME))
    thread = start_warming(path) if warm else None
    rng = np.random.default_rng(1)
    per_second = [0.0] * int(seconds)
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        idx = np.sort(rng.integers(0, frames, batch))
        _ = mapping[idx]
        per_second[min(int(elapsed), len(per_second) - 1)] += batch
    if thread is not None:
        thread.join()
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gib", type=float, default=4.0, help="size of the cache file")
    parser.add_argument("--seconds", type=float, default=20.0, help="sampling window per mode")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="offgen-cold-") as tmp:
        path = Path(tmp) / "observations.npy"
        frames = _write(path, args.gib)
        cold = _sample(path, frames, args.batch, args.seconds, warm=False)
        warmed = _sample(path, frames, args.batch, args.seconds, warm=True)
    print(f"cache file {args.gib:g} GiB ({frames:,} frames), batches of {args.batch}, load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| second | cold memmap (frames/s) | + background warm-up (frames/s) |")
    print("|---|---|---|")
    for second, (a, b) in enumerate(zip(cold, warmed, strict=True)):
        print(f"| {second + 1} | {a:,.0f} | {b:,.0f} |")
    total_a, total_b = sum(cold), sum(warmed)
    print(f"| all {len(cold)} s | {total_a / len(cold):,.0f} | {total_b / len(cold):,.0f} "
          f"(**{total_b / total_a:.1f}x**) |")  # fmt: skip


if __name__ == "__main__":
    main()
