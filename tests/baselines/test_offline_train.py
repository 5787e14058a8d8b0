"""Tiny real offline runs: early stopping restores the best model, evaluate_offline's outputs,
metadata without secrets, mixtures."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from offline_testlib import GAME, SECRET, dodgeball_store, short_store, tiny_args

from baselines.evaluate_offline import main as evaluate_main
from baselines.offline.checkpoint import BEST, ROLLING, load_run_file
from baselines.train_offline import main

__all__ = ["dodgeball_store", "short_store"]  # the fixtures, imported for pytest

BATCH = 32


@pytest.mark.slow  # ~35 s: two tiny trainings, three evaluations each, one evaluate_offline
def test_early_stopping_keeps_restores_and_evaluates_the_best_model(
    tmp_path: Path, short_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFGEN_TEST_WANDB_API_KEY", SECRET)
    # min_delta so large that only the first evaluation counts as a gain: with patience 1 the run
    # stops after epoch 2, and its best model is the one of epoch 1.
    stop = {"epochs": 5, "batch_size": BATCH, "patience": 1, "min_delta": 1e9}
    argv = tiny_args(tmp_path, short_store, xpid="stop", **stop)
    assert main(argv) == 0
    run = tmp_path / GAME / "stop"
    rolling, best = load_run_file(run / ROLLING), load_run_file(run / BEST)
    per_epoch = rolling.trainer["data"]["num_transitions"] // BATCH
    assert rolling.trainer["stopped_early"] and rolling.update == 2 * per_epoch
    assert best.update == per_epoch and best.kind == "best"

    assert main(tiny_args(tmp_path, short_store, xpid="one", epochs=1, batch_size=BATCH)) == 0
    one = load_run_file(tmp_path / GAME / "one" / ROLLING)
    for key, value in one.model_state_dict.items():
        assert best.model_state_dict[key].equal(value), key
    assert any(not rolling.model_state_dict[k].equal(v) for k, v in one.model_state_dict.items())
    final = json.loads((run / "final_eval.json").read_text())
    assert sorted(final["splits"]) == ["test", "train", "validation"]
    policy = final["settings"]["policy"]  # the model evaluated is the best one, not the last
    assert policy["update"] == per_epoch and policy["trained_updates"] == 2 * per_epoch

    with (run / "progress.csv").open() as handle:
        log = list(csv.DictReader(handle))
    evals = [r for r in log if r["eval/val_return"]]
    assert [int(r["epoch"]) for r in evals] == [1, 2]

    # evaluate_offline: the training command with the module replaced (and fewer episodes).
    assert evaluate_main([*argv, "--final_eval_episodes=2"]) == 0
    with (run / "evaluate.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert list(row)[:3] == ["final_test_ret", "final_train_ret", "final_val_ret"]
    assert {"final_test_norm", "final_train_norm", "final_val_norm"} <= set(row)
    values = {k: float(v) for k, v in row.items()}  # plain floats, not "[8.5]"
    report = json.loads((run / "evaluate.json").read_text())
    assert report["update"] == per_epoch
    assert len(report["report"]["splits"]["test"]["episodes"]) == 2
    assert values["final_test_ret"] == report["report"]["splits"]["test"]["mean"]

    for path in run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["algo"] == "bc" and meta["config"]["min_delta"] == 1e9
    assert "OFFGEN_TEST_WANDB_API_KEY" not in json.dumps(meta)
    assert os.environ["OFFGEN_TEST_WANDB_API_KEY"] == SECRET


def test_mixture_of_two_stores_and_max_steps(
    tmp_path: Path, short_store: Path, dodgeball_store: Path
) -> None:
    mixed = f"{short_store}:0.75,{dodgeball_store}:0.25"
    argv = tiny_args(
        tmp_path, mixed, xpid="mix", batch_size=BATCH, max_steps=5, eval_freq=0, log_interval=1
    )
    assert main(argv) == 0
    rolling = load_run_file(tmp_path / GAME / "mix" / ROLLING)
    assert rolling.update == 5
    data = rolling.trainer["data"]
    assert [d["weight"] for d in data["datasets"]] == [0.75, 0.25]
    assert data["num_transitions"] == sum(d["transitions"] for d in data["datasets"])
    sampler = rolling.trainer["sampler"]
    assert sampler["kind"] == "mixture" and sampler["counts"] == [24, 8]
    assert sampler["batches"] == 5


@pytest.mark.slow  # ~4 min here: DT / BCT evaluations play ~90 s each (per-step transformer)
@pytest.mark.parametrize("algo", ["bc", "bcq", "cql", "iql", "dt", "bct"])
def test_every_registered_algorithm_trains_resumes_and_evaluates_through_the_loop(
    tmp_path: Path, short_store: Path, algo: str
) -> None:
    flags = {"algo": algo, "batch_size": 8, "eval_freq": 0, "dt_context_length": 4}
    argv = tiny_args(tmp_path, short_store, xpid=algo, max_steps=2, **flags)
    assert main(argv) == 0
    assert main([*tiny_args(tmp_path, short_store, xpid=algo, max_steps=3, **flags)]) == 2
    assert evaluate_main(argv) == 0
    run = tmp_path / GAME / algo
    assert load_run_file(run / ROLLING).update == 2
    assert load_run_file(run / BEST).algo == algo
    with (run / "evaluate.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert all(float(v) == float(v) for v in row.values())  # numbers, no NaN
