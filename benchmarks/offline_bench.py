"""Offline training throughput and memory (issue 14, performance items 1-3), baselines in one run.

For BC, CQL, IQL and DT at the predecessor's final batch sizes (BC 256, CQL 256, IQL 512, DT 512
windows of 10 steps), on the 1M-transition coinrun store of ``sampling_bench.py`` (built once,
cached under ``bench_out/sampling/``), one algorithm object is updated by three feeds in turn:

* ``offgen``: the training loop's own feed, :func:`baselines.offline.data.open_training_data` ->
  sampler -> :class:`baselines.offline.data.Prefetcher` (a fresh one per timed segment, so the
  first batch of each segment is waited for: nothing is prepared while the other feeds run);
* ``memory``: one batch already in memory, the same tensors reused (the limit: no data work);
* ``predecessor``: **a re-implementation, for this benchmark only**, of the predecessor's loader
  (REFERENCE sections 2 and 7): a per-sample ``torch.utils.data.Dataset`` + ``DataLoader``
  (``shuffle=True``, no worker processes). Transitions: every episode a dict of CHW uint8 arrays
  held in RAM, a ``bisect`` per sample (on a ``--pred-transitions`` subset: holding 1M would take
  12.3 GB); DT windows: a Python linear scan of every episode end of the whole store per sample,
  float32 states scaled per sample (frames read through a CHW view of the page-cached frame cache,
  as 12.3 GB cannot be held twice). Its batches are renamed to the keys our update reads (a view /
  a dtype change; timed as data).

Each round runs the three feeds one after another, ``--updates`` updates each, in a rotating
order (the machine is shared: load drifts); ``--rounds`` rounds; medians. Data wait = time blocked
getting the next batch; its share is of the feed's whole step. Then the loaders alone (no
update; samples/s) and, in a fresh child process per algorithm, peak private memory (``RssAnon``
polled; ``VmHWM`` also counts the mapped frame cache) while training from the 1M store, against
the same child training on one in-memory batch (what the model and its activations take).

Usage::

    nice python benchmarks/offline_bench.py       # configured batch sizes (long on a busy 2-core CPU)
    nice python benchmarks/offline_bench.py --batch-scale 0.25 --updates 2 --algos bc,dt
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampling_bench import (  # the benchmark folder is no package
    OUT,
    PeakAnon,
    PredecessorTransitions,
    PredecessorWindows,
    _status,
    build_store,
    load_predecessor,
)

BATCH = {"bc": 256, "cql": 256, "iql": 512, "dt": 512}
"""The predecessor's final batch sizes (REFERENCE section 7); DT's are windows of 10 steps."""
FEEDS = ("offgen", "memory", "predecessor")


# --------------------------------------------------------------------------- setup
def _config(algo: str, store: Path, batch: int) -> Any:
    from baselines.offline.config import OfflineConfig

    return OfflineConfig(
        algo=algo, dataset=str(store), batch_size=batch, progress=False, device="cpu", seed=0
    )


def _build(algo: str, store: Path, batch: int) -> tuple[Any, Any, Any]:
    """(algorithm, sampler, config) exactly as ``baselines.offline.loop`` builds them."""
    import torch

    from baselines.offline.data import open_training_data
    from baselines.offline.registry import algorithm_module, make_algorithm

    cfg = _config(algo, store, batch)
    kind = algorithm_module(algo).DATA
    data = open_training_data(cfg, kind)
    derived = {"total_updates": 10**6, "dataset_max_return": data.max_return}
    torch.manual_seed(0)
    algorithm = make_algorithm(algo, cfg, derived, torch.device("cpu"))
    return algorithm, data.sampler(kind, cfg), cfg


def _model_bytes(algorithm: Any) -> int:
    """Parameters, gradients and optimiser state (after a step) of every module."""
    total = 0
    for module in algorithm.modules().values():
        total += sum(p.numel() * p.element_size() * 2 for p in module.parameters())
    for optimizer in algorithm.optimizers().values():
        for state in optimizer.state.values():
            total += sum(
                v.numel() * v.element_size() for v in state.values() if hasattr(v, "numel")
            )
    return total


# --------------------------------------------------------------------------- predecessor feeds
def _endless(loader: Any) -> Iterator[Any]:
    while True:
        yield from loader


def predecessor_transitions(store: Path, transitions: int, batch: int) -> tuple[Any, int, int]:
    """(batch iterator over the predecessor's RAM loader, its transitions, its RssAnon bytes)."""
    import torch

    before = _status("RssAnon")
    dataset = PredecessorTransitions(load_predecessor(store, transitions))
    held = _status("RssAnon") - before
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True)

    def adapt(items: Any) -> dict[str, Any]:  # its tuple -> the keys our update reads
        obs, action, reward, next_obs, done = items
        return {"obs": obs, "action": action[:, 0], "reward": reward[:, 0],
                "next_obs": next_obs, "terminated": done.bool()}  # fmt: skip

    return map(adapt, _endless(loader)), len(dataset), held


