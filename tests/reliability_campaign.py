"""Hostile-input and fault campaign: every category of the reliability issue, tried as a user would.

Run it as a script for the table in ``docs/reliability.md``::

    python tests/reliability_campaign.py [--fuzz 400] [--work DIR]

Each case ends in one of five outcomes:

* ``refused``: a clear offgen error (one ``error:`` line from the CLI, an ``OffgenError`` from Python)
  or, for duplicates, a ``warning:`` line and a correct result;
* ``identical``: the operation succeeded and its result equals the intact one;
* ``documented``: accepted for a documented reason (a ``.npy`` file's bytes have no checksum);
* ``traceback``: anything else raised or printed a traceback;
* ``silent``: wrong input was accepted without a word.

``tests/core/test_reliability_campaign.py`` runs it with a small fuzz budget and requires zero
``traceback`` and zero ``silent``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from fixtures.factories import procgen_openings

import offgen
from offgen.data import Episode, StoreWriter, make_episode
from offgen.data.legacy import read_legacy_episode, write_npz_episode
from offgen.errors import OffgenError

OUTCOMES = ("refused", "identical", "documented", "traceback", "silent")


@dataclass(frozen=True)
class Result:
    category: str
    case: str
    outcome: str
    detail: str = ""


# ----------------------------------------------------------------------------- inputs
def synthetic_episode(rng: np.random.Generator, length: int, game: str = "coinrun") -> Episode:
    background = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    frames = np.repeat(background[None], length + 1, axis=0)
    for t in range(length + 1):
        frames[t, t % 56 : t % 56 + 8, 10:18] = 255 - background[0, 0]
    return make_episode(
        frames,
        rng.integers(0, 15, length),
        (rng.integers(0, 2, length) * 10).astype(np.float32),
        game=game,
        level_seed=int(rng.integers(0, 200)),
        terminated=True,
    )


def write_npy_episode(folder: Path, episode: Episode, index: int) -> Path:
    """One episode as the predecessor's ``.npy`` (a pickled dict of float32 CHW frames)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "observations": np.moveaxis(episode.observations, -1, 1).astype(np.float32),
        "actions": episode.actions.astype(np.int64)[:, None],
        "rewards": episode.rewards.astype(np.float32)[:, None],
        "dones": np.eye(1, episode.length, episode.length - 1, dtype=np.float32)[0],
    }
    name = (
        f"20230101T{index:06d}_{index}_{episode.length}_{episode.level_seed}_"
        f"{episode.episode_return:.2f}.npy"
    )
    path = folder / name
    np.save(path, np.array(arrays, dtype=object), allow_pickle=True)
    return path


def build_store(path: Path, episodes: list[Episode]) -> Path:
    with StoreWriter(path, game=episodes[0].game, shard_frames=128, chunk_frames=32) as writer:
        for episode in episodes:
            writer.write(episode)
    return path


# ----------------------------------------------------------------------------- running
def cli(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OFFGEN_PROGRESS": "off", **env},
    )


