"""Ratio mode on small real checkpoints (perturbed IMPALA weights in the predecessor's layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import offgen.collect.ratio as ratio_mod
from offgen.collect import achieved, collect, discover_checkpoints, measure, plan
from offgen.collect.ratio import Candidate, Measurement
from offgen.data import OffgenStore
from offgen.envs import EnvSpec
from offgen.policies import CheckpointError, load_policy

SPEC = EnvSpec("coinrun")


def test_discovery_of_the_predecessor_layout(run_dir: Path) -> None:
    found = {(c.kind, c.path.name): c for c in discover_checkpoints(run_dir)}
    assert set(found) == {
        ("final", "model_9.90.pt"),
        ("checkpoint", "model_50_5.10.pt"),
        ("checkpoint", "model_100_8.00.pt"),
        ("rolling", "model.pt"),
    }
    assert found[("checkpoint", "model_100_8.00.pt")].step == 100
    assert found[("rolling", "model.pt")].step == 1500  # from the file's "epoch"
    with pytest.raises(CheckpointError, match="several runs"):
        discover_checkpoints(run_dir.parent)


def _measurement(ret: float, length: float) -> Measurement:
    return Measurement(ret, length, [ret], [int(length)])


def test_plan_closest_and_mixture_math(tmp_path: Path) -> None:
    cands = [
        Candidate(tmp_path / "final.pt", "final", 100, None),
        Candidate(tmp_path / "a.pt", "checkpoint", 10, None),
        Candidate(tmp_path / "b.pt", "checkpoint", 50, None),
    ]
    ms = [_measurement(10.0, 100), _measurement(2.0, 400), _measurement(6.0, 200)]
    closest = plan(cands, ms, ratio=0.7, num_envs=16, mode="closest")
    assert closest.paths == [tmp_path / "b.pt"] and closest.slot_policy == [0] * 16
    mix = plan(cands, ms, ratio=0.75, num_envs=16, mode="mixture")
    assert abs(mix.recipe["predicted_return"] - 7.5) < 0.25
    assert len(mix.paths) == 2 and len(mix.slot_policy) == 16
    assert sum(e["num_envs"] for e in mix.recipe["mixture"]) == 16
    done = achieved(mix.recipe, 7.4)
    assert done["achieved_ratio"] == pytest.approx(0.74) and done["within_tolerance"]
    assert not achieved(mix.recipe, 5.0)["within_tolerance"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plan(cands, ms, ratio=1.5, num_envs=16)


def test_measurement_is_cached_next_to_the_checkpoint(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = run_dir / "checkpoint" / "model_100_8.00.pt"
    first = measure(path, SPEC, episodes=4, seed=0, num_envs=4)
    cache = path.with_name(path.name + ".offgen-eval.json")
    entry = next(iter(json.loads(cache.read_text())["entries"].values()))
    assert entry["returns"] == first.returns and len(entry["sha256"]) == 64

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured again despite the cache")

    monkeypatch.setattr(ratio_mod, "evaluate_policy", boom)
    assert measure(path, SPEC, episodes=4, seed=0, num_envs=4).returns == first.returns
    with pytest.raises(AssertionError, match="measured again"):
        measure(path, SPEC, episodes=4, seed=1, num_envs=4)  # other settings: not a cache hit


def test_ratio_collection_records_recipe_and_achieved_ratio(run_dir: Path, tmp_path: Path) -> None:
    candidates = discover_checkpoints(run_dir)
    measurements = [measure(c.path, SPEC, episodes=6, seed=0, num_envs=6) for c in candidates]
    chosen = plan(candidates, measurements, ratio=0.6, num_envs=8, mode="mixture", tolerance=0.5)
    policies = [load_policy(p) for p in chosen.paths]
    result = collect(
        tmp_path / "mixed",
        SPEC,
        policies,
        budget=400,
        num_envs=8,
        seed=0,
        slot_policy=chosen.slot_policy,
        progress=False,
        finish_info=lambda mean: {"recipe": achieved(chosen.recipe, mean)},
    )
    store = OffgenStore(result.output)
    recipe = store.info["recipe"]
    assert recipe["ratio"] == 0.6 and recipe["mode"] == "mixture"
    assert len(recipe["candidates"]) == 4
    assert {c["measured_return"] for c in recipe["candidates"]} == {
        m.mean_return for m in measurements
    }
    assert recipe["achieved_return"] == pytest.approx(float(store.table.rows["return"].mean()))
    assert recipe["achieved_ratio"] == pytest.approx(
        recipe["achieved_return"] / recipe["final_return"]
    )
    assert isinstance(recipe["within_tolerance"], bool)
    used = {p["id"] for p in store.policies}
    assert used == {p.policy_id for p in policies}
    assert all("sha256" in p and "checkpoint" in p for p in store.policies)
