"""Ratio mode on small real checkpoints (perturbed IMPALA weights in the predecessor's layout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import offgen.collect.ratio as ratio_mod
from offgen.collect import (
    Candidate,
    Measurement,
    RatioPolicies,
    choose_ratio_policies,
    collect,
    discover_checkpoints,
    measure_checkpoint,
    plan_ratio,
    with_achieved_ratio,
)
from offgen.data import OffgenStore
from offgen.data.info import RatioRecipe
from offgen.envs import EnvSpec
from offgen.paths import cache_dir
from offgen.policies import CheckpointError, load_policy

SPEC = EnvSpec("coinrun")
CLI = str(Path(sys.executable).with_name("offgen-collect"))


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
    closest = plan_ratio(cands, ms, ratio=0.7, num_envs=16, mode="closest")
    assert closest.paths == [tmp_path / "b.pt"] and closest.slot_policy == [0] * 16
    mix = plan_ratio(cands, ms, ratio=0.75, num_envs=16, mode="mixture")
    assert abs(mix.recipe["predicted_return"] - 7.5) < 0.25
    assert len(mix.paths) == 2 and len(mix.slot_policy) == 16
    assert sum(e["num_envs"] for e in mix.recipe["mixture"]) == 16
    done = with_achieved_ratio(mix.recipe, 7.4)
    assert done["achieved_ratio"] == pytest.approx(0.74) and done["within_tolerance"]
    assert not with_achieved_ratio(mix.recipe, 5.0)["within_tolerance"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plan_ratio(cands, ms, ratio=1.5, num_envs=16)


def test_measurement_is_cached_next_to_the_checkpoint(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = run_dir / "checkpoint" / "model_100_8.00.pt"
    first = measure_checkpoint(path, SPEC, episodes=4, seed=0, num_envs=4)
    cache = path.with_name(path.name + ".offgen-eval.json")
    entry = next(iter(json.loads(cache.read_text())["entries"].values()))
    assert entry["returns"] == first.returns and len(entry["sha256"]) == 64

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured again despite the cache")

    monkeypatch.setattr(ratio_mod, "evaluate", boom)
    assert measure_checkpoint(path, SPEC, episodes=4, seed=0, num_envs=4).returns == first.returns
    with pytest.raises(AssertionError, match="measured again"):
        measure_checkpoint(
            path, SPEC, episodes=4, seed=1, num_envs=4
        )  # other settings: not a cache hit


def test_ratio_collection_records_recipe_and_achieved_ratio(run_dir: Path, tmp_path: Path) -> None:
    candidates = discover_checkpoints(run_dir)
    measurements = [
        measure_checkpoint(c.path, SPEC, episodes=6, seed=0, num_envs=6) for c in candidates
    ]
    by_path = {str(c.path): m for c, m in zip(candidates, measurements, strict=True)}
    final_return = by_path[str(run_dir / "final" / "model_9.90.pt")].mean_return
    tolerance = 0.05
    chosen = plan_ratio(
        candidates, measurements, ratio=0.6, num_envs=8, mode="mixture", tolerance=tolerance
    )
    policies = [load_policy(p) for p in chosen.paths]
    result = collect(
        tmp_path / "mixed",
        SPEC,
        RatioPolicies(tuple(policies), tuple(chosen.slot_policy), chosen.recipe),
        budget=400,
        num_envs=8,
        seed=0,
        progress=False,
    )
    store = OffgenStore(result.output)
    recipe = store.info.recipe
    assert isinstance(recipe, RatioRecipe)
    assert recipe.ratio == 0.6 and recipe.mode == "mixture"
    assert recipe.tolerance_ratio == tolerance
    # every candidate's recorded measurement is its own (matched by path, not as a set of values)
    assert sorted(c.path for c in recipe.candidates) == sorted(by_path)
    for cand in recipe.candidates:
        assert cand.measured_return == by_path[cand.path].mean_return
        assert cand.measured_length == by_path[cand.path].mean_length
    # the reference is the final/ checkpoint's measured return, not the 9.90 in its file name
    assert recipe.final_checkpoint == str(run_dir / "final" / "model_9.90.pt")
    assert recipe.final_return == final_return
    assert recipe.target_return == pytest.approx(0.6 * final_return)
    # the mixture: whole environments matching the slots actually used, weights summing to 1
    mixture = recipe.mixture
    assert [m.path for m in mixture] == [str(p) for p in chosen.paths]
    assert [m.num_envs for m in mixture] == [
        chosen.slot_policy.count(k) for k in range(len(mixture))
    ]
    assert sum(m.weight_envs for m in mixture) == pytest.approx(1.0)
    for m in mixture:
        assert m.measured_return == by_path[m.path].mean_return
    # predicted return: episodes weighted by each policy's episode rate (envs / mean length)
    rates = [m.num_envs / by_path[m.path].mean_length for m in mixture]
    predicted = sum(
        r * by_path[m.path].mean_return for r, m in zip(rates, mixture, strict=True)
    ) / sum(rates)
    assert recipe.predicted_return == pytest.approx(predicted)
    # achieved: recomputed independently from the stored episode table and the final measurement
    rows = store.table.rows
    assert int(rows["length"].sum()) == 400
    dataset_mean = float(rows["return"].mean())
    assert recipe.achieved_return == pytest.approx(dataset_mean)
    assert recipe.achieved_ratio == pytest.approx(dataset_mean / final_return)
    assert recipe.within_tolerance is (abs(dataset_mean / final_return - 0.6) <= tolerance)
    assert result.info["recipe"] == recipe.to_json()
    used = {p["id"] for p in store.policies}
    assert used == {p.policy_id for p in policies}
    assert all("sha256" in p and "checkpoint" in p for p in store.policies)
    assert set(store.episode(i).policy_id for i in range(len(rows))) <= used


def test_measurements_of_another_users_run_folder_are_cached_outside_it(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared_run"
    shared.mkdir()
    path = shared / "model.pt"
    path.write_bytes((run_dir / "checkpoint" / "model_50_5.10.pt").read_bytes())
    if os.getuid() == 0:
        os.chown(shared, 65534, 65534)  # another user's folder (root may write anywhere)
    else:
        shared.chmod(0o555)  # a read-only folder
    first = measure_checkpoint(path, SPEC, episodes=2, seed=0, num_envs=2)
    assert sorted(p.name for p in shared.iterdir()) == ["model.pt"]  # the run folder untouched
    cached = list(cache_dir("ratio-eval").glob("*-model.pt.offgen-eval.json"))
    assert len(cached) == 1

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured again despite the cache")

    monkeypatch.setattr(ratio_mod, "evaluate", boom)
    assert measure_checkpoint(path, SPEC, episodes=2, seed=0, num_envs=2).returns == first.returns


def test_cli_ratio_outside_tolerance_exits_non_zero_unless_accepted(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mixed"
    args = [CLI, "--game", "coinrun", "--ratio", "0.37", "--ratio_checkpoint_dir", str(run_dir),
            "--eval_episodes", "2", "--tolerance", "0", "--num_env_steps", "200",
            "--num_processes", "2", "--output", str(out), "--no-progress"]  # fmt: skip
    missed = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert missed.returncode == 1, missed.stderr
    assert "measuring checkpoint 1/4" in missed.stdout  # progress while measuring
    assert "OUTSIDE tolerance" in missed.stdout
    assert "--accept-outside-tolerance" in missed.stderr and "Traceback" not in missed.stderr
    recipe = OffgenStore(out).info.recipe
    assert recipe is not None and recipe.within_tolerance is False  # the dataset is kept
    kept = subprocess.run(
        [*args, "--accept-outside-tolerance"], capture_output=True, text=True, timeout=600
    )
    assert kept.returncode == 0, kept.stderr
    assert "already complete" in kept.stdout and "--accept-outside-tolerance" in kept.stdout


def test_a_target_below_every_candidate_is_warned_before_collecting(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    returns = {"model_9.90.pt": 10.0, "model_50_5.10.pt": 6.0, "model_100_8.00.pt": 8.0}

    def fixed(path: Path, *args: object, **kwargs: object) -> Measurement:
        ret = returns.get(path.name, 9.0)
        return Measurement(ret, 100.0, [ret], [100])

    monkeypatch.setattr(ratio_mod, "measure_checkpoint", fixed)
    lines: list[str] = []
    chosen = choose_ratio_policies(run_dir, SPEC, ratio=0.3, num_envs=4, log=lines.append)
    assert [line for line in lines if line.startswith("measuring checkpoint")] == [
        f"measuring checkpoint {i}/4: {c.path} (20 episodes)"
        for i, c in enumerate(discover_checkpoints(run_dir), 1)
    ]
    (warning,) = [line for line in lines if line.startswith("warning:")]
    assert "target return 3.000 is below every candidate's measured return" in warning
    assert "nearest 6.000" in warning
    assert chosen.recipe["mixture"][0]["measured_return"] == 6.0
    lines.clear()
    choose_ratio_policies(run_dir, SPEC, ratio=0.7, num_envs=4, log=lines.append)
    assert not [line for line in lines if line.startswith("warning:")]
