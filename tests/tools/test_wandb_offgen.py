"""offgen-wandb as a user of offgen types it: offgen's own runs by default, empty selections
explained, and every error in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from offgen_tools.wandb_export.cli import app, normalize_argv
from typer.testing import CliRunner, Result

runner = CliRunner()
PROJECT = "offgen-baselines"
EXE = str(Path(sys.executable).parent / "offgen-wandb")


def cli(*args: str) -> Result:
    return runner.invoke(app, normalize_argv(list(args)))


def typed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as a user types it."""
    assert Path(EXE).exists(), f"{EXE} missing: install the project (pip install -e .)"
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, check=False, env=env, timeout=300
    )


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json"))


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def test_offgen_runs_are_the_default(offgen_wandb_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    summary = tmp_path / "summary.json"
    proc = typed(
        "download",
        "--project",
        PROJECT,
        "--offline-dir",
        str(offgen_wandb_runs),
        "--output",
        str(out),
        "--summary-json",
        str(summary),
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    stems = ("train_return", "validation_return", "test_return")
    assert files_under(out) == sorted(
        [f"coinrun/bc/bc-lr5e-4/seed_88/{m}.json" for m in stems]
        + [f"bigfish/cql/cql-a4/seed_1/{m}.json" for m in stems]
        + ["coinrun/ppo/ppo-coinrun/seed_0/mean_episode_return.json"]
        + ["coinrun/ppo/ppo-coinrun/seed_0/test_return.json"]
    )  # the dqn run is not one of the baselines' algorithms
    assert "runs matched: 3" in proc.stdout
    doc = json.loads((out / "coinrun/bc/bc-lr5e-4/seed_88/validation_return.json").read_text())
    assert doc["metric"] == "eval/validation_return" and doc["run_name"] == "bc-coinrun-s88"
    assert doc["steps"] == [0, 100, 200] and doc["values"] == [1.0, 2.0, 3.0]
    report = json.loads(summary.read_text())
    assert report["funnel"] == []  # runs matched: nothing to explain
    # PPO logs no offline evaluation on its training levels: reported, no file.
    assert any("ppo-coinrun-s0" in e and "eval/train_return" in e for e in report["empty"])

    # Selections use offgen's config keys (env_name, algo, seed).
    again = typed(
        "download",
        "--project",
        PROJECT,
        "--offline-dir",
        str(offgen_wandb_runs),
        "--output",
        str(tmp_path / "sel"),
        "--envs",
        "coinrun",
        "--algos",
        "ppo",
        "dqn",
        "--seeds",
        "0",
        "--metrics",
        "eval/test_return",
        "-q",
    )
    assert again.returncode == 0, again.stderr
    assert files_under(tmp_path / "sel") == [
        "coinrun/dqn/dqn/seed_0/test_return.json",
        "coinrun/ppo/ppo-coinrun/seed_0/test_return.json",
    ]


def test_no_match_says_which_filter_removed_the_runs(
    offgen_wandb_runs: Path, tmp_path: Path
) -> None:
    base = ["download", "--project", PROJECT, "--offline-dir", str(offgen_wandb_runs), "-q"]
    res = cli(
        *base,
        "--output",
        str(tmp_path / "a"),
        "--algos",
        "bc",
        "iql",
        "--envs",
        "starpilot",
        "--summary-json",
        str(tmp_path / "s.json"),
    )
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "runs matched: 0" in text
    assert f"--project {PROJECT}: every run: 4 left" in text
    assert "--states: state in [finished, crashed, running]: 4 left" in text
    assert (
        "--algos: config.algo in [bc, iql]: 1 left (removed 3, which have: cql, dqn, ppo)" in text
    )
    assert "--envs: config.env_name in [starpilot]: 0 left (removed 1, which have: coinrun)" in text
    funnel = json.loads((tmp_path / "s.json").read_text())["funnel"]
    assert [s["left"] for s in funnel] == [4, 4, 1, 0]

    # A wrong project name is the first step that empties the selection.
    res = cli(
        "download",
        "--project",
        "offgen-baselnes",
        "--offline-dir",
        str(offgen_wandb_runs),
        "--output",
        str(tmp_path / "b"),
        "-q",
    )
    assert "--project offgen-baselnes: every run: 0 left" in " ".join(res.output.split())


def test_seed_presets_and_layout_files_start_from_a_base(
    offgen_wandb_runs: Path, tmp_path: Path
) -> None:
    layouts = tmp_path / "layouts.yaml"
    layouts.write_text(
        "lr_sweep:\n"  # base: download (offgen's runs) is the default
        "  path: '{env}/{algo}/lr_{lr}/seed_{seed}/{metric}.json'\n"
        "  config_keys: {lr: lr}\n"
        "  defaults: {algos: [bc, cql], metrics: [eval/test_return]}\n"
    )
    out = tmp_path / "lr"
    proc = typed(
        "layout",
        "--layout-file",
        str(layouts),
        "--name",
        "lr_sweep",
        "--project",
        PROJECT,
        "--offline-dir",
        str(offgen_wandb_runs),
        "--output",
        str(out),
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    assert files_under(out) == [
        "bigfish/cql/lr_0.0005/seed_1/test_return.json",
        "coinrun/bc/lr_0.0005/seed_88/test_return.json",
    ]
    layouts.write_text("x:\n  base: tagz\n  path: '{metric}.json'\n")
    line = one_error_line(
        typed("layout", "--layout-file", str(layouts), "--name", "x", "--project", PROJECT)
    )
    assert "base 'tagz' is not a built-in layout" in line and "'tags'" in line

    # The seed's presets keep the seed's config keys: offgen's runs have no 'env'/'level'.
    res = cli(
        "tags",
        "--project",
        PROJECT,
        "--offline-dir",
        str(offgen_wandb_runs),
        "--output",
        str(tmp_path / "t"),
        "-q",
    )
    assert "runs matched: 0" in res.output
    assert "--algos: config.algo in [PPO," in " ".join(res.output.split())


def test_every_error_is_one_line(offgen_wandb_runs: Path, tmp_path: Path) -> None:
    line = one_error_line(
        typed("download", "--project", PROJECT, "--offline-dir", str(tmp_path / "wnadb"))
    )
    assert f"offline run folder {tmp_path / 'wnadb'} does not exist" in line
    (tmp_path / "empty").mkdir()
    line = one_error_line(
        typed("download", "--project", PROJECT, "--offline-dir", str(tmp_path / "empty"))
    )
    assert "no offline runs in" in line and "offline-run-" in line

    line = one_error_line(
        typed(
            "download",
            "--project",
            PROJECT,
            "--offline-dir",
            str(offgen_wandb_runs),
            "--levels",
            "1",
        )
    )
    assert (
        "layout 'download' reads no 'level' from the run config, so --levels does not apply" in line
    )
    line = one_error_line(
        typed(
            "download",
            "--project",
            PROJECT,
            "--offline-dir",
            str(offgen_wandb_runs),
            "--metrics",
            "=x",
        )
    )
    assert "--metrics: empty metric name" in line

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("DEFAULT: {entity: e\n  project: [\n")
    line = one_error_line(typed("export", str(bad_yaml)))
    assert f"{bad_yaml}: invalid YAML" in line
    line = one_error_line(
        typed("layout", "--layout-file", str(bad_yaml), "--name", "x", "--project", PROJECT)
    )
    assert f"{bad_yaml}: invalid YAML" in line

    # No WandB login: the API refuses to open.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_API")}
    line = one_error_line(typed("download", "--project", "team/p", env=env))
    assert "cannot open the WandB API" in line and "wandb login" in line

    # A damaged run file is named.
    damaged = tmp_path / "damaged" / "run-x.wandb"
    damaged.parent.mkdir()
    damaged.write_bytes(b"not a wandb file at all")
    line = one_error_line(
        typed("download", "--project", PROJECT, "--offline-dir", str(damaged.parent))
    )
    assert "run-x.wandb" in line


def test_refused_listing_and_missing_extra_are_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from offgen_tools.wandb_export import cli as cli_module

    class NoSuchProject:
        def runs(self, path: str, filters: object = None, per_page: int = 50) -> object:
            raise ValueError(f"Could not find project {path}")

    monkeypatch.setattr(cli_module, "API_FACTORY", NoSuchProject)
    res = cli("download", "--project", "team/nope", "--output", str(tmp_path), "-q")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert (
        "listing runs of WandB project 'team/nope' failed: ValueError: Could not find project"
        in (" ".join(res.output.split()))
    )

    cfg = tmp_path / "export.yaml"
    cfg.write_text("DEFAULT: {entity: e, project: p, output_path: o, fields: [a]}\nexp: {}\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML not installed
    res = cli("export", str(cfg))
    assert res.exit_code == 2
    assert "pip install 'offgen[wandb]'" in " ".join(res.output.split())


def test_help_shows_offgen_defaults() -> None:
    proc = typed("download", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.replace("│", " ").split())
    assert "bc bcq bct cql dt iql ppo" in text and "coinrun" in text
    assert "eval/test_return" in text
    top = typed("--help").stdout
    assert "download" in top and "Examples" in top
