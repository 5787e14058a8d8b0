"""Benchmark: a published archive already on disk -> a verified offgen store (issue 16).

Targets: at least 0.5x the speed of ``xz -dc archive > /dev/null`` measured in the same run (the
limit of the published format: every byte must be decompressed, on one core), peak extra disk at
most 2x the final store, peak memory at most 1.5 GB whatever the archive size.

Real Procgen frames (envpool coinrun, random policy, as in ``convert_bench.py``) are written as the
predecessor's pickled float32 ``.npy`` episodes and packed into ``coinrun.tar.xz``; then, each in
its own process (peak RSS is the child's ``VmHWM``, peak disk is the output folder's size sampled
every 50 ms by the parent):

* ``xz``: ``xz -dc archive > /dev/null``, the limit;
* ``stream``: :func:`offgen.hub.stream.convert_archive` + ``OffgenStore.verify(check_frames=False)``
  (every file against its sha256; what
  ``offgen-download --format offgen`` now does);
* ``extract``: the previous path: ``safe_extract`` + ``convert_legacy`` + the same verification;
* ``torchrl``: TorchRL-style reading (one pass, ``tarfile`` + ``np.load`` per member, nothing
  written), as context.

Usage::

    nice python benchmarks/archive_bench.py --transitions 20000 --scales 1,5
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from convert_bench import _collect, _peak_rss, _write_legacy

MODES = ("xz", "stream", "extract", "torchrl")


def _child(mode: str, archive: Path, out: Path) -> None:
    started = time.perf_counter()
    if mode == "stream":
        from offgen.data.store import OffgenStore
        from offgen.hub.stream import convert_archive

        convert_archive(archive, {"coinrun": out / "store"}, dataset="expert_1M", progress=False)
        OffgenStore(out / "store").verify(check_frames=False)  # as offgen-download does
    elif mode == "extract":
        from offgen.data.convert import convert_legacy
        from offgen.data.store import OffgenStore
        from offgen.hub.extract import safe_extract

        safe_extract(archive, out / "unpacked", reserve=0)
        convert_legacy(
            out / "unpacked", out / "store", game="coinrun", dataset="expert_1M", progress=False
        )
        OffgenStore(out / "store").verify(check_frames=False)  # as offgen-download does
        shutil.rmtree(out / "unpacked")
    elif mode == "torchrl":
        with tarfile.open(archive, "r|xz") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".npy"):
                    handle = tar.extractfile(member)
                    assert handle is not None
                    episode = np.load(io.BytesIO(handle.read()), allow_pickle=True).item()
                    assert episode["observations"].dtype == np.float32
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss": _peak_rss()}))


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def _run(mode: str, archive: Path, out: Path) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if mode == "xz":
        started = time.perf_counter()
        subprocess.run(["xz", "-dc", str(archive)], stdout=subprocess.DEVNULL, check=True)
        return {"seconds": time.perf_counter() - started, "peak_rss": 0.0, "peak_disk": 0.0}
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _folder_bytes(out))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(archive), str(out)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    finally:
        done.set()
        sampler.join()
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["peak_disk"] = float(max(peak[0], _folder_bytes(out)))
    return result


def _pack(folder: Path, archive: Path, preset: int, threads: int) -> None:
    """``folder`` as ``coinrun/...`` in ``archive``: one xz stream and block (as published) with
    one thread; with more, ``xz -T`` (independent blocks, decoded one after another by both
    ``xz -dc`` and offgen: the same work per byte, packed in a fraction of the time)."""
    if threads <= 1:
        with (
            lzma.open(archive, "wb", preset=preset) as xz,
            tarfile.open(fileobj=xz, mode="w") as tar,
        ):
            tar.add(folder, arcname="coinrun")
        return
    with open(archive, "wb") as out:
        packer = subprocess.Popen(
            ["xz", f"-{preset}", f"-T{threads}", "--stdout"], stdin=subprocess.PIPE, stdout=out
        )
        assert packer.stdin is not None
        with tarfile.open(fileobj=packer.stdin, mode="w|") as tar:
            tar.add(folder, arcname="coinrun")
        packer.stdin.close()
        if packer.wait() != 0:
            raise RuntimeError("xz failed while packing the benchmark archive")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transitions", type=int, default=20_000, help="episodes collected")
    parser.add_argument("--scales", default="1,5", help="archive sizes, in copies of them")
    parser.add_argument("--preset", type=int, default=6, help="xz preset of the archive")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--pack-threads",
        type=int,
        default=1,
        help="threads packing the archive (1: one xz block, as published; more: xz -T)",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the built archives in --workdir and reuse them on the next run (building the "
        "5x archive takes ~30 min: it is compressed on one core, as the published ones were)",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    modes = args.modes.split(",")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="offgen-archive-bench-"))
    episodes: list[dict[str, np.ndarray]] = []
    rows = []
    try:
        for copies in (int(s) for s in args.scales.split(",")):
            case = work / f"x{copies}"
            archive = case / "coinrun.tar.xz"
            built = case / "steps.json"
            if not (args.reuse and built.is_file()):
                shutil.rmtree(case, ignore_errors=True)
                episodes = episodes or _collect(args.transitions)
                steps = _write_legacy(episodes, case / "files" / "coinrun", copies)
                _pack(case / "files" / "coinrun", archive, args.preset, args.pack_threads)
                shutil.rmtree(case / "files")
                built.write_text(json.dumps({"steps": steps}))
            steps = json.loads(built.read_text())["steps"]
            results = {mode: _run(mode, archive, case / mode) for mode in modes}
            store = _folder_bytes(case / "stream" / "store") if "stream" in modes else 0
            rows.append((steps, archive.stat().st_size, store, results))
            for mode in modes:
                shutil.rmtree(case / mode, ignore_errors=True)
            if not args.reuse:
                shutil.rmtree(case)
    finally:
        if args.workdir is None and not args.reuse:
            shutil.rmtree(work, ignore_errors=True)
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, xz -{args.preset}")
    print("| transitions | .tar.xz | store | mode | seconds | speed vs xz -dc | peak extra disk "
          "(x store) | peak RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for steps, size, store, results in rows:
        limit = results["xz"]["seconds"] if "xz" in results else float("nan")
        for mode, r in results.items():
            disk = (
                f"{r['peak_disk'] / 1e6:.0f} MB ({r['peak_disk'] / store:.1f}x)" if store else "-"
            )
            rss = f"{r['peak_rss'] / 1e6:.0f} MB" if r["peak_rss"] else "-"
            print(
                f"| {steps:,} | {size / 1e6:.1f} MB | {store / 1e6:.1f} MB | {mode} | "
                f"{r['seconds']:.1f} | {limit / r['seconds']:.2f}x | "
                f"{disk if mode != 'xz' else '-'} | {rss} |"
            )


if __name__ == "__main__":
    main()
