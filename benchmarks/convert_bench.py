"""Benchmark: converting a downloaded legacy archive into an offgen store.

Targets (issue 4): peak RSS <= 1.5 GB whatever the archive size, and >= 3x faster than the
predecessor's way of reading the same episodes (``np.load(allow_pickle=True)`` of every file, cast
to uint8, concatenate everything in RAM).

Real Procgen frames (envpool coinrun, random policy) are written as the predecessor's pickled
``.npy`` files (float32 CHW) and packed into ``coinrun.tar.xz``; then, each in its own process
(so peak RSS is measured separately):

* ``extract``: offgen's safe streaming extraction of the archive;
* ``offgen``: :func:`offgen.data.convert.convert_legacy` of the extracted folder;
* ``predecessor``: load every file with numpy, cast, concatenate.

Run at two sizes (``--transitions`` and twice that) to show memory does not grow with size.

Timing: each child imports what it needs first (numpy for the predecessor's way; offgen's import
is timed on its own and shown in a separate column, since it is a fixed cost that real 1M archives
make negligible), then times the work alone. The two conversions alternate ``--repeats`` times per
size and the table shows medians, with the range of the per-pair speed-ups: the predecessor's read
is dominated by page faults and swings by up to 2x between identical runs. Each child also reports
its CPU seconds (all threads); a run cannot finish faster than its CPU time spread over every core,
which bounds the speed-up (last column).

Usage::

    python benchmarks/convert_bench.py --transitions 20000 [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np


def _collect(transitions: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    import envpool

    env = envpool.make_gymnasium(
        "CoinrunEasy-v0", num_envs=1, num_levels=200, start_level=0, seed=seed
    )
    rng = np.random.default_rng(seed)
    obs, _info = env.reset()
    episodes: list[dict[str, np.ndarray]] = []
    frames, actions, rewards = [obs[0]], [], []
    total = 0
    while total < transitions:
        action = int(rng.integers(0, 15))
        obs, reward, term, trunc, _info = env.step(np.array([action]))
        frames.append(obs[0])
        actions.append(action)
        rewards.append(float(reward[0]))
        if term[0] or trunc[0]:
            t = len(actions)
            episodes.append(
                {
                    "observations": np.stack(frames).astype(
                        np.float32
                    ),  # CHW float32 like the predecessor
                    "actions": np.array(actions, dtype=np.int64)[:, None],
                    "rewards": np.array(rewards, dtype=np.float32)[:, None],
                    "dones": np.eye(1, t, t - 1, dtype=np.float32)[0],
                }
            )
            total += t
            obs, *_ = env.step(np.array([0]))
            frames, actions, rewards = [obs[0]], [], []
    return episodes


def _write_legacy(episodes: list[dict[str, np.ndarray]], folder: Path, copies: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    index = steps = 0
    for _ in range(copies):
        for ep in episodes:
            t = len(ep["actions"])
            ret = float(ep["rewards"].sum())
            name = f"20230101T000000_{index}_{t}_{index % 200}_{ret:.2f}.npy"
            np.save(folder / name, np.array(ep, dtype=object), allow_pickle=True)
            index += 1
            steps += t
    return steps


def _child(mode: str, src: Path, dst: Path) -> None:
    imported = time.perf_counter()
    if mode == "extract":
        from offgen.hub.extract import safe_extract
    elif mode == "offgen":
        from offgen.data.convert import convert_legacy
    import_s = time.perf_counter() - imported
    cpu_start = _cpu_seconds()
    started = time.perf_counter()
    if mode == "extract":
        safe_extract(src, dst, reserve=0)
    elif mode == "offgen":
        convert_legacy(src, dst, game="coinrun", dataset="expert_1M", progress=False)
    elif mode == "predecessor":
        files = sorted(src.glob("*.npy"))
        obs, act, rew, done = [], [], [], []
        for f in files:
            d = np.load(f, allow_pickle=True).item()
            obs.append(d["observations"].astype(np.uint8))
            act.append(d["actions"])
            rew.append(d["rewards"])
            done.append(d["dones"])
        all_obs = np.concatenate(obs)
        np.concatenate(act), np.concatenate(rew), np.concatenate(done)
        assert all_obs.dtype == np.uint8
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_start
    print(
        json.dumps({"seconds": seconds, "cpu": cpu, "import_s": import_s, "peak_rss": _peak_rss()})
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss() -> int:
    # VmHWM restarts at exec; ru_maxrss would include the parent's memory inherited at fork.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _run(mode: str, src: Path, dst: Path) -> dict[str, float]:
    shutil.rmtree(dst, ignore_errors=True)
    # As offgen's CLI sets it: numpy's OpenBLAS threads would otherwise spin at import. Neither
    # side does BLAS work; the predecessor's read is single-threaded, so it only helps offgen's
    # two-core pipeline.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(src), str(dst)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transitions", type=int, default=20_000, help="size of the small run")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per size")
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="offgen-convert-bench-"))
    episodes = _collect(args.transitions)
    rows = []
    try:
        for copies in (1, 2):
            case = work / f"x{copies}"
            shutil.rmtree(case, ignore_errors=True)
            steps = _write_legacy(episodes, case / "files" / "coinrun", copies)
            archive = case / "coinrun.tar.xz"
            with (
                lzma.open(archive, "wb", preset=1) as xz,
                tarfile.open(fileobj=xz, mode="w") as tar,
            ):
                tar.add(case / "files" / "coinrun", arcname="coinrun")
            ext = _run("extract", archive, case / "extracted")
            source = case / "extracted" / "coinrun"
            pairs = [
                (_run("offgen", source, case / "store"), _run("predecessor", source, case / "none"))
                for _ in range(args.repeats)
            ]
            conv = _medians([c for c, _ in pairs])
            base = _medians([b for _, b in pairs])
            speedups = [b["seconds"] / c["seconds"] for c, b in pairs]
            legacy_bytes = sum(f.stat().st_size for f in (case / "extracted" / "coinrun").iterdir())
            store_bytes = sum(f.stat().st_size for f in (case / "store").rglob("*") if f.is_file())
            rows.append(
                {
                    "transitions": steps,
                    "legacy_MB": legacy_bytes / 1e6,
                    "archive_MB": archive.stat().st_size / 1e6,
                    "store_MB": store_bytes / 1e6,
                    "extract_s": ext["seconds"],
                    "extract_rss_MB": ext["peak_rss"] / 1e6,
                    "offgen_s": conv["seconds"],
                    "offgen_rss_MB": conv["peak_rss"] / 1e6,
                    "predecessor_s": base["seconds"],
                    "predecessor_rss_MB": base["peak_rss"] / 1e6,
                    "speedup": statistics.median(speedups),
                    "speedup_min": min(speedups),
                    "speedup_max": max(speedups),
                    "import_s": conv["import_s"],
                    "with_import": base["seconds"] / (conv["seconds"] + conv["import_s"]),
                    "ceiling": base["seconds"] * (os.cpu_count() or 1) / conv["cpu"],
                    "offgen_cpu": conv["cpu"],
                }
            )
            shutil.rmtree(case)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"medians of {args.repeats} alternating runs; cores: {os.cpu_count()}")
    print("| transitions | legacy .npy | .tar.xz | store | extract s (RSS) | offgen convert s (RSS) "
          "| offgen CPU s | predecessor read s (RSS) | speed-up (range) | with offgen's import "
          "| CPU ceiling |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['transitions']:,} | {r['legacy_MB']:.0f} MB | {r['archive_MB']:.0f} MB | "
            f"{r['store_MB']:.0f} MB | {r['extract_s']:.1f} ({r['extract_rss_MB']:.0f} MB) | "
            f"{r['offgen_s']:.2f} ({r['offgen_rss_MB']:.0f} MB) | {r['offgen_cpu']:.2f} | "
            f"{r['predecessor_s']:.2f} ({r['predecessor_rss_MB']:.0f} MB) | "
            f"{r['speedup']:.2f}x ({r['speedup_min']:.2f}-{r['speedup_max']:.2f}) | "
            f"{r['with_import']:.2f}x (+{r['import_s']:.2f} s) | {r['ceiling']:.2f}x |"
        )


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


if __name__ == "__main__":
    main()
