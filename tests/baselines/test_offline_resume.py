"""A run killed with SIGKILL after a checkpoint resumes to the same weights, bit for bit."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from offline_testlib import GAME, dodgeball_store, tiny_args

from baselines.offline.checkpoint import BEST, ROLLING, load_run_file
from baselines.train_offline import main

__all__ = ["dodgeball_store"]  # the fixture, imported for pytest

# The best-return episodes holding 500 steps (one of 1000 steps in this store) at batch 16: ~62
# updates per epoch, 2 epochs, a checkpoint after each.
FLAGS = {"dataset_size": 500, "epochs": 2, "ckpt_freq": 1, "eval_freq": 0}


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "progress.csv").open() as handle:
        return list(csv.DictReader(handle))


def kill_after_first_checkpoint(argv: list[str], run: Path) -> None:
    """Start the trainer in a subprocess and SIGKILL it as soon as rolling/model.pt exists."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "baselines.train_offline", *argv], env=env, stderr=subprocess.PIPE
    )
    try:
        while proc.poll() is None:
            if (run / ROLLING).exists():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""


@pytest.mark.slow  # ~40 s: three tiny trainings and their final evaluations
def test_sigkill_then_resume_equals_an_uninterrupted_run_bit_for_bit(
    tmp_path: Path, dodgeball_store: Path
) -> None:
    argv = tiny_args(tmp_path / "killed", dodgeball_store, xpid="r", **FLAGS)
    run = tmp_path / "killed" / GAME / "r"
    kill_after_first_checkpoint(argv, run)
    killed = load_run_file(run / ROLLING)  # whatever the kill interrupted, this file is whole
    updates = 2 * (killed.trainer["data"]["num_transitions"] // 16)
    assert not killed.trainer["finished"] and 0 < killed.update < updates
    for path in run.rglob("*.pt"):
        load_run_file(path)  # no file named like a checkpoint is partial

    assert main([*argv, "--resume"]) == 0
    whole = tmp_path / "whole"
    assert main(tiny_args(whole, dodgeball_store, xpid="r", **FLAGS)) == 0
    resumed = load_run_file(run / ROLLING)
    reference = load_run_file(whole / GAME / "r" / ROLLING)
    assert resumed.update == reference.update == updates
    assert resumed.model_state_dict.keys() == reference.model_state_dict.keys()
    for key, value in reference.model_state_dict.items():
        assert resumed.model_state_dict[key].equal(value), key
    assert resumed.trainer["sampler"] == reference.trainer["sampler"]
    adam = resumed.optimizers["policy"]["state"]
    assert {int(s["step"]) for s in adam.values()} == {updates}
    for index, state in reference.optimizers["policy"]["state"].items():
        assert adam[index]["exp_avg_sq"].equal(state["exp_avg_sq"])
    assert load_run_file(run / BEST).model_state_dict.keys() == reference.model_state_dict.keys()
    # Every update's CSV row exactly once, and the same losses as the uninterrupted run.
    log, ref = rows(run), rows(whole / GAME / "r")
    assert [r["update"] for r in log] == [r["update"] for r in ref]
    assert [r["loss/bc"] for r in log] == [r["loss/bc"] for r in ref]

    # Resuming a finished run changes nothing.
    before = (run / ROLLING).read_bytes()
    assert main([*argv, "--resume"]) == 0
    assert (run / ROLLING).read_bytes() == before