def refusal(proc: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """Outcome of a command that must refuse."""
    lines = proc.stderr.strip().splitlines()
    if "Traceback" in proc.stderr:
        return "traceback", lines[-1] if lines else ""
    if proc.returncode == 0:
        return "silent", proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    # offgen's own errors print "error: ..."; a flag refused at parse time is click's "Error: ..."
    errors = [line for line in lines if line.startswith(("error:", "Error:"))]
    return ("refused", errors[0]) if len(errors) == 1 else ("traceback", " | ".join(lines[-3:]))


def success(proc: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """Outcome of a command that must succeed on intact input."""
    if "Traceback" in proc.stderr or proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return "traceback", lines[-1] if lines else f"exit {proc.returncode}"
    return "identical", ""


def python_refusal(action: Callable[[], object]) -> tuple[str, str]:
    try:
        action()
    except OffgenError as exc:
        return "refused", str(exc).splitlines()[0]
    except Exception as exc:
        return "traceback", f"{type(exc).__name__}: {exc}"
    return "silent", ""


# ----------------------------------------------------------------------------- categories
def two_writers(work: Path, legacy: Path) -> Iterator[Result]:
    """Item 1: a second writer is refused while the first holds the store; a killed one is stale."""
    out = work / "locked"
    # The holder is a real `offgen convert`, paused inside its first write so that it holds the store.
    pause = (
        "import sys, time\n"
        "import offgen.data.writer as w\n"
        "original = w.StoreWriter.write\n"
        "def paused(self, *a, **k):\n"
        "    result = original(self, *a, **k); print('ready', flush=True); time.sleep(600)\n"
        "    return result\n"
        "w.StoreWriter.write = paused\n"
        "from offgen.cli import main\n"
        f"sys.argv = ['offgen', 'convert', {str(legacy)!r}, {str(out)!r}, '-g', 'coinrun']\n"
        "main()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", pause], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        holder.stdout.readline()
        for case, args in (
            ("convert beside a live writer", ("convert", str(legacy), str(out), "-g", "coinrun")),
            ("convert --resume beside a live writer", ("convert", str(legacy), str(out), "-g", "coinrun", "--resume")),
        ):  # fmt: skip
            outcome, detail = refusal(cli(*args))
            if outcome == "refused" and str(holder.pid) not in detail:
                outcome, detail = "silent", f"holder's pid not named: {detail}"
            yield Result("1 two writers", case, outcome, detail)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    outcome, detail = success(cli("convert", str(legacy), str(out), "-g", "coinrun", "--resume"))
    if outcome == "identical" and len(offgen.load(out)) != len(list(legacy.iterdir())):
        outcome, detail = "silent", "episodes lost or doubled"
    yield Result("1 two writers", "resume after the holder was SIGKILLed", outcome, detail)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise RuntimeError(f"{path}: campaign edit {old!r} not found")
    path.write_text(text.replace(old, new, 1))


METADATA_EDITS: tuple[tuple[str, str, Callable[[Path], None]], ...] = (
    ("2 metadata covered", "info.json final_frame key flipped", lambda s: _edit(s / "info.json", '"final_frame"', '"ginal_frame"')),
    ("2 metadata covered", "info.json game -> maze", lambda s: _edit(s / "info.json", '"coinrun"', '"maze"')),
    ("2 metadata covered", "info.json distribution_mode added", lambda s: _edit(s / "info.json", '"env": {}', '"env": {"distribution_mode": "hard"}')),
    ("2 metadata covered", "policies.json id changed", lambda s: _edit(s / "policies.json", '"unknown"', '"expert"')),
    ("2 metadata covered", "observations/zarr.json fill value", lambda s: _edit(s / "observations" / "zarr.json", '"fill_value": 0', '"fill_value": 7')),
    ("3 damaged metadata", "policies.json = nope", lambda s: (s / "policies.json").write_text("nope")),
    ("3 damaged metadata", 'policies.json = ["random"]', lambda s: (s / "policies.json").write_text('["random"]')),
    ("3 damaged metadata", 'manifest "files": []', lambda s: (s / "manifest.json").write_text(json.dumps({**json.loads((s / "manifest.json").read_text()), "files": []}))),
    ("3 damaged metadata", "codec.shard_frames 0", lambda s: _edit(s / "info.json", '"shard_frames": 128', '"shard_frames": 0')),
    ("3 damaged metadata", "observations/zarr.json garbage", lambda s: (s / "observations" / "zarr.json").write_text("{garbage")),
    ("3 damaged metadata", "episodes.bin emptied", lambda s: (s / "episodes.bin").write_bytes(b"")),
)  # fmt: skip


def metadata(work: Path, intact: Path) -> Iterator[Result]:
    """Items 2 and 3: each edit is caught by verify, info and load."""
    for number, (category, case, edit) in enumerate(METADATA_EDITS):
        store = work / f"meta_{number}"
        shutil.copytree(intact, store)
        try:
            edit(store)
        except RuntimeError as exc:  # the format changed under the campaign: say so, loudly
            yield Result(category, case, "traceback", str(exc))
            continue
        for command in ("verify", "info"):
            outcome, detail = refusal(cli(command, str(store)))
            if category.startswith("2") and command == "info" and outcome == "silent":
                continue  # info summarises; verify and load are the checks (docs/reliability.md)
            yield Result(category, f"{case}: offgen {command}", outcome, detail)
        outcome, detail = python_refusal(lambda store=store: offgen.load(store))  # type: ignore[misc]
        yield Result(category, f"{case}: offgen.load", outcome, detail)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(4)
    at = rng.randrange(min(len(buf), 512) if rng.random() < 0.5 else len(buf))
    if kind == 0:
        buf[at] ^= 1 << rng.randrange(8)
    elif kind == 1:
        buf[at : at + 8] = bytes(rng.randrange(256) for _ in range(8))
    elif kind == 2:
        del buf[at : at + rng.randrange(1, 64)]
    else:
        buf = buf[:at]
    return bytes(buf)


def legacy_fuzz(work: Path, legacy_npz: Path, legacy_npy: Path, cases: int) -> Iterator[Result]:
    """Item 4: seeded mutations of published-format files, read by offgen's legacy readers."""
    rng = random.Random(20261202)
    for source in (legacy_npz, legacy_npy):
        reference = read_legacy_episode(source, game="coinrun")
        original = source.read_bytes()
        target = work / "fuzz" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        tally: Counter[str] = Counter()
        for _ in range(cases):
            target.write_bytes(_mutate(original, rng))
            try:
                episode = read_legacy_episode(target, game="coinrun")
            except OffgenError:
                tally["refused"] += 1
                continue
            except Exception as exc:
                tally["traceback"] += 1
                yield Result("4 legacy files", f"{source.suffix} mutation", "traceback", repr(exc))
                continue
            same = (
                np.array_equal(episode.observations, reference.observations)
                and np.array_equal(episode.actions, reference.actions)
                and np.array_equal(episode.rewards, reference.rewards)
            )
            if same:
                tally["identical"] += 1
            elif source.suffix == ".npy":
                tally["documented"] += 1  # .npy has no checksum: docs/reliability.md
            else:
                tally["silent"] += 1
                yield Result("4 legacy files", f"{source.suffix} mutation", "silent", "")
        for outcome in ("refused", "identical", "documented"):
            for _ in range(tally[outcome]):
                yield Result("4 legacy files", f"{source.suffix} mutation", outcome)


@contextlib.contextmanager
def _tmpfs(path: Path, *options: str) -> Iterator[bool]:
    path.mkdir(parents=True, exist_ok=True)
    ok = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", ",".join(options), "offgen-campaign", str(path)],
            capture_output=True,
        ).returncode
        == 0
    )
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def environment(work: Path, legacy: Path) -> Iterator[Result]:
    """Item 5: a file where a folder should be, a full disk, a read-only file system."""
    a_file = work / "a_file.txt"
    a_file.write_text("not a store")
    for case, args in (
        ("convert output is a file", ("convert", str(legacy), str(a_file), "-g", "coinrun")),
        ("verify given a file", ("verify", str(a_file))),
        ("info given a file", ("info", str(a_file))),
    ):
        yield Result("5 environment", case, *refusal(cli(*args)))
    with _tmpfs(work / "full", "size=64k") as mounted:
        if mounted:
            proc = cli("convert", str(legacy), str(work / "full" / "s"), "-g", "coinrun")
            yield Result("5 environment", "convert onto a full disk", *refusal(proc))
    with _tmpfs(work / "ro", "size=1m", "ro") as mounted:
        if mounted:
            proc = cli("convert", str(legacy), str(work / "ro" / "s"), "-g", "coinrun")
            yield Result("5 environment", "convert onto a read-only file system", *refusal(proc))


