"""Sampling benchmarks (issue 2, performance items 1-4), baselines measured in the same run.

Builds (once, cached under ``bench_out/sampling/``) an offgen store of real Procgen coinrun frames
from envpool with a uniform random policy, then measures:

1. random transition batches of 256 (warm memmap and ram) vs a bare numpy gather from RAM, vs the
   predecessor's loader (episodes as dicts in RAM, bisect per sample, DataLoader batch 256) on a
   subset, vs HF ``datasets`` with ``Array3D`` features on a subset;
2. peak private memory (RssAnon) to open the store and sample with the memmap strategy, in a fresh
   process, and the cache file's size;
3. DT windows (K=10, batch 512, uint8) vs a bare numpy gather of the same windows and vs the
   predecessor's window sampler (linear scan of episode ends per sample, float32 conversion);
4. the stream strategy's peak RssAnon and throughput, on the whole store and on half of it;
5. CHW batches against HWC batches (transitions B=256 and windows K=10 B=512) on every strategy,
   in alternating slices in one process (``--only layout`` runs this part alone).

Usage::

    python benchmarks/sampling_bench.py --transitions 100000
    python benchmarks/sampling_bench.py              # 1M transitions (12.3 GB decoded)
    python benchmarks/sampling_bench.py --transitions 30000 --seconds 2 --only layout
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench_out" / "sampling"


# --------------------------------------------------------------------------- memory probes
def _status(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


class PeakAnon:
    """Polls RssAnon in a thread: the kernel keeps no high-water mark of private memory alone."""

    def __init__(self) -> None:
        self.peak = _status("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status("RssAnon"))
            time.sleep(0.002)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status("RssAnon"))
        return self.peak


# --------------------------------------------------------------------------- data
def build_store(transitions: int) -> Path:
    """A store of ``transitions`` random-policy coinrun steps (64 envpool envs), built once."""
    from offgen.data import StoreWriter, make_episode

    path = OUT / f"coinrun_{transitions}"
    if (path / "manifest.json").exists():
        return path
    import envpool

    env = envpool.make_gymnasium("CoinrunEasy-v0", num_envs=64, num_levels=200, seed=0)
    rng = np.random.default_rng(0)
    obs, info = env.reset()
    frames: list[list[np.ndarray]] = [[o] for o in obs]
    acts: list[list[int]] = [[] for _ in range(64)]
    rews: list[list[float]] = [[] for _ in range(64)]
    seeds = [int(s) for s in info["level_seed"]]
    resetting = np.zeros(64, dtype=bool)
    t0 = time.perf_counter()
    with StoreWriter(path, game="coinrun", mode="overwrite", dataset="bench_random") as writer:
        while writer.num_transitions < transitions:
            action = rng.integers(0, 15, 64)
            obs, reward, term, trunc, info = env.step(action)
            for i in range(64):
                if resetting[i]:  # envpool's reset step: the next episode's first frame
                    frames[i], acts[i], rews[i] = [obs[i]], [], []
                    seeds[i] = int(info["level_seed"][i])
                    resetting[i] = False
                    continue
                frames[i].append(obs[i])
                acts[i].append(int(action[i]))
                rews[i].append(float(reward[i]))
                if term[i] or trunc[i]:
                    writer.write(
                        make_episode(
                            np.stack(frames[i]),
                            np.array(acts[i]),
                            np.array(rews[i], dtype=np.float32),
                            game="coinrun",
                            level_seed=seeds[i],
                            terminated=bool(term[i]),
                            truncated=bool(trunc[i]),
                            layout="CHW",
                            policy_id="random",
                        )
                    )
                    resetting[i] = True
    print(f"built {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def _compare(fns: list[Any], items_per_call: int, seconds: float, rounds: int = 5) -> list[float]:
    """Rates of ``fns`` measured in alternating slices (the machine is shared: load drifts), the
    median slice of each."""
    rates: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            rates[i].append(_rate(fn, items_per_call, seconds / rounds, warmup=1))
    return [float(np.median(r)) for r in rates]


def _rate(fn: Any, items_per_call: int, seconds: float, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n * items_per_call / (time.perf_counter() - start)


# --------------------------------------------------------------------------- baselines
class PredecessorTransitions:
    """The predecessor's way: each episode a dict of CHW arrays, bisect per ``__getitem__``."""

    def __init__(self, episodes: list[dict[str, np.ndarray]]) -> None:
        self.episodes = episodes
        self.ends = np.cumsum([len(e["actions"]) for e in episodes]).tolist()

    def __len__(self) -> int:
        return int(self.ends[-1])

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        e = bisect.bisect_right(self.ends, i)
        t = i - (self.ends[e - 1] if e else 0)
        ep = self.episodes[e]
        done = float(t == len(ep["actions"]) - 1)
        return (
            ep["observations"][t],
            ep["actions"][t],
            ep["rewards"][t],
            ep["observations"][t + 1],
            done,
        )


