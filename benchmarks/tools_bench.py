"""Research-tooling benchmark: offline ``.wandb`` reading speed and concurrent history downloads.

1. Writes a ``.wandb`` file in WandB's format (real ``wandb_internal_pb2.Record`` protobufs in
   32 KiB checksummed blocks, rows shaped like ``wandb.log`` rows with ``_step``, ``_runtime``,
   ``_timestamp`` and two metrics, each row followed by its summary update) and reads it three
   ways, reporting rows/s for each:

   a. the history read alone (``read_history``, two metric series);
   b. the run info alone (``read_run_info``: run record, config, every summary update, state);
   c. the full export read path, what an export does per file: ``OfflineSource.runs()``
      (file discovery, run info, filter) then ``OfflineSource.history()`` for two metrics,
      i.e. a + b.

   The target, >= 100k rows/s, is for (a), the history read alone. (b) and (c) are reported
   without a target; (c) is the rate an offline export actually sees.
2. Downloads the histories of 100 runs from the recorded ``wandb.Api`` stand-in with a
   per-request latency, sequentially (1 worker) and concurrently, while the stand-in answers
   every ``--fail-every``-th request with HTTP 429 (retried with backoff from ``--retry-delay``
   seconds): every history must still arrive complete; target concurrent time <= 1/4 of
   sequential.

Usage: python benchmarks/tools_bench.py [--rows 200000] [--runs 100] [--latency 0.05] [--workers 16]
                                        [--fail-every 10] [--retry-delay 0.05]
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
from offgen_tools.runs.offline import OfflineSource, read_history, read_run_info
from offgen_tools.runs.retry import RetryPolicy
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
    """Time the offline read paths; return the history-read rate (the one with a target)."""
    keys = ["reward/reward", "policy_stats/avg_cost"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run-bench.wandb"
        make_wandb_file(path, rows)
        size = path.stat().st_size
        best = {"history": float("inf"), "info": float("inf"), "export": float("inf")}
        for _ in range(3):
            start = time.perf_counter()
            series = read_history(path, keys)
            best["history"] = min(best["history"], time.perf_counter() - start)
            start = time.perf_counter()
            info = read_run_info(path)
            best["info"] = min(best["info"], time.perf_counter() - start)
            start = time.perf_counter()
            source = OfflineSource([path], project="bench")
            (run,) = list(source.runs({"state": "finished"}))
            exported = source.history(run, keys)
            best["export"] = min(best["export"], time.perf_counter() - start)
        assert info.state == "finished" and len(series["reward/reward"]) == rows
        assert run.config == {"algo": "PPO"} and len(exported["policy_stats/avg_cost"]) == rows
    rates = {k: rows / v for k, v in best.items()}
    print(
        f"offline .wandb file: {rows} history rows + {rows} summary records ({size / 1e6:.1f} MB), 2 metrics"
    )
    print(
        f"  (a) history read (read_history):                 {best['history']:.3f} s -> "
        f"{rates['history']:,.0f} rows/s  [TARGET >= 100,000 rows/s applies to this line]"
    )
    print(
        f"  (b) run info (read_run_info: config, tags, summary, state): {best['info']:.3f} s -> "
        f"{rates['info']:,.0f} rows/s  [no target]"
    )
    print(
        f"  (c) full export read path (OfflineSource.runs + history = b + a): {best['export']:.3f} s -> "
        f"{rates['export']:,.0f} rows/s  [no target; the rate an offline export sees]"
    )
    return rates["history"]


def bench_concurrency(
    runs: int, latency: float, workers: int, fail_every: int, retry_delay: float
) -> float:
    """Time history downloads with 1 and ``workers`` threads while requests hit HTTP 429."""
    recorded = [
        RecordedRun(
            id=f"r{i:03d}",
            name=f"run-{i}",
            rows=[{"_step": s, "loss": float(s)} for s in range(50)],
        )
        for i in range(runs)
    ]
    retry = RetryPolicy(base_delay=retry_delay, max_delay=max(retry_delay * 8, 0.01))
    times, limited = {}, {}
    for label, n in (("sequential", 1), ("concurrent", workers)):
        api = FakeApi(recorded, latency=latency, fail_every=fail_every)
        query = RunQuery(ApiSource(api, "team/proj", per_page=runs, retry=retry), max_workers=n)
        selected = query.select()
        before = api.rate_limited
        start = time.perf_counter()
        reports = query.fetch(selected, ["loss"])
        times[label] = time.perf_counter() - start
        limited[label] = api.rate_limited - before
        assert all(r.error is None and r.history is not None for r in reports), [
            r.error for r in reports if r.error
        ]
        assert all(
            r.history is not None
            and r.history.series["loss"].values.tolist() == [float(s) for s in range(50)]
            for r in reports
        ), "a retried history is incomplete"
        if fail_every:
            assert limited[label] > 0, "no request was rate limited"
    ratio = times["concurrent"] / times["sequential"]
    injected = (
        f"every {fail_every}th request answered 429 (retried, backoff from {retry_delay * 1000:.0f} ms)"
        if fail_every
        else "no 429 injected"
    )
    print(
        f"history download of {runs} runs at {latency * 1000:.0f} ms/request, {injected}: "
        f"sequential {times['sequential']:.2f} s ({limited['sequential']} x 429), "
        f"{workers} workers {times['concurrent']:.2f} s ({limited['concurrent']} x 429), all complete "
        f"-> ratio {ratio:.3f} (target <= 0.25)"
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
    parser.add_argument(
        "--fail-every",
        type=int,
        default=10,
        help="every N-th API request answers HTTP 429 (0: none)",
    )
    parser.add_argument("--retry-delay", type=float, default=0.05, help="first 429 backoff, s")
    args, _ = parser.parse_known_args()
    rate = bench_offline(args.rows)
    ratio = bench_concurrency(
        args.runs, args.latency, args.workers, args.fail_every, args.retry_delay
    )
    ok = rate >= 100_000 and ratio <= 0.25
    print(
        "tools benchmark:",
        "PASS" if ok else "FAIL",
        "(targets: (a) history read >= 100,000 rows/s; concurrent/sequential <= 0.25)",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
