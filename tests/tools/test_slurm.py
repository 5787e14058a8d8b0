"""A sweep submitted as one array job to a real single-node SLURM, then combined, ranked and plotted."""

from __future__ import annotations

import json
import shlex
import subprocess
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


def sacct(job_id: str, fields: str, rows: int, timeout: float = 20) -> list[dict[str, str]]:
    """``sacct`` rows of a job's array tasks (allocations only, ``-X``), once ``rows`` are
    COMPLETED (the controller sends records to slurmdbd asynchronously)."""
    names = fields.split(",")
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", fields],
            capture_output=True,
            text=True,
            check=True,
        )
        found = [dict(zip(names, ln.split("|"), strict=True)) for ln in proc.stdout.splitlines()]
        done = [r for r in found if r.get("State") == "COMPLETED"]
        if len(done) >= rows or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.slow
def test_submit_cli_on_real_slurm(slurm_cluster: Any, tmp_path: Path) -> None:
    """Resources from the sweep file and the command line reach sbatch and the scheduler."""
    sweep_path = tmp_path / "sweep.json"
    config = {
        "time_min": 30,
        "mem_gb": 1,
        "job_name": "cfg-sweep",
        "additional": {"comment": "from-cfg"},
    }
    sweep_path.write_text(json.dumps({"parameters": {"lr": [0.1, 0.2]}, "slurm": config}))
    marker = tmp_path / "marks"
    marker.mkdir()
    logs = tmp_path / "logs"
    res = runner.invoke(
        app,
        [
            "submit", str(sweep_path), "-t", f"touch {marker}/{{index}}", "--runs", "2", "--per-task", "3",
            "--time-min", "2", "--cpus-per-task", "1", "--array-parallelism", "1",
            "--folder", str(logs), "--wait",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "submitted 4 commands as 2 array tasks (slurm)" in res.output
    assert sorted(p.name for p in marker.iterdir()) == ["0", "1", "2", "3"]

    # The generated sbatch script: 4 commands packed 3 per task -> array 0-1, CLI overrides
    # (time, cpus, parallelism) and file values (mem, name, extra option) all present.
    scripts = list(logs.glob("*_submission.sh"))
    assert len(scripts) == 1, scripts
    sbatch = {line for line in scripts[0].read_text().splitlines() if line.startswith("#SBATCH")}
    for expected in (
        "#SBATCH --array=0-1%1",
        "#SBATCH --time=2",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --mem=1GB",
        "#SBATCH --job-name=cfg-sweep",
        "#SBATCH --comment=from-cfg",
    ):
        assert expected in sbatch, sorted(sbatch)
    # ... and the scheduler applied them (accounting records every array task).
    array_id = scripts[0].name.split("_")[0]
    rows = sacct(array_id, "JobID,JobName,Timelimit,ReqCPUS,ReqMem,State", rows=2)
    assert sorted(r["JobID"] for r in rows) == [f"{array_id}_0", f"{array_id}_1"], rows
    for row in rows:
        assert row["JobName"] == "cfg-sweep" and row["Timelimit"] == "00:02:00", row
        assert row["ReqCPUS"] == "1" and row["ReqMem"] == "1G" and row["State"] == "COMPLETED", row


@pytest.mark.slow
def test_failed_and_killed_tasks_end_the_wait(slurm_cluster: Any, tmp_path: Path) -> None:
    """A task whose command fails and a task that dies without a result (its job process is
    killed) are reported by ``submit --wait``, which returns instead of hanging: accounting
    lets submitit see the dead task's FAILED state."""
    sweep_path = tmp_path / "sweep.json"
    sweep_path.write_text(json.dumps({"parameters": {"lr": [0.1, 0.2, 0.3]}}))
    # index 0 succeeds; 1 exits 3 (run_chunk raises); 2 SIGKILLs the submitit process running
    # it ($PPID of the command's shell), so the task never writes a result.
    template = 'case {index} in 1) exit 3;; 2) kill -9 "$PPID"; sleep 30;; esac'
    start = time.monotonic()
    res = runner.invoke(
        app,
        ["submit", str(sweep_path), "-t", template, "-i", "0-2", "--time-min", "2",
         "--folder", str(tmp_path / "logs"), "--wait"],
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert res.exit_code == 1, res.output
    assert "1 tasks succeeded, 2 failed" in res.output, res.output
    assert "1 of 1 commands failed" in res.output and "'returncode': 3" in res.output
    assert "has not produced any output (state: FAILED)" in res.output, res.output
    assert elapsed < 90, elapsed


@pytest.mark.slow
def test_cancelled_task_raises_instead_of_hanging(slurm_cluster: Any, tmp_path: Path) -> None:
    """A cancelled array task raises ``UncompletedJobError`` from ``result()`` (state CANCELLED)."""
    import submitit

    # The command ignores SIGTERM (as does submitit's job process), so scancel's SIGKILL after
    # KillWait ends the task before it can write any result.
    submission = submit(
        ["trap '' TERM; sleep 60"],
        executor="slurm",
        folder=tmp_path / "logs",
        resources=Resources(time_min=2),
        cwd=tmp_path,
    )
    (job,) = submission.jobs
    deadline = time.monotonic() + 30
    while job.watcher.get_state(job.job_id, mode="force") != "RUNNING":
        assert time.monotonic() < deadline, job.state
        time.sleep(0.2)
    job.cancel()
    start = time.monotonic()
    # scancel's SIGKILL reaches the task's processes one by one: usually the job process dies
    # first (state CANCELLED); under load the command can die first and the job process records
    # it killed (-9) before its own SIGKILL lands. Either way result() raises, promptly.
    killed = r"state: CANCELLED|'returncode': -9"
    with pytest.raises(submitit.core.utils.UncompletedJobError, match=killed):
        submission.wait()
    assert time.monotonic() - start < 60


def test_cluster_start_not_root_and_error_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not root: SlurmUnavailable (the fixture's only skip), nothing started. A start error as
    root carries the daemon logs (the fixture fails with it)."""
    from . import slurm_cluster as sc

    cluster = sc.SlurmCluster(tmp_path)
    monkeypatch.setattr(sc, "is_root", lambda: False)
    with pytest.raises(sc.SlurmUnavailable, match="not root"):
        cluster.start()
    assert cluster.started == [] and not cluster.conf.exists()
    (tmp_path / "slurmctld.log").write_text("fatal: something broke\n")
    err = cluster._fail("slurmctld failed", "exit 1")
    assert isinstance(err, sc.SlurmStartError)
    assert "slurmctld failed: exit 1" in str(err) and "fatal: something broke" in str(err)
