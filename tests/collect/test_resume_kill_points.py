"""Resume after SIGKILL at chosen points: near the end, in ``.npz`` output, in one shard.

docs/collection.md promises: killed at any point (SIGKILL included), a rerun of the same command
resumes and the result is identical to an uninterrupted run -- same episodes, same order, exactly
the budget. test_resume.py kills early by watching the store from outside; here the child process
kills *itself* at a precise point (a hook installed before the CLI runs), so kills near the end --
the last whole episode committed, the budget-crossing (cut) episode in flight, the store being
finalised -- are deterministic rather than a race the child may win.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from collect.conftest import collect_random_coinrun, committed_episodes
from offgen.collect import shard_budget
from offgen.collect.journal import JOURNAL_NAME
from offgen.collect.sinks import NPZ_STATE
from offgen.data import OffgenStore
from offgen.data.format import MANIFEST
from offgen.data.legacy import LegacyName, read_legacy_episode

BUDGET, ENVS, SEED = 2000, 16, 5  # 8 episodes, the shortest of 16 environments
SHARDS, SHARD = 3, 1
BASE = [
    "--game", "coinrun", "--policy", "random", "--num_env_steps", str(BUDGET),
    "--num-envs", str(ENVS), "--seed", str(SEED), "--no-progress",
]  # fmt: skip
EVERY_EPISODE = ["--commit-every", "0"]

# Runs the offgen-collect CLI after installing one kill hook, chosen by OFFGEN_TEST_KILL:
#   journal:N   SIGKILL right after the journal record of episode N (this process's count; "cut" =
#               the budget-crossing episode) was appended, before the episode reaches the output;
#   precommit   the cut episode's journal record is synced, the output has not got the episode
#               (store: before the commit; npz: before its file is written);
#   frames      store: the cut episode's frames are persisted, its episode record is not appended;
#   torn:N      npz: episode N's file is half written (a temp file), then SIGKILL;
#   finish      every episode handed to the output, before it is marked complete;
#   manifest    store: manifest.json written, info.json still says "writing";
#   finished    the output is complete, the journal not yet deleted.
_CHILD = r"""
import io, os, signal, sys
import numpy as np
import offgen.data.format as store_format
import offgen.data.writer as writer
from offgen.collect import journal, sinks

point, _, arg = os.environ["OFFGEN_TEST_KILL"].partition(":")
state = {"appended": 0, "cut": False, "npz": 0}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

append = journal.Journal.append
def hooked_append(self, record):
    append(self, record)
    state["cut"] = record.cut
    n, state["appended"] = state["appended"], state["appended"] + 1
    if point == "journal" and (record.cut if arg == "cut" else n == int(arg)):
        die()
journal.Journal.append = hooked_append

if point == "precommit":
    def store_flush(self, jour, _orig=sinks.StoreSink.flush):
        if state["cut"]:
            jour.sync()
            die()
        _orig(self, jour)
    sinks.StoreSink.flush = store_flush
    def npz_write(self, episode, jour, _orig=sinks.NpzSink.write):
        if state["cut"]:
            jour.sync()
            die()
        _orig(self, episode, jour)
    sinks.NpzSink.write = npz_write
elif point == "frames":
    def append_records(self, _orig=writer.StoreWriter._append_records):
        if state["cut"]:
            die()
        _orig(self)
    writer.StoreWriter._append_records = append_records
elif point == "torn":
    savez = np.savez_compressed
    def torn_savez(handle, **arrays):
        n, state["npz"] = state["npz"], state["npz"] + 1
        if n != int(arg):
            return savez(handle, **arrays)
        buf = io.BytesIO()
        savez(buf, **arrays)
        handle.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        handle.flush()
        die()
    np.savez_compressed = torn_savez
elif point in ("finish", "finished"):
    for cls in (sinks.StoreSink, sinks.NpzSink):
        def finish(self, info, _orig=cls.finish):
            if point == "finish":
                die()
            _orig(self, info)
            die()
        cls.finish = finish
elif point == "manifest":
    write_json = store_format.atomic_write_json  # the manifest is written by format.write_manifest
    def hooked_write_json(path, obj):
        write_json(path, obj)
        if os.path.basename(path) == "manifest.json":
            die()
    store_format.atomic_write_json = hooked_write_json
elif point not in ("none", "journal"):
    raise SystemExit(f"unknown kill point {point!r}")

