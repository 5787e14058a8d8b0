"""A sweep submitted as one array job to a real single-node SLURM, then combined, ranked and plotted."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from offgen_tools.sweeps.cli import app
from offgen_tools.sweeps.commands import commands_for
from offgen_tools.sweeps.grid import load_sweep
from offgen_tools.sweeps.submit import Resources, submit
from typer.testing import CliRunner

JOB = Path(__file__).with_name("sweep_job.py")
runner = CliRunner()


def wait_done(jobs: list[Any], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    for job in jobs:
        while not job.done(force_check=True):
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job.job_id} not done after {timeout}s: {job.state}")
            job.watcher.get_state(job.job_id, mode="force")
            time.sleep(0.5)


@pytest.mark.slow
def test_array_sweep_on_real_slurm(slurm_cluster: Any, tmp_path: Path) -> None:
    sweep_path = tmp_path / "sweep.json"
    sweep_path.write_text(
        json.dumps(
            {"agent_name": "toy", "parameters": {"lr": [0.1, 0.5, 0.3]}, "slurm": {"time_min": 5}}
        )
    )
    out = tmp_path / "results"
    template = f"{shlex.quote(sys.executable)} {JOB} {sweep_path} {{index}} {out}"
    sweep = load_sweep(sweep_path)
    cmds = commands_for(sweep.grid, template, range(6))  # 3 settings x 2 runs
    submission = submit(
        cmds,
        executor="slurm",
        folder=tmp_path / "logs",
        resources=Resources.from_config(sweep.slurm).override(cpus_per_task=1),
        per_task=2,
        cwd=tmp_path,
    )
    ids = submission.job_ids
    assert len(ids) == 3 and len({i.split("_")[0] for i in ids}) == 1  # ONE array job, 3 tasks
    assert sorted(i.split("_")[1] for i in ids) == ["0", "1", "2"]
    wait_done(list(submission.jobs))
    outcomes = submission.wait()
    assert [o["returncode"] for chunk in outcomes for o in chunk] == [0] * 6
    assert sorted(p.name for p in out.iterdir()) == [f"index_{i}.json" for i in range(6)]

    res = runner.invoke(app, ["combine", str(out)])
    assert res.exit_code == 0 and "missing" not in res.output, res.output
    res = runner.invoke(app, ["best", str(out / "data.json"), "--json", "--last-k", "3"])
    best = json.loads(res.output)[0]
    assert best["setting"] == 1 and best["agent_params"] == {"lr": 0.5} and best["runs"] == 2
    res = runner.invoke(
        app,
        ["plot", f"toy={out / 'data.json'}", "--out", str(tmp_path / "plot"), "--n-boot", "200"],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "plot.png").stat().st_size > 0 and (tmp_path / "plot.pdf").stat().st_size > 0


@pytest.mark.slow
def test_submit_cli_on_real_slurm(slurm_cluster: Any, tmp_path: Path) -> None:
    sweep_path = tmp_path / "sweep.json"
    sweep_path.write_text(json.dumps({"parameters": {"lr": [0.1, 0.2]}}))
    marker = tmp_path / "marks"
    marker.mkdir()
    res = runner.invoke(
        app,
        [
            "submit", str(sweep_path), "-t", f"touch {marker}/{{index}}", "--runs", "2", "--per-task", "3",
            "--time-min", "2", "--folder", str(tmp_path / "logs"), "--wait",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "submitted 4 commands as 2 array tasks (slurm)" in res.output
    assert sorted(p.name for p in marker.iterdir()) == ["0", "1", "2", "3"]