def load_predecessor(store: Path, transitions: int) -> list[dict[str, np.ndarray]]:
    from offgen.data import OffgenStore

    s = OffgenStore(store)
    eps, total = [], 0
    for i in range(len(s.table)):
        ep = s.episode(i)
        eps.append(
            {
                "observations": np.ascontiguousarray(ep.observations.transpose(0, 3, 1, 2)),
                "actions": ep.actions.astype(np.int64)[:, None],
                "rewards": ep.rewards[:, None],
                "dones": np.eye(1, ep.length, ep.length - 1, dtype=np.float32)[0],
            }
        )
        total += ep.length
        if total >= transitions:
            break
    return eps


class PredecessorWindows:
    """The predecessor's DT dataset: a linear scan of episode ends per sample, float32 states.

    ``__getitem__(idx)`` finds the first episode end after ``idx`` by walking ``done_idxs`` in
    Python, moves the window back so it ends there, and returns ``(states, actions, rtgs,
    timesteps)`` as new tensors: states ``(block, 3*64*64)`` float32 scaled to [0, 1], actions and
    returns-to-go ``(block, 1)``, the first step's timestep ``(1, 1)``.
    """

    def __init__(
        self,
        frames: np.ndarray,
        actions: np.ndarray,
        done_idxs: list[int],
        rtgs: np.ndarray,
        timesteps: np.ndarray,
        block: int = 10,
    ) -> None:
        self.frames, self.actions, self.done_idxs = frames, actions, done_idxs
        self.rtgs, self.timesteps, self.block = rtgs, timesteps, block

    def __len__(self) -> int:
        return len(self.frames) - self.block

    def __getitem__(self, idx: int) -> tuple[Any, ...]:
        import torch

        block = self.block
        done_idx = idx + block
        for i in self.done_idxs:  # the predecessor's linear scan
            if i > idx:
                done_idx = min(int(i), done_idx)
                break
        idx = done_idx - block
        states = (
            torch.tensor(np.array(self.frames[idx:done_idx]), dtype=torch.float32).reshape(
                block, -1
            )
            / 255.0
        )
        acts = torch.tensor(self.actions[idx:done_idx], dtype=torch.long).unsqueeze(1)
        r = torch.tensor(self.rtgs[idx:done_idx], dtype=torch.float32).unsqueeze(1)
        ts = torch.tensor(self.timesteps[idx : idx + 1], dtype=torch.int64).unsqueeze(1)
        return states, acts, r, ts


def predecessor_windows_step(
    frames: np.ndarray,
    actions: np.ndarray,
    done_idxs: list[int],
    rtgs: np.ndarray,
    timesteps: np.ndarray,
) -> Any:
    """One batch of 512 windows per call from the predecessor's DT sampler (restarts per epoch)."""
    import torch

    dataset = PredecessorWindows(frames, actions, done_idxs, rtgs, timesteps)
    return _endless(torch.utils.data.DataLoader(dataset, batch_size=512, shuffle=True))


def _endless(loader: Any) -> Any:
    """A call that takes the next batch of ``loader``, starting a new epoch when one ends."""
    it = iter(loader)

    def step() -> None:
        nonlocal it
        try:
            next(it)
        except StopIteration:
            it = iter(loader)

    return step


# --------------------------------------------------------------------------- children
def child_memmap(store: str, seconds: float) -> dict[str, Any]:
    probe = PeakAnon()
    from offgen.data import OffgenDataset

    ds = OffgenDataset.open(store)
    sampler = ds.transitions(256, strategy="memmap", progress=False)
    rate = _rate(lambda: next(sampler), 256, seconds)
    return {"peak_anon": probe.stop(), "hwm": _status("VmHWM"), "rate": rate}