def predecessor_windows(ds: Any, batch: int, context: int) -> Iterator[Any]:
    """Batches of the predecessor's DT dataset over every episode of the store."""
    import torch

    from offgen.data.sampling.cache import open_frame_cache

    lengths = ds.table.lengths.astype(np.int64)
    ends = np.cumsum(lengths)
    done_idxs = (ends + np.arange(len(ends))).tolist()  # its frame-array end of each episode
    frames = open_frame_cache(ds.store, layout="CHW", progress=False)
    n = len(frames)
    starts = np.concatenate([[0], np.asarray(done_idxs[:-1]) + 1])
    timesteps = np.arange(n) - np.repeat(starts, lengths + 1)
    # The store's own actions and returns-to-go, placed at each step's frame (the final frame of
    # an episode has none: 0, as the predecessor's arrays held).
    from offgen.data.sampling.index import returns_to_go

    rows = ds.store.table.rows
    lengths64 = rows["length"].astype(np.int64)

    def ranges(column: str) -> Any:
        firsts = rows[column].astype(np.int64)
        return np.concatenate([np.arange(a, a + t) for a, t in zip(firsts, lengths64, strict=True)])

    step_of, frame_of = ranges("step_offset"), ranges("frame_offset")
    actions = np.zeros(n, dtype=np.int64)
    actions[frame_of] = np.asarray(ds.store.actions)[step_of]
    rtgs = np.zeros(n, dtype=np.float32)
    rtgs[frame_of] = returns_to_go(np.asarray(ds.store.rewards), rows)[step_of]
    dataset = PredecessorWindows(frames, actions, done_idxs, rtgs, timesteps, block=context)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True)
    steps = torch.arange(context)

    def adapt(items: Any) -> dict[str, Any]:
        states, acts, r, ts = items
        b = states.shape[0]
        return {"states": states.view(b, context, 3, 64, 64), "actions": acts[:, :, 0],
                "returns_to_go": r[:, :, 0], "timesteps": ts[:, 0] + steps,
                "mask": torch.ones(b, context, dtype=torch.bool)}  # fmt: skip

    return map(adapt, _endless(loader))


# --------------------------------------------------------------------------- timing
def _segment(
    algorithm: Any, next_batch: Callable[[], Any], updates: int, step: int
) -> tuple[float, float]:
    """(seconds, seconds waiting for data) of ``updates`` updates fed by ``next_batch``."""
    wait = 0.0
    start = time.perf_counter()
    for i in range(updates):
        t = time.perf_counter()
        batch = next_batch()
        wait += time.perf_counter() - t
        algorithm.update(batch, step + i)
    return time.perf_counter() - start, wait