from offgen.cli import collect_main
sys.argv = ["offgen-collect", *sys.argv[1:]]
collect_main()
"""


def _run(args: list[str], kill: str = "none") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OFFGEN_TEST_KILL": kill}
    return subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip


def _killed(args: list[str], kill: str) -> None:
    proc = _run(args, kill)
    assert proc.returncode == -9, f"not killed at {kill} (rc {proc.returncode}): {proc.stderr}"


def _resume(args: list[str]) -> str:
    done = _run(args)
    assert done.returncode == 0, done.stderr
    return done.stdout


# ------------------------------------------------------------------------------------ references
@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> OffgenStore:
    out = tmp_path_factory.mktemp("ref") / "store"
    return OffgenStore(collect_random_coinrun(out, budget=BUDGET, num_envs=ENVS, seed=SEED))


@pytest.fixture(scope="module")
def reference_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "npz"
    return collect_random_coinrun(out, budget=BUDGET, num_envs=ENVS, seed=SEED, fmt="npz")


@pytest.fixture(scope="module")
def reference_shard(tmp_path_factory: pytest.TempPathFactory) -> OffgenStore:
    out = tmp_path_factory.mktemp("ref") / "shard"
    collect_random_coinrun(
        out, budget=BUDGET, num_envs=ENVS, seed=SEED, shard_index=SHARD, num_shards=SHARDS
    )
    return OffgenStore(out)


def _assert_same_store(out: Path, reference: OffgenStore, budget: int) -> None:
    """``out`` is complete, holds exactly ``budget`` steps and equals ``reference`` episode for
    episode (same order), frames included; nothing is duplicated or lost."""
    store = OffgenStore(out)
    assert store.info.status == "complete"
    assert not (out / JOURNAL_NAME).exists()
    rows = store.table.rows
    assert int(rows["length"].sum()) == budget == store.info.counts.transitions
    assert np.array_equal(rows["episode_id"], np.arange(len(rows)))
    assert np.array_equal(rows["step_offset"], np.cumsum(rows["length"]) - rows["length"])
    keys = {(int(r["level_seed"]), store.episode(i).actions.tobytes()) for i, r in enumerate(rows)}
    assert len(keys) == len(rows), "an episode was written twice"
    # only the last episode is the cut one
    assert bool(rows["truncated"][-1]) and not bool(rows["terminated"][-1])
    assert np.array_equal(rows, reference.table.rows)
    assert np.array_equal(store.actions, reference.actions)
    assert np.array_equal(store.rewards, reference.rewards)
    frames = store.num_frames_stored
    assert frames == reference.num_frames_stored == len(rows) + budget
    assert np.array_equal(store.read_frames(0, frames), reference.read_frames(0, frames))
    store.verify()  # manifest hashes and every chunk decode (raises on corruption)


# ------------------------------------------------------------------------ 1. kill near the end
@pytest.mark.parametrize(
    ("kill", "committed_after_kill", "status_after_kill"),
    [
        ("journal:cut", -1, "writing"),  # last whole episode committed, cut one only journaled
        ("precommit", -1, "writing"),  # cut episode's journal record synced, store commit not run
        ("frames", -1, "writing"),  # cut episode's frames on disk, its record not
        ("finish", 0, "writing"),  # every episode committed, store not finalised
        ("manifest", 0, "writing"),  # manifest written, info.json not yet "complete"
        ("finished", 0, "complete"),  # store complete, journal still there
    ],
)
def test_kill_near_the_end_then_resume(
    reference: OffgenStore,
    tmp_path: Path,
    kill: str,
    committed_after_kill: int,
    status_after_kill: str,
) -> None:
    out = tmp_path / "store"
    args = [*BASE, *EVERY_EPISODE, "--output", str(out)]
    _killed(args, kill)
    total = len(reference.table)
    assert committed_episodes(out) == total + committed_after_kill
    assert OffgenStore(out, allow_incomplete=True).info.status == status_after_kill
    assert (out / JOURNAL_NAME).exists()
    if kill == "manifest":
        assert (out / MANIFEST).exists()
    stdout = _resume(args)
    assert ("already complete" in stdout) == (kill == "finished")
    _assert_same_store(out, reference, BUDGET)


def test_kill_at_finish_with_uncommitted_episodes_then_resume(
    reference: OffgenStore, tmp_path: Path
) -> None:
    """Default commit schedule: at the end most episodes are buffered, not committed."""
    out = tmp_path / "store"
    args = [*BASE, "--output", str(out)]
    _killed(args, "finish")
    assert committed_episodes(out) < len(reference.table)
    _resume(args)
    _assert_same_store(out, reference, BUDGET)


def test_kill_twice_near_the_end_then_resume(reference: OffgenStore, tmp_path: Path) -> None:
    """Killed mid-run, then killed again while resuming just before the cut episode commits."""
    out = tmp_path / "store"
    args = [*BASE, *EVERY_EPISODE, "--output", str(out)]
    _killed(args, "journal:3")
    assert committed_episodes(out) == 3
    _killed(args, "precommit")
    assert committed_episodes(out) == len(reference.table) - 1
    _resume(args)
    _assert_same_store(out, reference, BUDGET)


# ---------------------------------------------------------------------------------- 2. npz output
def _npz_files(out: Path) -> list[Path]:
    return sorted(out.glob("*.npz"), key=lambda p: LegacyName.parse(p.name).index)


def _assert_same_npz(out: Path, reference: Path) -> None:
    """Same files (names up to their timestamp, and contents) as the uninterrupted run, exactly
    the budget, nothing else left in the folder (no temp file of a torn write, no journal)."""
    files, ref_files = _npz_files(out), _npz_files(reference)
    names = [LegacyName.parse(p.name) for p in files]
    assert [n.index for n in names] == list(range(len(files)))
    assert sum(n.length for n in names) == BUDGET
    assert len(files) == len(ref_files)
    leftovers = sorted(p.name for p in out.iterdir() if p.suffix != ".npz")
    assert leftovers == [NPZ_STATE], leftovers
    keys = set()
    for path, ref_path in zip(files, ref_files, strict=True):
        name, ref_name = LegacyName.parse(path.name), LegacyName.parse(ref_path.name)
        assert (name.index, name.length, name.level_seed, name.episode_return) == (
            ref_name.index,
            ref_name.length,
            ref_name.level_seed,
            ref_name.episode_return,
        )
        got, want = read_legacy_episode(path, "coinrun"), read_legacy_episode(ref_path, "coinrun")
        assert np.array_equal(got.actions, want.actions)
        assert np.array_equal(got.rewards, want.rewards)
        assert np.array_equal(got.observations, want.observations)
        keys.add((got.level_seed, got.actions.tobytes()))
    assert len(keys) == len(files), "an episode was written twice"


@pytest.mark.parametrize(
    "kill",
    [
        "journal:2",  # mid-run: episode 2 journaled, its file not written
        "torn:3",  # mid-run: episode 3's file half written
        "precommit",  # last whole episode written; cut one journaled (synced), no file yet
        "torn:cut",  # cut episode's file half written (index resolved below)
        "finish",  # every file written, folder not marked complete
        "finished",  # folder complete, journal still there
    ],
)
def test_npz_kill_then_resume(reference_npz: Path, tmp_path: Path, kill: str) -> None:
    out = tmp_path / "npz"
    args = [*BASE, *EVERY_EPISODE, "--format", "npz", "--output", str(out)]
    total = len(_npz_files(reference_npz))
    if kill == "torn:cut":
        kill = f"torn:{total - 1}"
    _killed(args, kill)
    before = _npz_files(out)
    expected = {"journal:2": 2, "torn:3": 3, "finish": total, "finished": total}.get(
        kill, total - 1
    )
    assert len(before) == expected
    for path in before:  # every file that looks like an episode is a whole one
        read_legacy_episode(path, "coinrun")
    if kill.startswith("torn"):
        # the torn write is a hidden temp file, never a file that looks like an episode
        assert [p for p in out.iterdir() if ".tmp-" in p.name]
    stdout = _resume(args)
    assert ("already complete" in stdout) == (kill == "finished")
    _assert_same_npz(out, reference_npz)


# -------------------------------------------------------------------------------------- 3. shard
@pytest.mark.parametrize("kill", ["journal:1", "precommit", "finish"])
def test_shard_kill_then_resume(reference_shard: OffgenStore, tmp_path: Path, kill: str) -> None:
    out = tmp_path / "shard"
    args = [*BASE, *EVERY_EPISODE, "--num-shards", str(SHARDS), "--shard-index", str(SHARD),
            "--output", str(out)]  # fmt: skip
    budget = shard_budget(BUDGET, SHARD, SHARDS)
    assert int(reference_shard.table.rows["length"].sum()) == budget
    _killed(args, kill)
    total = len(reference_shard.table)
    assert (
        committed_episodes(out) == {"journal:1": 1, "precommit": total - 1, "finish": total}[kill]
    )
    _resume(args)
    _assert_same_store(out, reference_shard, budget)
    collection = OffgenStore(out).info.provenance["collection"]
    assert (collection["shard_index"], collection["num_shards"]) == (SHARD, SHARDS)