def silent_acceptance(work: Path, legacy: Path, rng: np.random.Generator) -> Iterator[Result]:
    """Item 6: negative --commit-every, lengths beyond the game's limit, frames of another game,
    duplicate episodes."""
    proc = cli(
        "collect", "--game", "coinrun", "--policy", "random", "--num_env_steps", "64",
        "--commit-every", "-1", "--output", str(work / "ce"),
    )  # fmt: skip
    yield Result("6 silent acceptance", "--commit-every -1", *refusal(proc))
    long_folder = work / "long" / "coinrun"
    write_npz_episode(long_folder, synthetic_episode(rng, 600), 0)
    proc = cli("convert", str(long_folder), str(work / "as_maze"), "-g", "maze")
    yield Result(
        "6 silent acceptance", "600-step episodes converted as maze (limit 500)", *refusal(proc)
    )
    coinrun = work / "real" / "coinrun"  # real frames, within maze's limit: only their look says
    for index, episode in enumerate(procgen_openings("coinrun", 4, steps=8)):
        write_npz_episode(coinrun, episode, index)
    proc = cli("convert", str(coinrun), str(work / "real_as_maze"), "-g", "maze")
    yield Result("6 silent acceptance", "coinrun frames converted as maze", *refusal(proc))
    dup = work / "dup" / "coinrun"
    shutil.copytree(legacy, dup)
    first = sorted(dup.iterdir())[0]
    episode = read_legacy_episode(first, game="coinrun")
    write_npy_episode(dup, episode, int(first.name.split("_")[1]))  # same episode as .npy too
    proc = cli("convert", str(dup), str(work / "dup_store"), "-g", "coinrun")
    held = len(offgen.load(work / "dup_store")) if proc.returncode == 0 else -1
    if "Traceback" in proc.stderr:
        outcome = "traceback"
    elif proc.returncode == 0 and "warning:" in proc.stderr and held == len(list(legacy.iterdir())):
        outcome = "refused"  # said so, and counted once
    elif proc.returncode != 0:
        outcome = refusal(proc)[0]
    else:
        outcome = "silent"
    yield Result(
        "6 silent acceptance", "the same episode as .npz and .npy", outcome, f"{held} episodes"
    )


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def rangeless_server(work: Path, intact: Path) -> Iterator[Result]:
    """Item 7: a static server without Range support: correct reads, intact data verified."""
    root = work / "www"
    shutil.copytree(intact, root / "coinrun")
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/coinrun"
    try:
        yield Result("7 no HTTP Range", "offgen verify URL", *success(cli("verify", url)))
        try:
            remote = offgen.load(url)
            local = offgen.load(intact)
            same = all(
                np.array_equal(remote.episode(i).observations, local.episode(i).observations)
                for i in range(len(local))
            )
            yield Result(
                "7 no HTTP Range", "offgen.load(URL) episodes", "identical" if same else "silent"
            )
        except Exception as exc:
            yield Result("7 no HTTP Range", "offgen.load(URL) episodes", "traceback", repr(exc))
    finally:
        server.shutdown()
        server.server_close()