def time_feeds(algo: str, store: Path, args: argparse.Namespace, pred: Any) -> dict[str, Any]:
    """Interleaved segments of the three feeds on one algorithm; per-feed medians."""
    from baselines.common import offline_updates
    from baselines.offline.data import Prefetcher

    batch = _scaled(algo, args.batch_scale)
    algorithm, sampler, _cfg = _build(algo, store, batch)
    with Prefetcher(sampler, "cpu") as warm:  # a batch to hold in memory; also warms the cache
        held = warm.next()
    feeds: dict[str, Callable[[], Any]] = {"memory": lambda: held, "predecessor": pred.__next__}
    rates: dict[str, list[float]] = {f: [] for f in FEEDS}
    waits: dict[str, list[float]] = {f: [] for f in FEEDS}
    step = 1  # past step 0, where the Q-learners copy their targets
    with offline_updates():  # as the training loop runs its updates
        for feed in FEEDS:  # warm-up: two untimed updates per feed (the first timed segment
            # after a single one still ran at half speed: oneDNN / allocator warm-up, measured)
            _segment(algorithm, feeds.get(feed, lambda: held), 2, step)
            step += 2
        for r in range(args.rounds):
            for feed in FEEDS[r % 3 :] + FEEDS[: r % 3]:
                if feed == "offgen":
                    with Prefetcher(sampler, "cpu") as prefetch:
                        seconds, wait = _segment(algorithm, prefetch.next, args.updates, step)
                else:
                    seconds, wait = _segment(algorithm, feeds[feed], args.updates, step)
                step += args.updates
                rates[feed].append(args.updates / seconds)
                waits[feed].append(wait / seconds)
                print(f"  {algo} round {r + 1} {feed}: {args.updates / seconds:.3f} updates/s, "
                      f"data wait {100 * wait / seconds:.1f}%", flush=True)  # fmt: skip
    out = {"algo": algo, "batch": batch, "model_bytes": _model_bytes(algorithm)}
    out |= {f"{f}_rate": float(np.median(rates[f])) for f in FEEDS}
    out |= {f"{f}_wait": float(np.median(waits[f])) for f in FEEDS}
    out |= {f"{f}_rates": rates[f] for f in FEEDS}
    return out


def _scaled(algo: str, scale: float) -> int:
    return max(8, int(BATCH[algo] * scale))


def loader_rates(store: Path, args: argparse.Namespace, preds: dict[str, Any]) -> dict[str, float]:
    """Samples/s of the loaders alone (no update): offgen's sampler and the predecessor's."""
    out: dict[str, float] = {}
    for kind, algo in (("transitions", "bc"), ("windows", "dt")):
        if algo not in preds:
            continue
        batch = _scaled(algo, args.batch_scale)
        _algorithm, sampler, _cfg = _build(algo, store, batch)
        out[f"offgen_{kind}"] = _samples_per_s(sampler.__next__, batch, args.loader_seconds)
        out[f"predecessor_{kind}"] = _samples_per_s(
            preds[algo].__next__, batch, args.loader_seconds
        )
    return out


