"""Every download preset and the YAML exporter, end to end through the CLI, on real offline runs."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from offgen_tools.wandb_export.cli import app, normalize_argv
from typer.testing import CliRunner, Result

runner = CliRunner()


def cli(*args: str) -> Result:
    return runner.invoke(app, normalize_argv(list(args)))


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json"))


def preset(name: str, root: Path, out: Path, *extra: str) -> Result:
    res = cli(
        name, "--project", "hasard", "--offline-dir", str(root), "--output", str(out), "-q", *extra
    )
    return res


def test_normalize_argv() -> None:
    assert normalize_argv(["tags", "--levels", "1", "2", "--seeds=3,4", "--overwrite"]) == [
        "tags",
        "--levels",
        "1",
        "--levels",
        "2",
        "--seeds",
        "3",
        "--seeds",
        "4",
        "--overwrite",
    ]
    assert normalize_argv(["export", "-e", "a", "b", "cfg.yaml", "-o"]) == [
        "export",
        "-e",
        "a",
        "-e",
        "b",
        "cfg.yaml",
        "-o",
    ]


def test_tags_preset_defaults(wandb_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    res = preset("tags", wandb_runs, out)
    assert res.exit_code == 0, res.output
    expected_dirs = [
        "main/armament_burden/PPO/level_1/seed_1",
        "main/armament_burden/PPOCost/level_1/seed_1",
        "main/armament_burden/PPOCost/level_1/seed_2",
        "main/armament_burden/PPOCost/level_1/seed_3",
        "main/remedy_rush/PPO/level_1/seed_3",  # the crashed run
        "main/remedy_rush/PPO/level_3/seed_2",
        "main/volcanic_venture/PPOLag/level_2/seed_1",  # soft run only; TEST, hard and failed runs excluded
    ]
    assert files_under(out) == sorted(
        f"{d}/{m}.json" for d in expected_dirs for m in ("cost", "reward")
    )
    assert "runs matched: 7" in res.output and "files written: 14" in res.output
    doc = json.loads((out / "main/armament_burden/PPO/level_1/seed_1/reward.json").read_text())
    assert doc["steps"] == [
        0,
        100,
        200,
        300,
        400,
        600,
        700,
        800,
        900,
    ]  # the series goes on after a missing row
    assert doc["values"] == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert doc["sampled"] is False and doc["run_name"] == "ppo-ab-l1-s1"
    cost = json.loads((out / "main/armament_burden/PPO/level_1/seed_1/cost.json").read_text())
    assert cost["values"][3] is None and len(cost["values"]) == 10

    again = preset("tags", wandb_runs, out)
    assert (
        "files written: 0" in again.output
        and "files already present (use --overwrite): 14" in again.output
    )
    forced = preset("tags", wandb_runs, out, "--overwrite")
    assert "files written: 14" in forced.output


def test_tags_preset_with_tags_forbidden_hard_and_legacy(wandb_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    res = preset(
        "tags",
        wandb_runs,
        out,
        "--wandb_tags",
        "NIPS",
        "--levels",
        "1",
        "2",
        "--metrics",
        "reward/reward",
    )
    assert res.exit_code == 0, res.output
    assert files_under(out) == [
        "NIPS/armament_burden/PPO/level_1/seed_1/reward.json",
        "NIPS/remedy_rush/PPO/level_1/seed_3/reward.json",
        "NIPS/volcanic_venture/PPOLag/level_2/seed_1/reward.json",
    ]
    shutil.rmtree(out)
    res = preset("tags", wandb_runs, out, "--wandb-tags", "NIPS", "TEST", "--algos", "PPOLag")
    assert "NIPS/armament_burden/PPOLag/level_1/seed_2/reward.json" in files_under(
        out
    )  # TEST asked for explicitly
    shutil.rmtree(out)
    res = preset(
        "tags", wandb_runs, out, "--hard_constraint", "--legacy-lists", "--wandb-tags", "NIPS"
    )
    assert res.exit_code == 0, res.output
    assert files_under(out) == [
        "NIPS/volcanic_venture/PPOLag/level_2/seed_1/cost_hard.json",
        "NIPS/volcanic_venture/PPOLag/level_2/seed_1/reward_hard.json",
    ]
    legacy = json.loads(
        (out / "NIPS/volcanic_venture/PPOLag/level_2/seed_1/reward_hard.json").read_text()
    )
    assert legacy == [float(i) for i in range(10)]
    shutil.rmtree(out)
    res = preset("tags", wandb_runs, out, "--wandb-tags", "NOSUCHTAG")
    assert res.exit_code == 0 and "requested tags with no runs: ['NOSUCHTAG']" in res.output
    res = preset("tags", wandb_runs, out, "--states", "failed", "--envs", "remedy_rush")
    assert files_under(out) == [
        "main/remedy_rush/PPO/level_1/seed_1/cost.json",
        "main/remedy_rush/PPO/level_1/seed_1/reward.json",
    ]


def test_cost_scale_preset_reports_missing_key(wandb_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "cost"
    summary = tmp_path / "summary.json"
    res = preset("cost-scale", wandb_runs, out, "--summary-json", str(summary))
    assert res.exit_code == 0, res.output
    assert files_under(out) == [
        "armament_burden/PPOCost/level_1/scale_0.1/seed_1/cost.json",
        "armament_burden/PPOCost/level_1/scale_0.1/seed_1/reward.json",
        "armament_burden/PPOCost/level_1/scale_1/seed_2/cost.json",
        "armament_burden/PPOCost/level_1/scale_1/seed_2/reward.json",
    ]
    assert (
        "ppocost-missing-scale" in res.output and "config lacks key 'penalty_scaling'" in res.output
    )
    data = json.loads(summary.read_text())
    assert data["runs_matched"] == 3 and len(data["skipped"]) == 1
    res = preset("cost-scale", wandb_runs, out, "--hard-constraint")
    assert res.exit_code == 2 and "no hard-constraint mode" in res.output


def test_safety_bound_preset_and_include_runs(wandb_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "main"
    res = preset("safety-bound", wandb_runs, out, "--algos", "PPOLag")
    assert files_under(out) == [
        "volcanic_venture/PPOLag/level_2/bound_5/seed_1/cost.json",
        "volcanic_venture/PPOLag/level_2/bound_5/seed_1/reward.json",
    ], res.output
    res = preset(
        "safety-bound",
        wandb_runs,
        out,
        "--algos",
        "PPOLag",
        "--hard-constraint",
        "--metrics",
        "reward/reward=r",
    )
    assert "volcanic_venture/PPOLag/level_2/bound_50/seed_1/r_hard.json" in files_under(out)
    shutil.rmtree(out)
    res = preset(
        "safety-bound", wandb_runs, out, "--algos", "TRPO", "--include_runs", "ppolag-vv-l2-s1-soft"
    )
    assert res.exit_code == 0, res.output
    assert "runs matched: 1" in res.output
    assert len(files_under(out)) == 2


def test_tags_from_config(wandb_runs: Path, tmp_path: Path) -> None:
    """--tags-from-config reads tags from a config key (list or scalar) instead of the run's tags,
    for selection, the forbidden tags and the <tag> folder."""
    args = ["--wandb-tags", "ABLATION", "--metrics", "reward/reward=reward", "--summary-json"]
    out = tmp_path / "data"
    res = preset(
        "tags", wandb_runs, out, *args, str(tmp_path / "s.json"), "--tags-from-config", "wandb_tags"
    )
    assert res.exit_code == 0, res.output
    assert files_under(out) == [
        "ABLATION/remedy_rush/PPO/level_3/seed_2/reward.json",  # config: wandb_tags: ABLATION
        "ABLATION/volcanic_venture/PPOLag/level_2/seed_1/reward.json",  # [NIPS, ABLATION]
    ]  # ppolag-ab-l1-s2-test is excluded: TEST is in its config tags (and not requested)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["runs_matched"] == 2 and summary["unmatched_tags"] == []
    doc = json.loads((out / "ABLATION/remedy_rush/PPO/level_3/seed_2/reward.json").read_text())
    assert doc["run_name"] == "eval-nogroup"

    # The same request against the run's own tags: no run carries ABLATION.
    other = tmp_path / "by_run_tags"
    res = preset("tags", wandb_runs, other, *args, str(tmp_path / "s2.json"))
    assert res.exit_code == 0, res.output
    assert files_under(other) == [] and "requested tags with no runs: ['ABLATION']" in res.output

    # Requesting TEST too lets the run with TEST in its config tags in.
    res = preset(
        "tags", wandb_runs, tmp_path / "t", "--wandb-tags", "TEST", "--metrics", "reward/reward=reward",
        "--tags-from-config", "wandb_tags",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert files_under(tmp_path / "t") == ["TEST/armament_burden/PPOLag/level_1/seed_2/reward.json"]


def test_samples_offline_gives_complete_history(wandb_runs: Path, tmp_path: Path) -> None:
    """Offline files have no server-side sampling: --samples N still writes every row."""
    out = tmp_path / "data"
    res = preset(
        "tags",
        wandb_runs,
        out,
        "--samples",
        "3",
        "--metrics",
        "reward/reward=reward",
        "--levels",
        "3",
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "main/remedy_rush/PPO/level_3/seed_2/reward.json").read_text())
    assert doc["sampled"] is False and doc["samples"] == 3 and doc["steps"] == [0, 100, 200, 300]
    for bad in ("0", "-2", "some"):
        res = preset("tags", wandb_runs, out, "--samples", bad)
        assert res.exit_code == 2 and "--samples must be 'all' or a positive integer" in res.output


def test_samples_through_the_api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--samples N asks the API for a sampled history (files say so); --samples all scans it all."""
    from offgen_tools.testing import FakeApi, RecordedRun
    from offgen_tools.wandb_export import cli as cli_module

    config = {"env": "armament_burden", "algo": "PPO", "level": 1, "seed": 1}
    rows = [{"_step": s * 10, "loss": float(s)} for s in range(50)]
    api = FakeApi([RecordedRun("r1", "ppo-ab-l1-s1", config=config, rows=rows)])
    monkeypatch.setattr(cli_module, "API_FACTORY", lambda: api)
    out = tmp_path / "data"
    target = out / "main/armament_burden/PPO/level_1/seed_1/loss.json"
    base = ["tags", "--project", "team/proj", "--output", str(out), "--metrics", "loss=loss", "-q"]

    res = cli(*base, "--samples", "5")
    assert res.exit_code == 0, res.output
    doc = json.loads(target.read_text())
    assert doc["sampled"] is True and doc["samples"] == 5
    assert doc["steps"] == [0, 100, 200, 300, 400] and doc["values"] == [0, 10, 20, 30, 40]
    kinds = {r[0] for r in api.requests}
    assert "history" in kinds and "scan_history" not in kinds, api.requests

    api.requests.clear()
    res = cli(*base, "--samples", "all", "--overwrite")
    assert res.exit_code == 0, res.output
    doc = json.loads(target.read_text())
    assert doc["sampled"] is False and doc["samples"] is None and len(doc["steps"]) == 50
    kinds = {r[0] for r in api.requests}
    assert "scan_history" in kinds and "history" not in kinds, api.requests


