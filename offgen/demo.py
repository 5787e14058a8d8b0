"""``make demo`` / ``python -m offgen.demo``: the main job on the embedded default.

Collects a small real Procgen dataset (coinrun, training levels 0-199, uniform random behaviour
policy) into the local store under ``$OFFGEN_HOME`` (default ``~/.cache/offgen``), opens it with
:func:`offgen.load`, prints its summary and card statistics (with a return histogram PNG), and
samples transition batches and DT windows with a throughput figure, then evaluates two policies
(uniform random, and a scripted one that mostly runs right and jumps) on seeded training and unseen
test levels of the dataset's own environment (:func:`offgen.evaluation.environment_of`) with
:func:`offgen.evaluation.evaluate`, printing mean and normalised returns and their paired
difference on the same levels. Finally it trains behaviour cloning on the dataset for about a minute
(``python -m baselines.train_offline``, Nature encoder, ``--bc-updates`` updates) and evaluates it
with ``python -m baselines.evaluate_offline`` on the same seeded training and test levels, printing
its normalised returns. Both are run as commands (offgen never imports ``baselines``); the step is
skipped when ``baselines`` or ``torch`` is not installed. A second run reuses the finished store
(collection is resumable and exact) and the finished BC run (``--resume`` on a finished run does
nothing), and re-evaluates it on the same levels.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.paths import offgen_home

__all__ = ["main"]

_RIGHT_UP = 8


class _RunRight:
    """Scripted coinrun baseline: RIGHT_UP half the time, else a uniform random action."""

    def __init__(self) -> None:
        self.policy_id = "run-right"
        self.metadata: dict[str, Any] = {"kind": "scripted", "p_right_up": 0.5}

    def act(self, obs: npt.NDArray[np.uint8], uniforms: npt.NDArray[np.float64]) -> Any:
        # The evaluation's seeded per-episode uniforms drive every choice: reproducible.
        other = np.minimum(((uniforms - 0.5) * 30).astype(np.int64), 14)
        return np.where(uniforms < 0.5, _RIGHT_UP, other)


def main(argv: list[str] | None = None) -> None:
    """Run the demo (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m offgen.demo", description=__doc__)
    parser.add_argument("--transitions", type=int, default=50_000, help="collection budget")
    parser.add_argument("--num-envs", type=int, default=16, help="parallel environments")
    parser.add_argument("--batches", type=int, default=200, help="batches to time")
    parser.add_argument(
        "--eval-episodes", type=int, default=12, help="evaluation episodes per split and policy"
    )
    parser.add_argument(
        "--bc-updates",
        type=int,
        default=1200,
        help="BC gradient updates (about a minute on 2 cores; 0 skips the BC step)",
    )
    args = parser.parse_args(argv)

    import offgen
    from offgen.cli.data import summarize
    from offgen.collect import collect
    from offgen.envs.procgen import EnvSpec
    from offgen.policies.base import RandomPolicy

    store = offgen_home() / "demo" / f"coinrun_random_{args.transitions}"
    print(f"1. collecting {args.transitions:,} coinrun transitions into {store}")
    result = collect(
        store,
        EnvSpec.from_split("coinrun", "train"),
        RandomPolicy(),
        budget=args.transitions,
        num_envs=args.num_envs,
        seed=0,
        dataset="demo_random",
    )
    state = "already complete, reused" if result.already_complete else f"{result.seconds:.1f} s"
    print(f"   {result.episodes} episodes, {result.transitions:,} transitions ({state})")

    print("\n2. offgen.load(...) and its summary (also: offgen info PATH)")
    ds = offgen.load(store)
    for key, value in summarize(ds.store).items():
        if not isinstance(value, dict | list):
            print(f"   {key:<22}{value}")

    from offgen.hub.card import measure_store, return_histogram

    stats = measure_store(store)
    returns, seeds = stats["returns"], stats["level_seeds"]
    print(
        f"   card statistics: return mean {returns['mean']:.2f} (median {returns['median']:.2f}, "
        f"min {returns['min']:.2f}, max {returns['max']:.2f}); {seeds['unique']} of "
        f"{seeds['num_levels']} training levels seen; {stats['compression_ratio']:.1f}x compression"
    )
    png = return_histogram(stats, store.parent / f"{store.name}_returns.png")
    print(f"   return histogram: {png}")

    print("\n3. sampling (memmap strategy: decoded once, in CHW, into a reusable cache)")
    sampler = ds.transitions(batch_size=256, seed=0, strategy="memmap", layout="CHW")
    batch = next(sampler)
    print(
        f"   transition batch: obs {batch.obs.shape} {batch.obs.dtype}, "
        f"next_obs {batch.next_obs.shape}, action {batch.action.shape}"
    )
    start = time.perf_counter()
    for _ in range(args.batches):
        next(sampler)
    rate = args.batches * 256 / (time.perf_counter() - start)
    print(f"   {rate:,.0f} transitions/s (batch 256, one process)")
    windows = ds.windows(context=10, batch_size=512, seed=0, strategy="memmap", layout="CHW")
    wbatch = next(windows)
    start = time.perf_counter()
    for _ in range(max(1, args.batches // 10)):
        next(windows)
    wrate = max(1, args.batches // 10) * 512 / (time.perf_counter() - start)
    print(
        f"   DT windows: states {wbatch.states.shape}, returns-to-go {wbatch.returns_to_go.shape}"
        f"; {wrate:,.0f} windows/s"
    )
    _evaluate(ds, args.eval_episodes)
    _train_bc(store, args.bc_updates, args.eval_episodes)
    print(
        "\nnext: `offgen evaluate --help`, `offgen list`, `offgen info PATH`, `offgen verify PATH --replay 3`, "
        "`offgen-collect --help`, `offgen-download --help`, `offgen-train-offline --help`; docs in "
        "docs/."
    )


def _evaluate(ds: Any, episodes: int) -> None:
    from offgen.evaluation import compare, environment_of, evaluate
    from offgen.policies.base import RandomPolicy

    env = environment_of(ds)  # the dataset's own game, mode and training levels (info.json)
    levels = env.train_levels
    print(
        f"\n4. evaluation on the dataset's environment ({env.game}, training levels "
        f"{levels.start_level}-{levels.start_level + levels.num_levels - 1}) and unseen test "
        f"levels: {episodes} seeded episodes per split, the same levels for both policies"
    )
    reports = []
    for policy in (RandomPolicy(), _RunRight()):
        start = time.perf_counter()
        report = evaluate(
            policy,
            env=env,
            splits=("train", "test"),
            episodes=episodes,
            seed=0,
            num_envs=min(episodes, 12),
            action="sample",
        )
        reports.append(report)
        cells = ", ".join(
            f"{name} {r.mean:.2f} ± {r.stderr:.2f} (normalised {r.normalised:+.2f})"
            for name, r in report.splits.items()
        )
        print(f"   {report.policy_id:<10} {cells}  [{time.perf_counter() - start:.1f} s]")
    paired = compare(reports[1], reports[0])
    print(
        "   paired difference run-right - random: "
        + ", ".join(
            f"{name} {d.mean:+.2f} ± {d.stderr:.2f} ({d.wins} wins, {d.losses} losses)"
            for name, d in paired.splits.items()
        )
    )
    print(
        "   (normalised = (R - Rmin) / (Rmax - Rmin) with Procgen's easy-mode constants, coinrun "
        "5 / 10: below 0 means under Rmin; see docs/evaluation.md)"
    )


def _train_bc(store: Path, updates: int, episodes: int) -> None:
    """Train BC on ``store`` and evaluate it, through the two baseline commands."""
    print(
        f"\n5. behaviour cloning on the dataset: {updates} updates, then {episodes} seeded "
        "episodes per split (sampled actions, as above)"
    )
    if updates <= 0:
        print("   skipped (--bc-updates 0)")
        return
    if not all(importlib.util.find_spec(name) for name in ("baselines", "torch")):
        print("   skipped: needs the baselines (pip install 'offgen[collect]', which brings torch)")
        return
    save_path, xpid = offgen_home() / "demo" / "offline", f"bc-{store.name}-{updates}"
    flags = [
        "--algo=bc",
        f"--dataset={store}",
        "--agent_model=nature",  # ~10x faster than IMPALA on a CPU (docs/baselines.md)
        "--hidden_size=64",
        "--batch_size=128",
        "--epochs=1000",
        f"--max_steps={updates}",
        "--eval_freq=0",  # no validation during training: the last weights are the model
        "--eval_episodes=1",
        f"--final_eval_episodes={episodes}",
        f"--eval_num_envs={min(episodes, 12)}",
        "--eval_action=sample",
        "--seed=0",
        f"--save_path={save_path}",
        f"--xpid={xpid}",
        "--resume=True",  # a finished run is reused, an interrupted one continues
        "--progress=false",
        "--torch_threads=1",  # two threads crawled (up to 20x) on a shared 2-core machine
    ]
    print(f"   $ python -m baselines.train_offline {' '.join(flags)}")
    print("   $ python -m baselines.evaluate_offline <the same flags>")
    for module in ("baselines.train_offline", "baselines.evaluate_offline"):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", module, *flags], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(f"   {module} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
            return
        print(f"   {module}: {time.perf_counter() - start:.1f} s")
    with (save_path / "coinrun" / xpid / "evaluate.csv").open() as handle:
        row = {k: float(v) for k, v in next(csv.DictReader(handle)).items()}
    print(
        f"   offline-bc train {row['final_train_ret']:.2f} (normalised "
        f"{row['final_train_norm']:+.2f}), test {row['final_test_ret']:.2f} (normalised "
        f"{row['final_test_norm']:+.2f})"
    )
    print("   (BC imitates the uniform random behaviour policy: about random's returns above)")


if __name__ == "__main__":
    main()