def _samples_per_s(fn: Callable[[], Any], batch: int, seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n * batch / (time.perf_counter() - start)


# --------------------------------------------------------------------------- memory child
def child_memory(algo: str, store: str, batch: int, updates: int, feed: str) -> dict[str, Any]:
    """Peak private memory of ``updates`` updates fed from the store (or one in-memory batch)."""
    probe = PeakAnon()
    from baselines.common import offline_updates
    from baselines.offline.data import Prefetcher

    algorithm, sampler, _cfg = _build(algo, Path(store), batch)
    with Prefetcher(sampler, "cpu") as prefetch, offline_updates():
        held = prefetch.next()
        next_batch = prefetch.next if feed == "offgen" else (lambda: held)
        seconds, _wait = _segment(algorithm, next_batch, updates, 1)
    return {
        "peak_anon": probe.stop(),
        "hwm": _status("VmHWM"),
        "model_bytes": _model_bytes(algorithm),
        "rate": updates / seconds,
    }


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- report
def _rows(results: list[dict[str, Any]], pred_steps: int) -> list[tuple[str, ...]]:
    rows = []
    for r in results:
        name = f"{r['algo'].upper()} B={r['batch']}" + (" x K=10" if r["algo"] == "dt" else "")
        off, mem, pre = r["offgen_rate"], r["memory_rate"], r["predecessor_rate"]
        rows.append((
            name, f"{off:.3f}", f"{mem:.3f}", f"{pre:.3f}",
            f"**{off / mem:.3f}x**", f"**{off / pre:.3f}x**",
            f"{100 * r['offgen_wait']:.1f}% / {100 * r['predecessor_wait']:.1f}%",
        ))  # fmt: skip
    return rows


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def memory_rows(store: Path, args: argparse.Namespace) -> list[tuple[str, ...]]:
    rows = []
    for algo in [a for a in args.memory_algos.split(",") if a]:
        batch = _scaled(algo, args.memory_batch_scale)
        got = {
            feed: run_child("memory", algo, str(store), str(batch), str(args.memory_updates), feed)
            for feed in ("offgen", "memory")
        }
        off, mem = got["offgen"], got["memory"]
        print(f"memory {algo}: {json.dumps(got)}", flush=True)
        rows.append((
            f"{algo.upper()} B={batch}", f"{off['peak_anon'] / 2**20:,.0f}",
            f"{mem['peak_anon'] / 2**20:,.0f}", f"{(off['peak_anon'] - mem['peak_anon']) / 2**20:+,.0f}",
            f"{off['model_bytes'] / 2**20:,.0f}", f"{off['hwm'] / 2**20:,.0f}",
        ))  # fmt: skip
    return rows


def _uptime() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transitions", type=int, default=1_000_000, help="store size (1M)")
    parser.add_argument("--algos", default="bc,cql,iql,dt", help="comma-separated")
    parser.add_argument("--batch-scale", type=float, default=1.0, help="x the final batch sizes")
    parser.add_argument("--updates", type=int, default=3, help="timed updates per segment")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three feeds")
    parser.add_argument("--pred-transitions", type=int, default=100_000,
                        help="RAM subset of the predecessor's transition loader")  # fmt: skip
    parser.add_argument("--loader-seconds", type=float, default=3.0, help="per loader-alone rate")
    parser.add_argument("--memory-algos", default="bc,iql,dt", help="memory children ('' none)")
    parser.add_argument("--memory-updates", type=int, default=2)
    parser.add_argument("--memory-batch-scale", type=float, default=1.0, help="x final batches")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OFFGEN_HOME", str(OUT / "home"))  # the sampling benchmark's cache
    if args.child:
        _name, algo, store, batch, updates, feed = args.child
        print(json.dumps(child_memory(algo, store, int(batch), int(updates), feed)))
        return
    store = build_store(args.transitions)
    algos = [a for a in args.algos.split(",") if a]
    print(f"load average at start: {_uptime()}", flush=True)
    from offgen.data import OffgenDataset

    ds = OffgenDataset.open(store)
    preds: dict[str, Any] = {}
    pred_steps, pred_anon = 0, 0
    if any(a != "dt" for a in algos):
        transitions, pred_steps, pred_anon = predecessor_transitions(
            store, args.pred_transitions, _scaled("bc", args.batch_scale)
        )
        for algo in algos:  # one loader per batch size
            if algo != "dt":
                preds[algo] = (
                    transitions
                    if _scaled(algo, args.batch_scale) == _scaled("bc", args.batch_scale)
                    else None
                )
    results = []
    for algo in algos:
        batch = _scaled(algo, args.batch_scale)
        if algo == "dt":
            preds[algo] = predecessor_windows(ds, batch, 10)
        elif preds.get(algo) is None:
            preds[algo] = predecessor_transitions(store, args.pred_transitions, batch)[0]
        results.append(time_feeds(algo, store, args, preds[algo]))
    print(f"load average after the training feeds: {_uptime()}", flush=True)
    loaders = loader_rates(store, args, preds)
    print(f"loaders alone (samples/s): {json.dumps(loaders)}", flush=True)
    mem = memory_rows(store, args)
    print(f"load average at the end: {_uptime()}", flush=True)
    print(f"\npredecessor transition loader: {pred_steps:,} transitions in RAM, "
          f"{pred_anon / 2**20:,.0f} MiB RssAnon (x{ds.num_transitions / max(pred_steps, 1):.1f} "
          f"-> {pred_anon * ds.num_transitions / max(pred_steps, 1) / 2**30:.1f} GiB at "
          f"{ds.num_transitions:,})")  # fmt: skip
    _print_table(
        ("algorithm", "offgen upd/s", "in-memory upd/s", "predecessor upd/s", "offgen / in-memory",
         "offgen / predecessor", "data wait offgen / predecessor"),
        _rows(results, pred_steps),
    )  # fmt: skip
    if mem:
        _print_table(
            ("algorithm", "peak RssAnon from store MiB", "peak RssAnon in-memory batch MiB",
             "data's share MiB", "model+grads+optimiser MiB", "VmHWM MiB"),
            mem,
        )  # fmt: skip


if __name__ == "__main__":
    main()