def test_custom_layout_file(wandb_runs: Path, tmp_path: Path) -> None:
    layouts = tmp_path / "layouts.yaml"
    layouts.write_text(
        "lr_sweep:\n"
        "  base: tags\n"  # the seed project's config keys and defaults (offgen's are the default)
        "  path: '{env}/{algo}/lr_{lr}/seed_{seed}/{metric}{suffix}.json'\n"
        "  config_keys: {lr: lr}\n"
        "  defaults: {output: data/lr, algos: [PPOLag]}\n"
    )
    out = tmp_path / "lr"
    res = cli(
        "layout",
        "--layout-file",
        str(layouts),
        "--name",
        "lr_sweep",
        "--project",
        "hasard",
        "--offline-dir",
        str(wandb_runs),
        "--output",
        str(out),
        "-q",
        "--metrics",
        "reward/reward",
    )
    assert res.exit_code == 0, res.output
    assert files_under(out) == ["volcanic_venture/PPOLag/lr_0.003/seed_1/reward.json"]
    layouts.write_text("bad:\n  path: '{env}/{nope}/{metric}.json'\n")
    res = cli("layout", "--layout-file", str(layouts), "--name", "bad", "--project", "hasard")
    assert res.exit_code == 2 and "nope" in res.output


def write_config(tmp_path: Path, root: Path, out: Path) -> Path:
    cfg = tmp_path / "export.yaml"
    cfg.write_text(
        f"""
DEFAULT:
  entity: local
  project: hasard
  fields: [reward/reward, policy_stats/avg_cost]
  output_path: {out}
  offline_dirs: [{root}]
  history_samples: all
nips_train:
  groups: [g1, g2]
  config:
    algo: {{values: [PPO, PPOLag]}}
    lr: {{min: 0.001, max: 0.005}}
eval_only:
  job_types: [eval]
  output_data_type: csv
by_name:
  runs: [ppocost-ab-l1-s1, ppocost-ab-l1-s2]
  summary:
    final_reward: {{min: 5}}
  align: index
  fields: [reward/reward]
"""
    )
    return cfg