def child_stream(store: str, seconds: float, fraction: float, reuse: float) -> dict[str, Any]:
    probe = PeakAnon()
    from offgen.data import OffgenDataset

    ds = OffgenDataset.open(store)
    if fraction < 1:
        ds = OffgenDataset(ds.store, ds.selection[: int(len(ds) * fraction)])
    sampler = ds.transitions(256, strategy="stream", reuse=reuse)
    rate = _rate(lambda: next(sampler), 256, seconds, warmup=5)
    return {
        "peak_anon": probe.stop(),
        "hwm": _status("VmHWM"),
        "rate": rate,
        "steps": ds.num_transitions,
    }


def child_predecessor(store: str, transitions: int, seconds: float) -> dict[str, Any]:
    probe = PeakAnon()
    import torch

    base = _status("RssAnon")
    data = PredecessorTransitions(load_predecessor(Path(store), transitions))
    step = _endless(torch.utils.data.DataLoader(data, batch_size=256, shuffle=True))
    rate = _rate(step, 256, seconds)
    return {
        "peak_anon": probe.stop(),
        "data_anon": _status("RssAnon") - base,
        "rate": rate,
        "steps": len(data),
    }


def child_ours_subset(store: str, transitions: int, seconds: float) -> dict[str, Any]:
    """Our memmap sampler restricted to the predecessor's subset (same data, for memory)."""
    probe = PeakAnon()
    from offgen.data import OffgenDataset

    ds = OffgenDataset.open(store)
    steps = np.cumsum(ds.table.lengths)
    ds = OffgenDataset(ds.store, ds.selection[: int(np.searchsorted(steps, transitions)) + 1])
    sampler = ds.transitions(256, strategy="memmap", progress=False)
    rate = _rate(lambda: next(sampler), 256, seconds)
    return {"peak_anon": probe.stop(), "rate": rate, "steps": ds.num_transitions}


