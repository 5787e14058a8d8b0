"""A finished tiny run: checkpoint layout, safe loading, logs, metadata and its dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from ppo_testlib import SECRET, finished_tiny_run, tiny_args

import offgen
from baselines.common import load_training_state
from baselines.ppo import main
from offgen.collect import discover_checkpoints
from offgen.policies import load_policy


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_tiny_run(tmp_path_factory.mktemp("ppo_runs"))


def test_layout_matches_the_predecessor(tiny_run: Path) -> None:
    assert [p.name for p in (tiny_run / "rolling").iterdir()] == ["model.pt"]
    archives = sorted(p.name for p in (tiny_run / "checkpoint").glob("*.pt"))
    assert [a.split("_")[1] for a in archives] == ["2", "4"]
    for name in archives:
        measured = torch.load(tiny_run / "checkpoint" / name, weights_only=True)["eval"]
        assert name == f"model_{name.split('_')[1]}_{measured['returns']['test']:.2f}.pt"
        assert measured["episodes_per_split"] == 2 and measured["action"] == "sample"
    finals = list((tiny_run / "final").glob("model_*.pt"))
    assert len(finals) == 1
    # No temporary files of the atomic writes are left behind.
    assert not list(tiny_run.rglob(".*.tmp-*"))


def test_every_checkpoint_loads_with_weights_only_and_as_a_policy(tiny_run: Path) -> None:
    for path in tiny_run.rglob("*.pt"):
        raw = torch.load(path, map_location="cpu", weights_only=True)
        assert raw["format"] == "offgen-policy"
        policy = load_policy(path)
        assert policy.metadata["step"] in (2, 4)
    final = next((tiny_run / "final").glob("*.pt"))
    raw = torch.load(final, weights_only=True)
    measured = raw["eval"]["returns"]["test"]
    assert final.name == f"model_{measured:.2f}.pt"
    assert raw["eval"]["name_split"] == "test"


def test_rolling_holds_the_resume_state(tiny_run: Path) -> None:
    state = load_training_state(tiny_run / "rolling" / "model.pt")
    assert state.update == 4
    assert state.config["env_name"] == "dodgeball" and state.config["seed"] == 3
    assert set(state.trainer) >= {"normaliser", "generator", "finished_returns", "env_steps"}
    assert state.trainer["env_steps"] == 256
    # Adam took exactly updates x epochs x minibatches steps.
    steps = {int(s["step"]) for s in state.optimizer_state_dict["state"].values()}
    assert steps == {4 * 1 * 2}


def test_progress_csv_has_each_update_once(tiny_run: Path) -> None:
    with (tiny_run / "progress.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["update"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["env_steps"]) for r in rows] == [64, 128, 192, 256]
    assert rows[1]["eval/test_return"] != "" and rows[0]["eval/test_return"] == ""
    assert all(r["time/steps_per_s"] for r in rows)
    evaluation = (tiny_run / "evaluate.csv").read_text().splitlines()
    assert evaluation[0] == "final_test_ret,final_train_ret,final_val_ret"
    assert all(float(v) >= 0 for v in evaluation[1].split(","))  # plain floats, not "[8.5]"


def test_metadata_has_settings_and_no_environment(tiny_run: Path) -> None:
    text = (tiny_run / "metadata.json").read_text()
    assert SECRET not in text and "OFFGEN_TEST_WANDB_API_KEY" not in text
    meta = json.loads(text)
    assert meta["algo"] == "ppo"
    assert {"env_name", "seed", "xpid"} <= set(meta["config"])
    assert meta["config"]["xpid"] == "tiny"


def test_wandb_offline_logs_under_the_run_folder(tiny_run: Path) -> None:
    pytest.importorskip("wandb")
    runs = list((tiny_run / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    for path in runs[0].rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_ratio_mode_discovers_the_run(tiny_run: Path) -> None:
    kinds = sorted(c.kind for c in discover_checkpoints(tiny_run))
    assert kinds == ["checkpoint", "checkpoint", "final", "rolling"]


def test_saved_dataset_tags_episodes_with_the_update(tiny_run: Path) -> None:
    ds = offgen.load(tiny_run / "dataset")
    assert len(ds) > 0
    policies = {
        p["id"]: p for p in json.loads((tiny_run / "dataset" / "policies.json").read_text())
    }
    versions = {int(pid.split("@")[1]) for pid in policies}
    assert versions <= {0, 1, 2, 3}
    assert all(p["kind"] == "training" for p in policies.values())
    assert ds.info.env.options["game"] == "dodgeball"


def error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("offgen-ppo: error: ") and "\n" not in err, err
    return err


def test_resume_with_changed_settings_names_them(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saving = tiny_run.parent.parent
    argv = tiny_args(saving, lr=0.001, num_steps=8, device="cpu", torch_threads=2)
    err = error_line(capsys, [*argv, "--save_dataset", "--resume"])
    assert "lr: 0.0005 -> 0.001" in err and "num_steps: 16 -> 8" in err
    assert "torch_threads" not in err  # how a run executes may change on resume


def test_existing_run_needs_resume(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = error_line(capsys, [*tiny_args(tiny_run.parent.parent), "--save_dataset"])
    assert "pass --resume" in err