def file_modes(work: Path, legacy: Path) -> Iterator[Result]:
    """Item 8: every file of a store follows the umask (0644 under 022)."""
    out = work / "modes"
    old = os.umask(0o022)
    try:
        proc = cli("convert", str(legacy), str(out), "-g", "coinrun")
    finally:
        os.umask(old)
    if proc.returncode != 0:
        yield Result("8 file modes", "convert", *success(proc))
        return
    private = [p.name for p in out.rglob("*") if p.is_file() and p.stat().st_mode & 0o044 != 0o044]
    yield Result(
        "8 file modes",
        "every file group/world readable",
        "silent" if private else "identical",
        ", ".join(private),
    )


def refused_conversion(work: Path, rng: np.random.Generator) -> Iterator[Result]:
    """Item 9: a refused conversion leaves nothing behind, or its rerun continues."""
    folder = work / "refused" / "coinrun"
    write_npz_episode(folder, synthetic_episode(rng, 600), 0)
    out = work / "refused_store"
    first = cli("convert", str(folder), str(out), "-g", "maze")
    rerun = cli("convert", str(folder), str(out), "-g", "maze", "--force")
    if refusal(first)[0] != "refused":
        yield Result("9 refused conversion", "first run refused", *refusal(first))
        return
    yield Result("9 refused conversion", "rerun with --force after a refusal", *success(rerun))


def run_campaign(work: Path, fuzz_cases: int = 400) -> list[Result]:
    rng = np.random.default_rng(0)
    episodes = [synthetic_episode(rng, int(rng.integers(20, 60))) for _ in range(6)]
    legacy = work / "legacy" / "coinrun"
    for index, episode in enumerate(episodes):
        write_npz_episode(legacy, episode, index)
    npy = write_npy_episode(work / "legacy_npy" / "coinrun", episodes[0], 0)
    intact = build_store(work / "intact", episodes)
    results: list[Result] = []
    for block in (
        two_writers(work, legacy),
        metadata(work, intact),
        legacy_fuzz(work, sorted(legacy.iterdir())[0], npy, fuzz_cases),
        environment(work, legacy),
        silent_acceptance(work, legacy, rng),
        rangeless_server(work, intact),
        file_modes(work, legacy),
        refused_conversion(work, rng),
    ):
        results.extend(block)
    return results


def table(results: list[Result]) -> str:
    categories = sorted({r.category for r in results})
    lines = [
        "| category | tried | " + " | ".join(OUTCOMES) + " |",
        "|---|---:|" + "---:|" * len(OUTCOMES),
    ]
    for category in [*categories, "total"]:
        rows = [r for r in results if category in ("total", r.category)]
        counts = Counter(r.outcome for r in rows)
        lines.append(
            f"| {category} | {len(rows)} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--fuzz", type=int, default=400, help="mutations per legacy file type")
    parser.add_argument(
        "--work", type=Path, default=None, help="scratch folder (default: a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.setdefault("OFFGEN_HOME", str(Path(scratch) / "home"))
        results = run_campaign(args.work or Path(scratch), args.fuzz)
    print(table(results))
    bad = [r for r in results if r.outcome in ("traceback", "silent")]
    for r in bad:
        print(f"{r.outcome}: [{r.category}] {r.case}: {r.detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
