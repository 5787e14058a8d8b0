"""Storage benchmark (issue 2, performance item 5), plus legacy conversion speed.

On real Procgen frames (envpool, uniform random policy), for the same episodes:

* bytes on disk of an offgen store vs the predecessor's per-episode ``np.savez_compressed`` files
  (float32 CHW, written with :func:`offgen.data.legacy.write_npz_episode`; target: offgen <= npz);
* write speed of :class:`~offgen.data.writer.StoreWriter` (including the manifest) vs
  ``np.savez_compressed`` of the predecessor's arrays (target: offgen >= 3x faster);
* ``offgen convert`` of those ``.npz`` files vs the predecessor's way of reading them (``np.load``
  each file, cast to uint8, concatenate), with peak RSS of each.

Usage::

    python benchmarks/storage_bench.py --transitions 20000 --games coinrun,starpilot,fruitbot
    python benchmarks/storage_bench.py --transitions 1000000 --games coinrun   # full size

Prints one table per game and the ratios; ``--json`` writes the numbers too.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from offgen.data import Episode, StoreWriter, make_episode
from offgen.data.legacy import write_npz_episode

FRAME_BYTES = 64 * 64 * 3


def collect(game: str, transitions: int, seed: int = 0, num_envs: int = 8) -> list[Episode]:
    """Whole episodes of a uniform random policy until ``transitions`` steps are reached."""
    import envpool

    env = envpool.make_gymnasium(
        f"{game.capitalize()}Easy-v0", num_envs=num_envs, num_levels=200, start_level=0, seed=seed
    )
    rng = np.random.default_rng(seed)
    obs, info = env.reset()
    frames: list[list[np.ndarray]] = [[obs[i]] for i in range(num_envs)]
    actions: list[list[int]] = [[] for _ in range(num_envs)]
    rewards: list[list[float]] = [[] for _ in range(num_envs)]
    seeds = [int(s) for s in info["level_seed"]]
    resetting = [False] * num_envs
    episodes: list[Episode] = []
    total = 0
    while total < transitions:
        act = rng.integers(0, 15, num_envs)
        obs, rew, term, trunc, info = env.step(act.astype(np.int32))
        for i in range(num_envs):
            if resetting[i]:  # envpool's reset step: the next episode's first frame
                frames[i], actions[i], rewards[i] = [obs[i]], [], []
                seeds[i] = int(info["level_seed"][i])
                resetting[i] = False
                continue
            frames[i].append(obs[i])
            actions[i].append(int(act[i]))
            rewards[i].append(float(rew[i]))
            if term[i] or trunc[i]:
                episodes.append(
                    make_episode(
                        np.stack(frames[i]),
                        np.array(actions[i]),
                        np.array(rewards[i], dtype=np.float32),
                        game=game,
                        level_seed=seeds[i],
                        terminated=bool(term[i]),
                        truncated=bool(trunc[i]),
                        layout="CHW",
                        policy_id="random",
                    )
                )
                total += len(actions[i])
                resetting[i] = True
    env.close()
    return episodes


def du(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def predecessor_arrays(episode: Episode) -> dict[str, np.ndarray]:
    """The arrays the predecessor's collector held in memory and passed to np.savez_compressed."""
    steps = episode.length
    dones = np.zeros(steps, dtype=np.float32)
    dones[-1] = 1
    return {
        "observations": np.moveaxis(episode.observations, -1, 1).astype(np.float32),
        "actions": episode.actions.astype(np.int64).reshape(steps, 1),
        "rewards": episode.rewards.reshape(steps, 1),
        "dones": dones,
    }


