"""offgen-sweep combine / best / table on offline baseline run folders written in the real format
(baselines' metadata.json and evaluate.json, offgen's evaluation report), numbers checked by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from offgen_tools.sweeps.cli import app
from offgen_tools.sweeps.offline import combine_offline_runs, offline_table
from typer.testing import CliRunner

from baselines.common.logging import METADATA_NAME, run_metadata, write_evaluation
from offgen._io import atomic_write_json
from offgen.evaluation import EpisodeResult, EvaluationReport, SplitResult

ROOT = Path(__file__).parents[2]
SPLIT_LEVELS = {"train": (0, 200), "validation": (200, 50), "test": (250, 2**31 - 251)}
runner = CliRunner()

# Coinrun's normalised return is (R - 5) / 5: a mean return of 7.5 is 0.5.
# (algo, lr) -> seed -> mean return per split (train, validation, test), coinrun.
COINRUN = {
    ("bc", 5e-4): {
        88: (9.0, 8.0, 7.0),
        89: (10.0, 9.0, 6.0),
        90: (8.0, 7.0, 9.0),
        91: (9.5, 8.5, 8.0),
    },
    ("bc", 1e-4): {
        88: (6.0, 6.0, 6.0),
        89: (6.0, 6.0, 6.0),
        90: (6.0, 6.0, 6.0),
        91: (6.0, 6.0, 6.0),
    },
    ("cql", 5e-4): {88: (8.0, 7.5, 6.5), 89: (8.0, 7.5, 6.5), 90: (8.0, 7.5, 6.5)},
}


def write_run(
    root: Path, algo: str, game: str, seed: int, lr: float, means: tuple[float, ...]
) -> Path:
    """One run folder as train_offline + evaluate_offline leave it (two episodes per split)."""
    xpid = f"{algo}-lr{lr}-bs256-0123abcd_{seed}"
    run_dir = root / game / xpid
    config = {
        "algo": algo, "dataset": "expert_1M", "env_name": game, "game": game, "seed": seed,
        "lr": lr, "batch_size": 256, "epochs": 100, "save_path": str(root), "xpid": xpid,
        "device": "cpu", "resume": True, "cql_alpha": 4.0,
    }  # fmt: skip
    atomic_write_json(run_dir / METADATA_NAME, run_metadata(algo, config))
    splits = {}
    for split, mean in zip(SPLIT_LEVELS, means, strict=True):
        start, n = SPLIT_LEVELS[split]
        episodes = [EpisodeResult(start, mean - 1.0, 50), EpisodeResult(start + 1, mean + 1.0, 60)]
        splits[split] = SplitResult.of(game, split, start, n, episodes)
    report = EvaluationReport(game, f"offline-{algo}", "greedy", seed, splits)
    details = {"report": report.to_dict(), "algo": algo, "update": 100}
    write_evaluation(run_dir, report.csv_row(), details)
    return run_dir


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for (algo, lr), seeds in COINRUN.items():
        for seed, means in seeds.items():
            write_run(root, algo, "coinrun", seed, lr, means)
    for seed in (88, 89, 90):  # bigfish: every seed alike, so the interval has no width
        write_run(root, "bc", "bigfish", seed, 5e-4, (20.0, 10.0, 5.0))
    return root


def iqm_by_hand(values: list[float]) -> float:
    ordered = sorted(values)
    cut = len(ordered) // 4  # int(0.25 n) from each end
    middle = ordered[cut : len(ordered) - cut]
    return sum(middle) / len(middle)


def test_combine_and_best_read_offline_runs(runs: Path) -> None:
    combined = combine_offline_runs(runs)
    assert combined.num_settings == 4 and combined.runs == 4
    params = {s: e["agent_params"] for s, e in combined.experiment_data.items()}
    cql = next(s for s, p in params.items() if p["algo"] == "cql")
    assert params[cql]["env_name"] == "coinrun" and "seed" not in params[cql]
    fish = next(s for s, p in params.items() if p["env_name"] == "bigfish")
    assert combined.missing_indices == tuple(sorted((cql + 3 * 4, fish + 3 * 4)))  # 3 of 4 seeds
    first = combined.experiment_data[cql]["runs"][0]
    assert first["random_seed"] == 88 and first["test_norm"] == [pytest.approx(0.3)]

    res = runner.invoke(app, ["combine", str(runs)])
    assert res.exit_code == 0 and "combined 14 runs of 4 settings" in res.output
    res = runner.invoke(
        app, ["best", str(runs / "coinrun"), "--metric", "validation_norm", "--top", "3", "--json"]
    )
    ranked = json.loads(res.stdout)
    assert [(r["agent_params"]["algo"], r["agent_params"]["lr"]) for r in ranked] == [
        ("bc", 5e-4), ("cql", 5e-4), ("bc", 1e-4)
    ]  # fmt: skip
    assert ranked[0]["score"] == pytest.approx((0.6 + 0.8 + 0.4 + 0.7) / 4)


def test_table_iqm_and_bootstrap_ci_by_hand(runs: Path) -> None:
    rows = {(r.algo, r.game): r for r in offline_table(combine_offline_runs(runs), n_boot=300)}
    assert sorted(rows) == [("bc", "bigfish"), ("bc", "coinrun"), ("cql", "coinrun")]
    bc = rows[("bc", "coinrun")]
    assert bc.agent_params["lr"] == 5e-4 and bc.seeds == 4  # the best setting by validation
    per_seed = [[(m - 5.0) / 5.0 for m in means] for means in COINRUN[("bc", 5e-4)].values()]
    for j, split in enumerate(("train", "validation", "test")):
        column = [seed[j] for seed in per_seed]
        assert bc.center[split] == pytest.approx(iqm_by_hand(column))
        # The percentile bootstrap, redone by hand: 300 resamples of the 4 seeds (rng seed 0).
        picks = np.random.default_rng(0).integers(0, 4, size=(300, 4))
        stats = sorted(iqm_by_hand([column[i] for i in pick]) for pick in picks)
        assert bc.low[split] == pytest.approx(np.quantile(stats, 0.025))
        assert bc.high[split] == pytest.approx(np.quantile(stats, 0.975))
        assert bc.low[split] <= bc.center[split] <= bc.high[split]
    assert bc.center["test"] == pytest.approx((0.4 + 0.6) / 2)  # test norms 0.4 0.2 0.8 0.6
    fish = rows[("bc", "bigfish")]
    expected = {"train": (20 - 1) / 39, "validation": (10 - 1) / 39, "test": (5 - 1) / 39}
    for split, value in expected.items():  # bigfish: (R - 1) / (40 - 1); equal seeds, no width
        assert fish.center[split] == fish.low[split] == fish.high[split] == pytest.approx(value)


def test_table_cli_as_a_user(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "results" / "offline"
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "offgen-sweep"),
            "table",
            str(runs),
            "--out",
            str(out),
            "--n-boot",
            "200",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tools'}"},
    )
    assert proc.returncode == 0, proc.stderr
    markdown = (tmp_path / "results" / "offline.md").read_text()
    lines = markdown.splitlines()
    assert lines[2] == "| algorithm | game | seeds | train | validation | test |"
    assert (
        lines[4]
        == "| bc | bigfish | 3 | 0.487 [0.487, 0.487] | 0.231 [0.231, 0.231] | 0.103 [0.103, 0.103] |"
    )
    assert lines[5].startswith("| bc | coinrun | 4 | 0.850 [") and len(lines) == 7
    assert markdown in proc.stdout
    png = (tmp_path / "results" / "offline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    table = json.loads((tmp_path / "results" / "offline.json").read_text())
    assert {(r["algo"], r["game"], r["seeds"]) for r in table} == {
        ("bc", "bigfish", 3), ("bc", "coinrun", 4), ("cql", "coinrun", 3)
    }  # fmt: skip


def test_offline_run_errors_are_one_line(runs: Path, tmp_path: Path) -> None:
    run = next((runs / "coinrun").iterdir())
    (run / METADATA_NAME).unlink()
    res = runner.invoke(app, ["table", str(runs), "--out", str(tmp_path / "t")])
    assert res.exit_code == 2 and "metadata.json is missing" in res.output
    assert len(res.output.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["table", str(empty), "--out", str(tmp_path / "t")])
    assert res.exit_code == 2 and "evaluate.json" in res.output
