"""Sweep commands, results, combining, best settings, plots and local/debug submission."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from offgen_tools.errors import ResultError, SubmitError
from offgen_tools.sweeps import RunResult, combine, read_result, write_result
from offgen_tools.sweeps.analysis import best_setting, bootstrap_band, iqm, rank_settings, score_run
from offgen_tools.sweeps.cli import app
from offgen_tools.sweeps.results import load_combined
from offgen_tools.sweeps.submit import Resources, pack, submit
from typer.testing import CliRunner

JOB = Path(__file__).with_name("sweep_job.py")
runner = CliRunner()


def make_sweep(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.json"
    path.write_text(
        json.dumps(
            {
                "agent_name": "toy",
                "parameters": {"lr": [0.1, 0.5, 0.3], "decay": [0.9]},
                "slurm": {"time_min": 5, "cpus_per_task": 1},
            }
        )
    )
    return path


def job_template(sweep: Path, out: Path, fmt: str = "json") -> str:
    return f"{shlex.quote(sys.executable)} {JOB} {sweep} {{index}} {out} {fmt}"


def test_result_roundtrip_json_and_npz(tmp_path: Path) -> None:
    result = RunResult(
        experiment={"environment": {"env": "x"}, "agent": {"a": 1}},
        index=4,
        setting=1,
        run=1,
        seed=1,
        num_settings=3,
        agent_params={"lr": 0.5},
        run_data={
            "timesteps_at_eval": np.arange(3),
            "eval_episode_rewards": np.ones((3, 2)),
            "ragged": [[1.0], [1.0, 2.0]],
            "train_time": 1.5,
            "note": "hi",
        },
    )
    for fmt in ("json", "npz"):
        path = write_result(result, tmp_path / fmt, fmt)
        assert path.name == f"index_4.{fmt}"
        back = read_result(path)
        assert back.index == 4 and back.seed == 1 and back.agent_params == {"lr": 0.5}
        np.testing.assert_array_equal(
            np.asarray(back.run_data["eval_episode_rewards"]), np.ones((3, 2))
        )
        assert back.run_data["ragged"] == [[1.0], [1.0, 2.0]]
        assert back.run_data["note"] == "hi"
    with np.load(tmp_path / "npz" / "index_4.npz", allow_pickle=False) as data:
        assert "__meta__" in data.files  # readable without pickle
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ResultError, match="format"):
        read_result(tmp_path / "bad.json")


def test_commands_print_save_and_run_local(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path)
    out = tmp_path / "results"
    res = runner.invoke(
        app, ["commands", str(sweep), "-t", "echo {index} {seed} {params[lr]}", "--runs", "2"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        "echo 0 0 0.1",
        "echo 1 0 0.5",
        "echo 2 0 0.3",
        "echo 3 1 0.1",
        "echo 4 1 0.5",
        "echo 5 1 0.3",
    ]
    saved = tmp_path / "cmds.txt"
    res = runner.invoke(
        app, ["commands", str(sweep), "-t", "echo {index}", "-i", "1-2,5", "--save", str(saved)]
    )
    assert res.exit_code == 0, res.output
    assert saved.read_text() == "echo 1\necho 2\necho 5\n"
    res = runner.invoke(
        app,
        [
            "commands",
            str(sweep),
            "-t",
            job_template(sweep, out),
            "--runs",
            "2",
            "--run-local",
            "-j",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [f"index_{i}.json" for i in range(6)]


def test_show_cli(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path)
    res = runner.invoke(app, ["show", str(sweep)])
    assert json.loads(res.output)["num_settings"] == 3
    res = runner.invoke(app, ["show", str(sweep), "--index", "4"])
    assert json.loads(res.output) == {
        "index": 4,
        "setting": 1,
        "run": 1,
        "seed": 1,
        "params": {"lr": 0.5, "decay": 0.9},
    }
    res = runner.invoke(app, ["show", str(sweep), "--find", "lr=0.3", "--runs", "3"])
    assert json.loads(res.output) == {"settings": [2], "indices": [2, 5, 8]}
    res = runner.invoke(app, ["show", str(sweep), "--find", "zz=1"])
    assert res.exit_code == 2 and "unknown parameter" in res.output
    assert "Examples" in runner.invoke(app, ["--help"]).output


def _run_indices(sweep: Path, out: Path, indices: list[int], fmt: str = "json") -> None:
    from offgen_tools.sweeps.commands import commands_for, run_commands
    from offgen_tools.sweeps.grid import load_sweep

    cmds = commands_for(load_sweep(sweep).grid, job_template(sweep, out, fmt), indices)
    assert all(o.returncode == 0 for o in run_commands(cmds, jobs=2))


def test_combine_missing_duplicates_best_plot(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path)
    out = tmp_path / "results"
    _run_indices(sweep, out, [0, 1, 2, 3, 4, 5, 6, 8])  # index 7 missing (run 2 of setting 1)
    _run_indices(sweep, out / "again", [4], fmt="npz")  # duplicate of index 4 (same setting, seed)
    res = runner.invoke(app, ["combine", str(out), "--runs", "3"])
    assert res.exit_code == 0, res.output
    assert "missing indices (1): [7]" in res.output
    assert "duplicate setting 1 seed 1" in res.output
    combined = load_combined(out / "data.json")
    assert combined.missing_indices == (7,)
    assert [len(combined.experiment_data[s]["runs"]) for s in range(3)] == [3, 2, 3]
    assert [r["random_seed"] for r in combined.experiment_data[0]["runs"]] == [0, 1, 2]
    assert combined.experiment_data[1]["agent_params"] == {"lr": 0.5, "decay": 0.9}

    best = best_setting(combined, "eval_episode_rewards", last_k=3)
    assert best.setting == 1 and best.agent_params["lr"] == 0.5  # highest lr rises highest
    worst = rank_settings(combined, "eval_episode_rewards", criterion="auc", maximize=False)[0]
    assert worst.setting == 0
    res = runner.invoke(
        app,
        [
            "best",
            str(out / "data.json"),
            "--metric",
            "eval_episode_rewards",
            "--json",
            "--top",
            "3",
        ],
    )
    assert [r["setting"] for r in json.loads(res.output)] == [1, 2, 0]

    res = runner.invoke(
        app,
        [
            "plot",
            f"toy={out / 'data.json'}",
            f"again={out}",
            "--out",
            str(tmp_path / "plots" / "toy"),
            "--stat",
            "iqm",
        ],
    )
    assert res.exit_code == 0, res.output
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF")):
        assert (tmp_path / "plots" / f"toy{suffix}").read_bytes()[:4] == magic


def test_combine_without_results(tmp_path: Path) -> None:
    with pytest.raises(ResultError, match="no result files"):
        combine(tmp_path)


def test_statistics() -> None:
    assert iqm(np.array([[1.0], [2.0], [3.0], [100.0]]))[0] == pytest.approx(2.5)
    curves = np.array([[0.0, 1.0], [0.0, 3.0], [0.0, 2.0]])
    center, low, high = bootstrap_band(curves, "mean", n_boot=200)
    assert center.tolist() == [0.0, 2.0]
    assert low[1] <= 2.0 <= high[1] and low[0] == high[0] == 0.0
    x = np.array([0.0, 1.0, 2.0])
    assert score_run(x, np.array([0.0, 1.0, 2.0]), "auc", 1) == pytest.approx(1.0)
    assert score_run(x, np.array([0.0, 1.0, 2.0]), "last", 2) == pytest.approx(1.5)


def test_pack_and_resources() -> None:
    assert pack(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(SubmitError):
        pack([1], 0)
    res = Resources.from_config({"time_min": 5, "partition": "debug"}).override(
        time_min=9, mem_gb=None
    )
    assert res.time_min == 9 and res.partition == "debug"
    assert res.executor_parameters()["slurm_partition"] == "debug"
    with pytest.raises(SubmitError, match="unknown key"):
        Resources.from_config({"walltime": 5})


@pytest.mark.parametrize("executor", ["debug", "local"])
def test_submit_with_local_and_debug_executors(tmp_path: Path, executor: str) -> None:
    sweep = make_sweep(tmp_path)
    out = tmp_path / "results"
    from offgen_tools.sweeps.commands import commands_for
    from offgen_tools.sweeps.grid import load_sweep

    cmds = commands_for(load_sweep(sweep).grid, job_template(sweep, out), range(5))
    submission = submit(
        cmds,
        executor=executor,
        folder=tmp_path / "logs",
        per_task=2,
        resources=Resources(time_min=5),
    )
    assert len(submission.jobs) == 3 and [len(c) for c in submission.chunks] == [2, 2, 1]
    outcomes = submission.wait()
    assert [o["returncode"] for chunk in outcomes for o in chunk] == [0] * 5
    assert sorted(p.name for p in out.iterdir()) == [f"index_{i}.json" for i in range(5)]


def test_submit_cli_debug_reports_failure(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path)
    res = runner.invoke(
        app,
        [
            "submit",
            str(sweep),
            "-t",
            "exit {index}",
            "-i",
            "0-1",
            "--executor",
            "debug",
            "--folder",
            str(tmp_path / "l"),
            "--wait",
        ],
    )
    assert res.exit_code == 1
    assert "1 tasks succeeded, 1 failed" in res.output