def bench_game(game: str, transitions: int, work: Path, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    episodes = collect(game, transitions)
    steps = sum(e.length for e in episodes)
    frames = steps + len(episodes)
    result: dict[str, Any] = {
        "game": game,
        "episodes": len(episodes),
        "transitions": steps,
        "raw_uint8_bytes": frames * FRAME_BYTES,
        "collect_s": time.perf_counter() - t0,
    }

    # offgen store
    store = work / f"{game}_store"
    start = time.perf_counter()
    with StoreWriter(store, game=game) as writer:
        for episode in episodes:
            writer.write(episode)
    result["offgen_write_s"] = time.perf_counter() - start
    result["offgen_bytes"] = du(store)

    # the predecessor: np.savez_compressed of float32 CHW arrays, one file per episode. Arrays are
    # prepared outside the timed region (its collector already held them).
    npz_dir = work / f"{game}_npz"
    npz_dir.mkdir()
    elapsed = 0.0
    for index, episode in enumerate(episodes):
        arrays = predecessor_arrays(episode)
        start = time.perf_counter()
        np.savez_compressed(npz_dir / f"{index}.npz", **arrays)  # type: ignore[arg-type]
        elapsed += time.perf_counter() - start
    result["npz_write_s"] = elapsed
    result["npz_bytes"] = du(npz_dir)
    shutil.rmtree(npz_dir)

    # the same episodes as exact legacy files (names and all), then converted
    legacy = work / f"{game}_legacy"
    for index, episode in enumerate(episodes):
        write_npz_episode(legacy, episode, index)
    del episodes
    gc.collect()

    # Each in a fresh process, so peak RSS (ru_maxrss) is that of the job alone.
    seconds, peak = _measure_in_subprocess(_PREDECESSOR_LOAD, legacy, frames)
    result["predecessor_load_s"], result["predecessor_load_peak_rss"] = seconds, peak
    seconds, peak = _measure_in_subprocess(
        _CONVERT, legacy, work / f"{game}_converted", game, workers
    )
    result["convert_s"], result["convert_peak_rss"] = seconds, peak
    shutil.rmtree(legacy)
    shutil.rmtree(work / f"{game}_converted")
    shutil.rmtree(store)

    result["bytes_ratio_offgen_over_npz"] = result["offgen_bytes"] / result["npz_bytes"]
    result["write_speedup"] = result["npz_write_s"] / result["offgen_write_s"]
    result["convert_speedup"] = result["predecessor_load_s"] / result["convert_s"]
    return result


_PREDECESSOR_LOAD = """
import sys, time, numpy as np
from pathlib import Path
start = time.perf_counter()
loaded = []
for path in sorted(Path(sys.argv[1]).iterdir()):
    with np.load(path) as npz:
        loaded.append(npz["observations"].astype(np.uint8))
        _ = npz["actions"], npz["rewards"], npz["dones"]
everything = np.concatenate(loaded)
assert everything.shape[0] == int(sys.argv[2])
print(time.perf_counter() - start)
"""

_CONVERT = """
import sys, time
from offgen.data.convert import convert_legacy
result = convert_legacy(sys.argv[1], sys.argv[2], game=sys.argv[3], workers=int(sys.argv[4]),
                        progress=False)
print(result.seconds)
"""


def _measure_in_subprocess(code: str, *args: object) -> tuple[float, int]:
    """Run ``code`` in a fresh interpreter; return the seconds it prints and its peak RSS."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent.
    wrapped = code + (
        "\nfor line in open('/proc/self/status'):\n"
        "    if line.startswith('VmHWM:'):\n"
        "        print(int(line.split()[1]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapped, *map(str, args)], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[-2]), int(out[-1]) * 1024


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def report(r: dict[str, Any]) -> None:
    print(
        f"\n== {r['game']}: {r['episodes']} episodes, {r['transitions']:,} transitions "
        f"({_mb(r['raw_uint8_bytes'])} raw uint8 frames)"
    )
    print(
        f"  bytes on disk   offgen {_mb(r['offgen_bytes'])}   predecessor npz {_mb(r['npz_bytes'])}"
        f"   offgen/npz = {r['bytes_ratio_offgen_over_npz']:.3f}  (target <= 1)"
    )
    print(
        f"  write           offgen {r['offgen_write_s']:.2f} s   np.savez_compressed "
        f"{r['npz_write_s']:.2f} s   speed-up = {r['write_speedup']:.1f}x  (target >= 3)"
    )
    print(
        f"  legacy files    offgen convert {r['convert_s']:.2f} s (peak RSS "
        f"{_mb(r['convert_peak_rss'])})   predecessor load+cast+concat "
        f"{r['predecessor_load_s']:.2f} s (peak RSS {_mb(r['predecessor_load_peak_rss'])})   "
        f"speed-up = {r['convert_speedup']:.1f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--transitions", type=int, default=20_000, help="per game (full: 1000000)")
    parser.add_argument("--games", default="coinrun,starpilot,fruitbot")
    parser.add_argument("--workers", type=int, default=2, help="convert's decode threads")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: tmp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="offgen_storage_bench_", dir=args.workdir))
    print(
        f"storage benchmark: {args.transitions:,} transitions per game, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, scratch {work}"
    )
    results = []
    try:
        for game in args.games.split(","):
            results.append(bench_game(game.strip(), args.transitions, work, args.workers))
            report(results[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    ok = all(r["bytes_ratio_offgen_over_npz"] <= 1 and r["write_speedup"] >= 3 for r in results)
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
