"""Collection benchmark: collector throughput against bare envpool, policy overhead, memory.

Measures, in one run (so the ratios compare like with like on a shared machine):

1. random policy, 64 envs: ``offgen.collect.collect`` into a store vs bare envpool stepping, both
   end to end (environment creation included) (target >= 0.7x);
2. IMPALA CNN policy, 64 envs: the collector vs the same engine loop with writing disabled
   (target >= 0.9x);
3. peak RSS (process, psutil) during a long random-policy collection;
4. collector steps/s for 1, 8 and 64 environments.

Fairness: the first environment a process creates loads Procgen's assets (~1.6 s here), so a
warm-up creates one and runs a short collection before anything is timed; the compared runs then
alternate (baseline, ours, baseline, ours, ...) ``--repeats`` times and the table shows the medians,
with the range of the per-pair ratios. Each run also counts the CPU seconds the process used (all
threads, user + system): a run cannot finish faster than its CPU time spread over every core, so
(baseline wall time x cores / our CPU time) bounds the ratio; the last row shows it.

Usage: ``python benchmarks/collect_bench.py [--size small|full] [--repeats N]`` (full: 1M
transitions for the memory run, as the issue asks; small: a reduced size for busy machines).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

from offgen.collect import collect
from offgen.collect.engine import run_episodes
from offgen.envs import EnvSpec, make_env
from offgen.policies import RandomPolicy, TorchPolicy, build_impala

SIZES = {
    "small": {"random": 150_000, "cnn": 4_000, "memory": 300_000, "scaling": 30_000},
    "full": {"random": 500_000, "cnn": 30_000, "memory": 1_000_000, "scaling": 200_000},
}
SPEC = EnvSpec("coinrun")


def bare_envpool(num_envs: int, steps: int) -> float:
    """Random actions, end to end like the collector (environment creation and reset included)."""
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 15, (64, num_envs)).astype(np.int32)
    start = time.perf_counter()
    env = make_env(SPEC, num_envs, seed=0)
    env.reset()
    for i in range(steps // num_envs):
        env.step(actions[i % 64])
    rate = (steps // num_envs) * num_envs / (time.perf_counter() - start)
    env.close()
    return rate


def collector_rate(num_envs: int, steps: int, policy: object, tmp: Path) -> float:
    start = time.perf_counter()
    collect(
        tmp / f"s{num_envs}_{time.time_ns()}",
        SPEC,
        policy,
        budget=steps,  # type: ignore[arg-type]
        num_envs=num_envs,
        seed=0,
        progress=False,
    )
    return steps / (time.perf_counter() - start)


def engine_rate_no_writing(num_envs: int, steps: int, policy: object) -> float:
    start = time.perf_counter()
    done = 0
    for raw in run_episodes(SPEC, num_envs=num_envs, env_seed=0, rng_key=(0, 0), policies=[policy]):  # type: ignore[list-item]
        done += raw.length
        if done >= steps:
            break
    return done / (time.perf_counter() - start)


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], float]) -> tuple[float, float]:
    """``fn``'s rate and the CPU seconds the process spent while it ran."""
    start = cpu_seconds()
    rate = fn()
    return rate, cpu_seconds() - start


def alternate(
    baseline: Callable[[], float], ours: Callable[[], float], repeats: int
) -> dict[str, float]:
    """Run ``baseline`` and ``ours`` in turn ``repeats`` times; medians and the ratio range."""
    pairs = [(timed(baseline), timed(ours)) for _ in range(repeats)]
    ratios = [o[0] / b[0] for b, o in pairs]
    return {
        "base": statistics.median(b[0] for b, _ in pairs),
        "ours": statistics.median(o[0] for _, o in pairs),
        "base_cpu": statistics.median(b[1] for b, _ in pairs),
        "ours_cpu": statistics.median(o[1] for _, o in pairs),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def peak_rss_during(fn: object) -> tuple[float, float]:
    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join()
    return peak[0] / 2**20, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per comparison")
    args = parser.parse_args()
    size = SIZES[args.size]
    rows: list[tuple[str, str, str]] = []
    per_100k = 100_000 / size["random"]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        # Warm-up: Procgen's assets, imports and the first store write, timed by neither side.
        bare_envpool(64, 20_000)
        collector_rate(64, 20_000, RandomPolicy(), tmp)
        rnd = alternate(
            lambda: bare_envpool(64, size["random"]),
            lambda: collector_rate(64, size["random"], RandomPolicy(), tmp),
            args.repeats,
        )
        rows.append(("random, 64 envs: bare envpool", f"{rnd['base']:,.0f} steps/s", ""))
        rows.append(
            (
                "random, 64 envs: collect into store",
                f"{rnd['ours']:,.0f} steps/s",
                f"{rnd['ratio']:.2f}x (pairs {rnd['ratio_min']:.2f}-{rnd['ratio_max']:.2f}; "
                "target >= 0.7x)",
            )
        )
        policy = TorchPolicy(build_impala(), policy_id="impala")
        cnn = alternate(
            lambda: engine_rate_no_writing(64, size["cnn"], policy),
            lambda: collector_rate(64, size["cnn"], policy, tmp),
            args.repeats,
        )
        rows.append(("IMPALA, 64 envs: loop, writing disabled", f"{cnn['base']:,.0f} steps/s", ""))
        rows.append(
            (
                "IMPALA, 64 envs: collect into store",
                f"{cnn['ours']:,.0f} steps/s",
                f"{cnn['ratio']:.2f}x (pairs {cnn['ratio_min']:.2f}-{cnn['ratio_max']:.2f}; "
                "target >= 0.9x)",
            )
        )
        for n in (1, 8, 64):
            rate = collector_rate(n, size["scaling"], RandomPolicy(), tmp)
            rows.append((f"random, {n} envs: collect into store", f"{rate:,.0f} steps/s", ""))
        peak, secs = peak_rss_during(
            lambda: collect(
                tmp / "memory",
                SPEC,
                RandomPolicy(),
                budget=size["memory"],
                num_envs=64,
                seed=1,
                progress=False,
            )
        )
        rows.append(
            (
                f"peak RSS, {size['memory']:,} transitions, 64 envs",
                f"{peak:,.0f} MiB",
                f"{size['memory'] / secs:,.0f} steps/s",
            )
        )
        # Our run cannot take less wall time than its CPU time spread over every core.
        cores = os.cpu_count() or 1
        ceiling = size["random"] / rnd["base"] * cores / rnd["ours_cpu"]
        rows.append(
            (
                "random, 64 envs: CPU-s per 100k steps, bare / collect",
                f"{rnd['base_cpu'] * per_100k:.2f} / {rnd['ours_cpu'] * per_100k:.2f}",
                f"ceiling on {cores} cores: {ceiling:.2f}x",
            )
        )
    print(f"| measurement (size={args.size}, medians of {args.repeats}) | value | ratio / note |")
    print("|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
