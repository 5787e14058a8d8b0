"""Research-tooling benchmark: offline ``.wandb`` reading speed and concurrent history downloads.

1. Writes a ``.wandb`` file in WandB's format (real ``wandb_internal_pb2.Record`` protobufs in
   32 KiB checksummed blocks, rows shaped like ``wandb.log`` rows with ``_step``, ``_runtime``,
   ``_timestamp`` and two metrics) and reads run info plus two metric series back:
   target >= 100k history rows/s.
2. Downloads the histories of 100 runs from the recorded ``wandb.Api`` stand-in with a
   per-request latency, sequentially (1 worker) and concurrently: target concurrent time
   <= 1/4 of sequential.

Usage: python benchmarks/tools_bench.py [--rows 200000] [--runs 100] [--latency 0.05] [--workers 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from offgen_tools.runs.api import ApiSource
from offgen_tools.runs.datastore import write_records
from offgen_tools.runs.engine import RunQuery
from offgen_tools.runs.offline import read_history, read_run_info
from offgen_tools.testing import FakeApi, RecordedRun


def make_wandb_file(path: Path, rows: int) -> None:
    from wandb.proto import wandb_internal_pb2 as pb

    payloads = []
    run = pb.Record()
    run.num = 1
    run.run.run_id = "bench"
    run.run.project = "bench"
    run.run.display_name = "bench-run"
    item = run.run.config.update.add()
    item.key, item.value_json = "algo", '"PPO"'
    payloads.append(run.SerializeToString())
    for step in range(rows):
        rec = pb.Record()
        rec.num = step + 2
        for key, value in (
            ("reward/reward", f"{step * 0.5}"),
            ("policy_stats/avg_cost", "NaN" if step % 97 == 0 else f"{1.0 / (step + 1)}"),
            ("_timestamp", f"{1.7e9 + step * 0.01}"),
            ("_runtime", f"{step * 0.01}"),
            ("_step", f"{step}"),
        ):
            it = rec.history.item.add()
            it.nested_key.append(key)
            it.value_json = value
        payloads.append(rec.SerializeToString())
        # WandB follows every history row with a summary update of the same keys.
        summary = pb.Record()
        summary.num = step + 2
        for item in rec.history.item:
            up = summary.summary.update.add()
            up.nested_key.extend(item.nested_key)
            up.value_json = item.value_json
        payloads.append(summary.SerializeToString())
    exit_rec = pb.Record()
    exit_rec.exit.exit_code = 0
    payloads.append(exit_rec.SerializeToString())
    write_records(path, payloads)


def bench_offline(rows: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run-bench.wandb"
        make_wandb_file(path, rows)
        size = path.stat().st_size
        hist_best = info_best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            series = read_history(path, ["reward/reward", "policy_stats/avg_cost"])
            hist_best = min(hist_best, time.perf_counter() - start)
            start = time.perf_counter()
            info = read_run_info(path)
            info_best = min(info_best, time.perf_counter() - start)
        assert info.state == "finished" and len(series["reward/reward"]) == rows
    rate = rows / hist_best
    print(
        f"offline .wandb history read: {rows} rows + {rows} summary records ({size / 1e6:.1f} MB), "
        f"2 metrics in {hist_best:.3f} s -> {rate:,.0f} rows/s (target >= 100,000)"
    )
    print(
        f"offline .wandb run info (config, tags, summary of every row, state): {info_best:.3f} s "
        f"-> {rows / info_best:,.0f} rows/s; info + history {rows / (hist_best + info_best):,.0f} rows/s"
    )
    return rate


def bench_concurrency(runs: int, latency: float, workers: int) -> float:
    recorded = [
        RecordedRun(
            id=f"r{i:03d}",
            name=f"run-{i}",
            rows=[{"_step": s, "loss": float(s)} for s in range(50)],
        )
        for i in range(runs)
    ]
    times = {}
    for label, n in (("sequential", 1), ("concurrent", workers)):
        api = FakeApi(recorded, latency=latency)
        query = RunQuery(ApiSource(api, "team/proj", per_page=runs), max_workers=n)
        selected = query.select()
        start = time.perf_counter()
        reports = query.fetch(selected, ["loss"])
        times[label] = time.perf_counter() - start
        assert all(r.history is not None for r in reports)
    ratio = times["concurrent"] / times["sequential"]
    print(
        f"history download of {runs} runs at {latency * 1000:.0f} ms/request: sequential {times['sequential']:.2f} s, "
        f"{workers} workers {times['concurrent']:.2f} s -> ratio {ratio:.3f} (target <= 0.25)"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=16)
    args, _ = parser.parse_known_args()
    rate = bench_offline(args.rows)
    ratio = bench_concurrency(args.runs, args.latency, args.workers)
    ok = rate >= 100_000 and ratio <= 0.25
    print("tools benchmark:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
