"""Collection benchmark: collector throughput against bare envpool, policy overhead, memory.

Measures, in one run (so the ratios compare like with like on a shared machine):

1. random policy, 64 envs: ``offgen.collect.collect`` into a store vs bare envpool stepping, both
   end to end (environment creation included) (target >= 0.7x);
2. IMPALA CNN policy, 64 envs: the collector vs the same engine loop with writing disabled
   (target >= 0.9x);
3. peak RSS (process, psutil) during a long random-policy collection;
4. collector steps/s for 1, 8 and 64 environments.

Usage: ``python benchmarks/collect_bench.py [--size small|full]`` (full: 1M transitions for the
memory run, as the issue asks; small: a reduced size for busy machines).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from offgen.collect import collect, run_episodes
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    args = parser.parse_args()
    size = SIZES[args.size]
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        bare = bare_envpool(64, size["random"])
        coll = collector_rate(64, size["random"], RandomPolicy(), tmp)
        rows.append(("random, 64 envs: bare envpool", f"{bare:,.0f} steps/s", ""))
        rows.append(
            (
                "random, 64 envs: collect into store",
                f"{coll:,.0f} steps/s",
                f"{coll / bare:.2f}x (target >= 0.7x)",
            )
        )
        policy = TorchPolicy(build_impala(), policy_id="impala")
        nowrite = engine_rate_no_writing(64, size["cnn"], policy)
        withwrite = collector_rate(64, size["cnn"], policy, tmp)
        rows.append(("IMPALA, 64 envs: loop, writing disabled", f"{nowrite:,.0f} steps/s", ""))
        rows.append(
            (
                "IMPALA, 64 envs: collect into store",
                f"{withwrite:,.0f} steps/s",
                f"{withwrite / nowrite:.2f}x (target >= 0.9x)",
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
    print(f"| measurement (size={args.size}) | value | ratio / note |")
    print("|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