def layout_rows(ds: Any, seconds: float) -> list[tuple[str, str, str, str]]:
    """CHW vs HWC batch rates per strategy and job, measured in alternating slices.

    The stream pool is capped at a quarter of the store's decoded frames so that it keeps
    evicting and reading units (the regime the stream strategy exists for) on small stores too.
    """
    from offgen.data import SamplerOptions, StreamOptions

    pool = min(1 << 30, ds.store.num_frames_stored * 12288 // 4)
    rows = []
    # Two RAM copies (HWC and CHW) of a 1M store's 11.5 GiB would not fit in 24 GB (the 1M run
    # was OOM-killed here): the ram strategy is compared only where both fit in a quarter of RAM.
    both_fit = 2 * ds.store.num_frames_stored * 12288 < psutil.virtual_memory().total // 4
    for strategy in ("ram", "memmap", "stream") if both_fit else ("memmap", "stream"):
        for job, items in (("transitions B=256", 256), ("windows K=10 B=512", 512)):
            samplers = []
            for layout in ("HWC", "CHW"):
                options = SamplerOptions(
                    layout=layout,  # type: ignore[arg-type]
                    strategy=strategy,  # type: ignore[arg-type]
                    progress=False,
                    stream=StreamOptions(pool_bytes=pool),
                )
                samplers.append(
                    ds.transitions(256, options=options)
                    if items == 256
                    else ds.windows(10, 512, options=options)
                )
            steps = [sampler.__next__ for sampler in samplers]
            rates = _compare(steps, items, 2 * seconds)
            for sampler in samplers:
                getattr(sampler, "close", lambda: None)()  # the stream's read-ahead thread
            del samplers, steps
            ds.release_frames()
            gc.collect()
            print(
                f"{strategy} {job}: HWC {rates[0]:,.0f}/s  CHW {rates[1]:,.0f}/s  "
                f"CHW/HWC {rates[1] / rates[0]:.2f}",
                flush=True,
            )
            rows.append(
                (
                    f"5. CHW vs HWC, {strategy}, {job}",
                    f"{rates[1]:,.0f} vs {rates[0]:,.0f} /s",
                    f"{rates[1] / rates[0]:.2f}x",
                    ">= 0.8x",
                )
            )
    return rows


def _print_rows(n_steps: int, rows: list[tuple[str, str, str, str]]) -> None:
    print(f"\n| measurement ({n_steps:,}-transition store) | value | ratio | target |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- main
def hf_rate(store: Path, transitions: int, seconds: float) -> float:
    import datasets

    from offgen.data import OffgenStore

    path = OUT / f"hf_{store.name}_{transitions}"
    if not path.exists():
        s = OffgenStore(store)
        obs, nxt, act, rew = [], [], [], []
        for i in range(len(s.table)):
            ep = s.episode(i)
            obs.append(ep.observations[:-1])
            nxt.append(ep.observations[1:])
            act.append(ep.actions)
            rew.append(ep.rewards)
            if sum(len(a) for a in act) >= transitions:
                break
        features = datasets.Features(
            {
                "obs": datasets.Array3D((64, 64, 3), "uint8"),
                "next_obs": datasets.Array3D((64, 64, 3), "uint8"),
                "action": datasets.Value("int64"),
                "reward": datasets.Value("float32"),
            }
        )
        d = datasets.Dataset.from_dict(
            {
                "obs": np.concatenate(obs),
                "next_obs": np.concatenate(nxt),
                "action": np.concatenate(act),
                "reward": np.concatenate(rew),
            },
            features=features,
        )
        d.save_to_disk(str(path))
    d = datasets.load_from_disk(str(path)).with_format("numpy")
    rng = np.random.default_rng(0)
    n = len(d)
    return _rate(lambda: d[rng.integers(0, n, 256).tolist()], 256, seconds, warmup=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--transitions", type=int, default=1_000_000, help="store size (default 1M)"
    )
    parser.add_argument(
        "--pred-transitions",
        type=int,
        default=100_000,
        help="subset for the predecessor loaders (default 100k; they hold it all in RAM)",
    )
    parser.add_argument("--hf-transitions", type=int, default=20_000, help="subset for HF datasets")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument(
        "--only", choices=["all", "layout"], default="all", help="run every part, or part 5 alone"
    )
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, store, *rest = args.child
        fn = {
            "memmap": child_memmap,
            "stream": child_stream,
            "pred": child_predecessor,
            "ours_subset": child_ours_subset,
        }[name]
        conv = [float(x) if "." in x else int(x) for x in rest]
        print(json.dumps(fn(store, *conv)))
        return
    os.environ.setdefault("HF_DATASETS_CACHE", str(OUT / "hf_cache"))
    # Keep the decoded-frame cache beside the benchmark store, not in the user's cache.
    os.environ.setdefault("OFFGEN_HOME", str(OUT / "home"))
    OUT.mkdir(parents=True, exist_ok=True)
    store = build_store(args.transitions)
    from offgen.data import OffgenDataset
    from offgen.data.sampling.cache import cache_location

    sec = args.seconds
    ds = OffgenDataset.open(store)
    n_steps, n_frames = ds.num_transitions, ds.store.num_frames_stored
    print(
        f"store: {n_steps} transitions, {len(ds)} episodes, {n_frames} frames "
        f"({n_frames * 12288 / 2**30:.2f} GiB decoded)",
        flush=True,
    )
    rows: list[tuple[str, str, str, str]] = []
    if args.only == "layout":
        _print_rows(n_steps, layout_rows(ds, sec))
        return

    # 1. transitions. The bare baselines run first on a plain RAM copy of the decoded frames
    # (12.3 GB at 1M); that copy is then freed so the memmap's page cache can hold the same frames
    # ("warm cache"): both at once would not fit in 24 GB.
    memmap = ds.transitions(256, strategy="memmap", seed=0)
    windows = ds.windows(10, 512, strategy="memmap", seed=0)
    cache_file = cache_location(ds.store) / "observations.npy"
    index = memmap.index  # type: ignore[attr-defined]
    actions, rewards = ds.store.actions, ds.store.rewards
    rng = np.random.default_rng(0)
    wrng = np.random.default_rng(1)
    # The bare baseline: the same frames as a plain RAM array (held in a dict so it can be freed).
    held = {"frames": np.load(cache_file)}

    def bare() -> None:
        frames = held["frames"]
        p = rng.integers(0, n_steps, 256)
        f = index.frame[p]
        ep = index.episode[p]
        step = index.ep_step[ep] + (f - index.ep_frame[ep])
        _ = frames[f], frames[f + 1], actions[step], rewards[step]

    def bare_windows() -> None:
        frames = held["frames"]
        p = wrng.integers(0, n_steps, 512)
        f = index.frame[p]
        _ = frames[np.minimum(f[:, None] + np.arange(10), n_frames - 1)]

    bare_rate = _rate(bare, 256, 2 * sec)
    bare_w = _rate(bare_windows, 512, 2 * sec)
    # The predecessor's DT sampler runs later over a CHW copy of a subset (its own layout).
    sub = min(args.pred_transitions, n_steps)
    ends = np.cumsum(ds.table.lengths)
    n_ep = int(np.searchsorted(ends, sub)) + 1
    done_idxs = (ends[:n_ep] + np.arange(n_ep)).tolist()  # its frame-array end of each episode
    flat = np.ascontiguousarray(held["frames"][: done_idxs[-1] + 1].transpose(0, 3, 1, 2))
    held.clear()
    gc.collect()
    start = time.perf_counter()
    with open(cache_file, "rb") as handle:  # warm the page cache: one sequential read
        while handle.read(64 << 20):
            pass
    print(f"warmed the memmap cache in {time.perf_counter() - start:.1f} s", flush=True)
    ours_mm = _rate(lambda: next(memmap), 256, 2 * sec)
    ours_w = _rate(lambda: next(windows), 512, 2 * sec)
    ram = (
        ds.transitions(256, strategy="ram", seed=0, progress=False)
        if n_frames * 12288 < 6 * 2**30
        else None
    )
    ours_ram = _rate(lambda: next(ram), 256, sec) if ram is not None else float("nan")
    ram = None
    ds.release_frames()
    print(
        f"transitions/s: memmap {ours_mm:,.0f}  ram {ours_ram:,.0f}  bare numpy {bare_rate:,.0f}",
        flush=True,
    )
    rows.append(
        (
            "1. transitions B=256, warm memmap vs bare numpy gather (RAM)",
            f"{ours_mm:,.0f} vs {bare_rate:,.0f} /s",
            f"{ours_mm / bare_rate:.2f}x",
            ">= 0.7x",
        )
    )

    pred = run_child("pred", str(store), str(args.pred_transitions), str(sec))
    ours_sub = run_child("ours_subset", str(store), str(args.pred_transitions), str(sec))
    print(
        f"predecessor loader on {pred['steps']} transitions: {pred['rate']:,.0f}/s, peak RssAnon "
        f"{pred['peak_anon'] / 2**30:.2f} GiB; ours (memmap, same subset) {ours_sub['rate']:,.0f}/s, "
        f"{ours_sub['peak_anon'] / 2**30:.3f} GiB",
        flush=True,
    )
    rows.append(
        (
            f"1. vs predecessor loader ({pred['steps']:,} transitions)",
            f"{ours_mm:,.0f} vs {pred['rate']:,.0f} /s",
            f"{ours_mm / pred['rate']:.1f}x",
            ">= 2x",
        )
    )
    rows.append(
        (
            f"1. memory vs predecessor (peak RssAnon, same {pred['steps']:,} transitions)",
            f"{ours_sub['peak_anon'] / 2**20:,.0f} vs {pred['peak_anon'] / 2**20:,.0f} MiB",
            f"1/{pred['peak_anon'] / ours_sub['peak_anon']:.1f}",
            "<= 1/8",
        )
    )
    hf = hf_rate(store, args.hf_transitions, sec)
    print(f"HF datasets Array3D ({args.hf_transitions} transitions): {hf:,.0f}/s", flush=True)
    rows.append(
        (
            f"1. vs HF datasets Array3D ({args.hf_transitions:,} transitions)",
            f"{ours_mm:,.0f} vs {hf:,.0f} /s",
            f"{ours_mm / hf:.0f}x",
            ">= 15x",
        )
    )

    # 2. memmap memory
    mm = run_child("memmap", str(store), str(sec))
    size = cache_file.stat().st_size
    print(
        f"memmap child: peak RssAnon {mm['peak_anon'] / 2**20:.0f} MiB, VmHWM {mm['hwm'] / 2**20:.0f} MiB, "
        f"cache file {size / 2**30:.2f} GiB",
        flush=True,
    )
    rows.append(
        (
            "2. open + sample with memmap: peak RssAnon",
            f"{mm['peak_anon'] / 2**20:,.0f} MiB (cache file {size / 2**30:.2f} GiB)",
            "",
            "<= 1.5 GB",
        )
    )

    # 3. windows (ours and the bare gather were measured above, beside the transitions)
    acts_flat = np.zeros(len(flat), dtype=np.int64)
    rtg_flat = np.zeros(len(flat), dtype=np.float32)
    ts_flat = np.zeros(len(flat), dtype=np.int64)
    # Ours and the predecessor in alternating slices (medians): both rates drift with the machine.
    ours_step = lambda: next(windows)  # noqa: E731
    pred_step = predecessor_windows_step(flat, acts_flat, done_idxs, rtg_flat, ts_flat)
    ours_w_sub, pred_w = _compare([ours_step, pred_step], 512, 4 * sec)
    del pred_step
    del flat, acts_flat, rtg_flat, ts_flat
    gc.collect()
    # The same sampler over every episode of the store (the data ours sampled from): its linear
    # scan grows with the number of episodes. Its frames come from the warm page cache through a
    # CHW view of the memmap (its own `np.array(frames[a:b])` copy), as 11.5 GB would not fit twice.
    n_all = len(ends)
    done_all = (ends + np.arange(n_all)).tolist()
    chw = np.load(cache_file, mmap_mode="r").transpose(0, 3, 1, 2)
    zeros_i = np.zeros(len(chw), dtype=np.int64)
    pred_step = predecessor_windows_step(
        chw, zeros_i, done_all, np.zeros(len(chw), dtype=np.float32), zeros_i
    )
    ours_w_all, pred_w_all = _compare([ours_step, pred_step], 512, 4 * sec)
    del pred_step, chw, zeros_i
    print(
        f"windows/s: ours {ours_w:,.0f}  bare numpy {bare_w:,.0f}  predecessor ({n_ep} episodes) "
        f"{pred_w:,.0f}, ({n_all} episodes) {pred_w_all:,.0f}",
        flush=True,
    )
    rows.append(
        (
            "3. DT windows K=10 B=512 vs bare numpy gather",
            f"{ours_w:,.0f} vs {bare_w:,.0f} /s",
            f"{ours_w / bare_w:.2f}x",
            ">= 0.5x",
        )
    )
    rows.append(
        (
            f"3. vs predecessor window sampler ({n_ep:,} episodes)",
            f"{ours_w_sub:,.0f} vs {pred_w:,.0f} /s",
            f"{ours_w_sub / pred_w:.0f}x",
            ">= 20x",
        )
    )
    rows.append(
        (
            f"3. vs predecessor window sampler (all {n_all:,} episodes of the store)",
            f"{ours_w_all:,.0f} vs {pred_w_all:,.0f} /s",
            f"{ours_w_all / pred_w_all:.0f}x",
            ">= 20x",
        )
    )

    # 4. stream
    full = run_child("stream", str(store), str(sec), "1.0", "1.0")
    half = run_child("stream", str(store), str(sec), "0.5", "1.0")
    full4 = run_child("stream", str(store), str(sec), "1.0", "4.0")
    print(
        f"stream: full {full['rate']:,.0f}/s peak RssAnon {full['peak_anon'] / 2**20:.0f} MiB; "
        f"half {half['rate']:,.0f}/s peak {half['peak_anon'] / 2**20:.0f} MiB; "
        f"whole store reuse=4 {full4['rate']:,.0f}/s",
        flush=True,
    )
    rows.append(
        (
            "4. stream pool: peak RssAnon (whole store / half)",
            f"{full['peak_anon'] / 2**20:,.0f} / {half['peak_anon'] / 2**20:,.0f} MiB",
            "",
            "<= 2 GB",
        )
    )
    rows.append(
        (
            "4. stream pool: transitions/s, reuse=1 (default) / reuse=4",
            f"{full['rate']:,.0f} / {full4['rate']:,.0f} /s",
            "",
            ">= 50k/s",
        )
    )

    # 5. layouts
    rows.extend(layout_rows(ds, sec))
    _print_rows(n_steps, rows)


if __name__ == "__main__":
    main()
