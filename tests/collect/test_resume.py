"""Resume after SIGKILL: a rerun with the same arguments ends with exactly the uninterrupted data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from collect.conftest import collect_random_coinrun, committed_episodes
from offgen.data import OffgenStore

CLI = str(Path(sys.executable).with_name("offgen-collect"))
BUDGET, ENVS, SEED = 3000, 8, 21
ARGS = [
    "--game", "coinrun", "--policy", "random", "--num_env_steps", str(BUDGET),
    "--num-envs", str(ENVS), "--seed", str(SEED), "--commit-every", "0", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> OffgenStore:
    out = tmp_path_factory.mktemp("ref") / "store"
    return OffgenStore(collect_random_coinrun(out, budget=BUDGET, num_envs=ENVS, seed=SEED))


def _run_and_kill(out: Path, after_episodes: int) -> int:
    """Start the CLI and SIGKILL it once ``after_episodes`` episodes are committed."""
    proc = subprocess.Popen([CLI, *ARGS, "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "info.json").exists() and committed_episodes(out) >= after_episodes:
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return committed_episodes(out)


@pytest.mark.parametrize("after_episodes", [0, 2])
def test_resume_after_sigkill_gives_the_uninterrupted_dataset(
    reference: OffgenStore, tmp_path: Path, after_episodes: int
) -> None:
    out = tmp_path / "store"
    committed = _run_and_kill(out, after_episodes)
    assert committed < len(reference.table), "the run finished before it could be killed"
    info = OffgenStore(out, allow_incomplete=True).info
    assert info.status == "writing"
    done = subprocess.run([CLI, *ARGS, "--output", str(out)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    resumed = OffgenStore(out)
    rows = resumed.table.rows
    assert int(rows["length"].sum()) == BUDGET
    assert np.array_equal(
        rows, reference.table.rows
    )  # same episodes, same order: none lost or doubled
    assert np.array_equal(resumed.actions, reference.actions)
    assert np.array_equal(resumed.rewards, reference.rewards)
    last = len(rows) - 1
    f0 = int(rows["frame_offset"][last])
    assert np.array_equal(resumed.read_frames(0, f0 + 1), reference.read_frames(0, f0 + 1))


def test_kill_twice_then_resume(reference: OffgenStore, tmp_path: Path) -> None:
    out = tmp_path / "store"
    _run_and_kill(out, 1)
    _run_and_kill(out, 3)
    done = subprocess.run([CLI, *ARGS, "--output", str(out)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert np.array_equal(OffgenStore(out).table.rows, reference.table.rows)
