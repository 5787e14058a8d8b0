"""``make demo`` / ``python -m offgen.demo``: the main job on the embedded default.

Collects a small real Procgen dataset (coinrun, training levels 0-199, uniform random behaviour
policy) into the local store under ``$OFFGEN_HOME`` (default ``~/.cache/offgen``), opens it with
:func:`offgen.load`, prints its summary and card statistics (with a return histogram PNG), and
samples transition batches and DT windows with a throughput figure. A second run reuses the finished store (collection is resumable and exact).
"""

from __future__ import annotations

import argparse
import time

from offgen.paths import offgen_home

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the demo (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m offgen.demo", description=__doc__)
    parser.add_argument("--transitions", type=int, default=50_000, help="collection budget")
    parser.add_argument("--num-envs", type=int, default=16, help="parallel environments")
    parser.add_argument("--batches", type=int, default=200, help="batches to time")
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
    print(
        "\nnext: `offgen list`, `offgen info PATH`, `offgen verify PATH --replay 3`, "
        "`offgen-collect --help`, `offgen-download --help`; docs in docs/."
    )


if __name__ == "__main__":
    main()
