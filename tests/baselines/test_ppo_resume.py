"""A run killed with SIGKILL resumes from rolling/ to the same total steps, each update once."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ppo_testlib import GAME, tiny_args

from baselines.common import load_training_state
from baselines.ppo import main

UPDATES = 6
FLAGS = {
    "num_env_steps": 64 * UPDATES,
    "archive_interval": 3,
    "eval_episodes": 1,
    "final_eval_episodes": 1,
    "eval_num_envs": 1,
}


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "progress.csv").open() as handle:
        return list(csv.DictReader(handle))


def kill_after(argv: list[str], run: Path, updates: int) -> None:
    """Start the trainer in a subprocess and SIGKILL it once ``updates`` rows are logged."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "baselines.ppo", *argv], env=env, stderr=subprocess.PIPE
    )
    try:
        while proc.poll() is None:
            if (run / "progress.csv").exists() and len(rows(run)) >= updates:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""


def test_sigkill_then_resume_runs_every_update_exactly_once(tmp_path: Path) -> None:
    argv = tiny_args(tmp_path / "killed", xpid="r", **FLAGS)
    run = tmp_path / "killed" / GAME / "r"
    kill_after(argv, run, updates=2)
    killed_at = load_training_state(run / "rolling" / "model.pt").update
    assert 1 <= killed_at < UPDATES

    assert main([*argv, "--resume"]) == 0
    log = rows(run)
    assert [int(r["update"]) for r in log] == list(range(1, UPDATES + 1))
    state = load_training_state(run / "rolling" / "model.pt")
    assert state.update == UPDATES and state.trainer["env_steps"] == FLAGS["num_env_steps"]
    # Adam's step count proves the number of gradient steps: updates x epochs x minibatches.
    assert {int(s["step"]) for s in state.optimizer_state_dict["state"].values()} == {UPDATES * 2}
    assert sorted(int(p.name.split("_")[1]) for p in (run / "checkpoint").glob("*.pt")) == [3, 6]
    assert len(list((run / "final").glob("*.pt"))) == 1

    # Up to the kill, the run is the same as an uninterrupted one with the same seed.
    whole = tmp_path / "whole"
    assert main(tiny_args(whole, xpid="r", **FLAGS)) == 0
    reference = rows(whole / GAME / "r")
    for column in ("loss/policy", "loss/value", "train/mean_episode_return"):
        assert [r[column] for r in log[:killed_at]] == [r[column] for r in reference[:killed_at]]

    # Resuming a finished run changes nothing.
    final = next((run / "final").glob("*.pt"))
    before = final.read_bytes()
    assert main([*argv, "--resume"]) == 0
    assert final.read_bytes() == before and len(rows(run)) == UPDATES