def test_yaml_exporter(wandb_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    cfg = write_config(tmp_path, wandb_runs, out)
    res = cli("export", str(cfg), "-q")
    assert res.exit_code == 0, res.output
    with np.load(out / "nips_train" / "reward_reward.npz", allow_pickle=False) as data:
        assert sorted(data["run_names"].tolist()) == ["ppo-ab-l1-s1", "ppolag-vv-l2-s1-soft"]
        assert data["steps"].tolist() == list(range(0, 1000, 100))
        row = data["values"][data["run_names"].tolist().index("ppo-ab-l1-s1")]
        assert np.isnan(row[5]) and row[6] == 6.0  # missing row is NaN, the series goes on
        assert data["values"].shape == (2, 10) and len(data["run_ids"]) == 2
    with np.load(out / "nips_train" / "policy_stats_avg_cost.npz", allow_pickle=False) as data:
        assert np.isnan(data["values"]).sum() == 1
    rows = list(csv.reader((out / "eval_only" / "reward_reward.csv").open()))
    assert rows[0] == ["run_id", "run_name", "0", "100", "200", "300"]
    assert rows[1][1:] == [
        "eval-nogroup",
        "0.0",
        "1.0",
        "2.0",
        "3.0",
    ]  # job types filter without groups
    with np.load(out / "by_name" / "reward_reward.npz", allow_pickle=False) as data:
        assert data["run_names"].tolist() == ["ppocost-ab-l1-s1"]  # summary min filter
        assert data["steps"].shape == (1, 10)

    res = cli("export", str(cfg), "-q", "-e", "eval_only")
    assert "eval_only: skipped" in res.output and "nips_train" not in res.output
    (out / "eval_only" / "reward_reward.csv").write_text("stale")
    res = cli("export", str(cfg), "-q", "-o", "-e", "eval_only", "by_name")
    assert (
        res.exit_code == 0 and "eval_only: 1 runs" in res.output and "by_name: 1 runs" in res.output
    )
    assert (out / "eval_only" / "reward_reward.csv").read_text().startswith("run_id")
    res = cli("export", str(cfg), "-e", "nope")
    assert res.exit_code == 2 and "unknown experiment" in res.output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "DEFAULT: {entity: e, project: p, output_path: o}\nexp1: {}\n",
            "experiment 'exp1': required key 'fields'",
        ),
        (
            "DEFAULT: {entity: e, project: p, output_path: o, fields: [a]}\nexp2: {history_samples: some}\n",
            "experiment 'exp2': key 'history_samples'",
        ),
        (
            "DEFAULT: {entity: e, project: p, output_path: o, fields: [a]}\nexp3: {config: {lr: {between: 1}}}\n",
            "experiment 'exp3': key 'config.lr'",
        ),
        (
            "DEFAULT: {entity: e, project: p, output_path: o, fields: [a]}\nexp4: {output_data_type: parquet}\n",
            "experiment 'exp4': key 'output_data_type'",
        ),
        (
            "DEFAULT: {entity: e, project: p, output_path: o, fields: [a]}\nexp5: {grups: [a]}\n",
            "experiment 'exp5' has unknown key 'grups'",
        ),
        (
            "DEFAULT: {entity: e, project: p, output_path: o, fields: [a]}\n",
            "at least one experiment",
        ),
    ],
)
def test_yaml_config_errors_name_key_and_experiment(
    tmp_path: Path, body: str, message: str
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(body)
    res = cli("export", str(cfg))
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())


def test_console_script_as_typed(wandb_runs: Path, tmp_path: Path) -> None:
    # The script installed beside this interpreter: CI runs `make test` without the venv on PATH.
    exe = str(Path(sys.executable).parent / "offgen-wandb")
    assert Path(exe).exists(), f"{exe} missing: install the project (pip install -e .)"
    out = tmp_path / "typed"
    proc = subprocess.run(
        [
            exe,
            "tags",
            "--project",
            "hasard",
            "--offline-dir",
            str(wandb_runs),
            "--output",
            str(out),
            "--levels",
            "3",
            "--seeds",
            "2",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert files_under(out) == [
        "main/remedy_rush/PPO/level_3/seed_2/cost.json",
        "main/remedy_rush/PPO/level_3/seed_2/reward.json",
    ]
    assert (
        "Examples"
        in subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    )
