"""Level plans, action modes, statistics, JSON / CSV reports and paired comparison (no envpool)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from offgen.envs import SPLITS, LevelRange
from offgen.errors import EvaluationError, FormatVersionError, UnknownNameError
from offgen.evaluation import (
    ActionMode,
    EpisodeResult,
    EvaluationReport,
    SplitResult,
    compare,
    normalised_return,
    plan_levels,
)
from offgen.evaluation.actions import choose_actions
from offgen.evaluation.api import parse_splits
from offgen.policies import CallablePolicy, RandomPolicy


def test_plan_is_fixed_by_seed_and_stays_in_the_split() -> None:
    for name in ("train", "validation", "test", "full"):
        levels = SPLITS[name]
        plan = plan_levels(levels, 100, seed=3)
        assert plan == plan_levels(levels, 100, seed=3)
        assert plan != plan_levels(levels, 100, seed=4)
        assert len(plan) == 100 and all(levels.contains(x) for x in plan)
    train = plan_levels(SPLITS["train"], 100, seed=0)
    assert len(set(train)) == 100  # without replacement
    test = plan_levels(SPLITS["test"], 100, seed=0)
    assert min(test) >= 250 and not set(test) & set(range(250))


def test_plan_cycles_through_every_level_before_repeating() -> None:
    plan = plan_levels(LevelRange(0, 40), 100, seed=1)
    assert sorted(plan[:40]) == list(range(40)) and sorted(plan[40:80]) == list(range(40))
    assert set(plan[80:]) <= set(range(40)) and len(set(plan[80:])) == 20
    assert plan_levels(LevelRange(0, 1), 5, seed=0) == (0,) * 5
    with pytest.raises(ValueError, match="episodes"):
        plan_levels(LevelRange(0, 1), 0, seed=0)


def test_action_modes_parse_and_state_themselves() -> None:
    assert str(ActionMode.parse("greedy")) == "greedy" == str(ActionMode.greedy())
    assert ActionMode.parse("sample") == ActionMode.sample()
    assert ActionMode.parse("epsilon:0.05") == ActionMode.epsilon(0.05)
    assert str(ActionMode.epsilon(0.05)) == "epsilon:0.05"
    for bad in ("argmin", "epsilon:x", "epsilon:2"):
        with pytest.raises(UnknownNameError):
            ActionMode.parse(bad)


class _Probs:
    """A distribution policy: action 3 most likely, others share the rest."""

    policy_id = "probs"
    metadata: ClassVar[dict[str, object]] = {}

    def probabilities(self, obs: np.ndarray) -> np.ndarray:
        p = np.full((len(obs), 15), 0.3 / 14)
        p[:, 3] = 0.7
        return p

    def act(self, obs: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        raise AssertionError("evaluation uses the distribution, not act()")


def test_choose_actions_greedy_sample_epsilon() -> None:
    obs = np.zeros((2000, 64, 64, 3), dtype=np.uint8)
    u = np.random.default_rng(0).random((2000, 2))
    policy = _Probs()
    assert (choose_actions(policy, ActionMode.greedy(), obs, u) == 3).all()  # type: ignore[arg-type]
    sampled = choose_actions(policy, ActionMode.sample(), obs, u)  # type: ignore[arg-type]
    assert 0.65 < (sampled == 3).mean() < 0.75 and len(set(sampled.tolist())) == 15
    eps = choose_actions(policy, ActionMode.epsilon(0.2), obs, u)  # type: ignore[arg-type]
    assert 0.8 < (eps == 3).mean() < 0.85  # 0.8 greedy + 0.2/15 random picks of 3
    all_random = choose_actions(policy, ActionMode.epsilon(1.0), obs, u)  # type: ignore[arg-type]
    assert np.bincount(all_random, minlength=15).min() > 90
    fixed = CallablePolicy(lambda o: np.full(len(o), 9))
    assert (choose_actions(fixed, ActionMode.greedy(), obs, u) == 9).all()
    mixed = choose_actions(fixed, ActionMode.epsilon(0.5), obs, u)
    assert 0.5 < (mixed == 9).mean() < 0.6
    random = choose_actions(RandomPolicy(), ActionMode.greedy(), obs, u)
    assert (random == np.minimum((u[:, 0] * 15).astype(int), 14)).all()


def test_parse_splits() -> None:
    assert parse_splits("train,val,test") == ("train", "validation", "test")
    assert parse_splits(["level_40", "full", "full"]) == ("level_40", "full")
    with pytest.raises(UnknownNameError, match="unknown split 'holdout'"):
        parse_splits("train,holdout")


def _report(returns: dict[str, list[float]], seed: int = 0, policy: str = "a") -> EvaluationReport:
    splits = {
        name: SplitResult.of(
            "coinrun", name, 0, 200, [EpisodeResult(i, r, 10 + i) for i, r in enumerate(values)]
        )
        for name, values in returns.items()
    }
    return EvaluationReport("coinrun", policy, "greedy", seed, splits, {"episodes_per_split": 4})


def test_statistics_and_normalised_return() -> None:
    result = _report({"train": [10.0, 10.0, 0.0, 10.0]}).splits["train"]
    assert result.mean == 7.5
    assert result.std == pytest.approx(np.std([10, 10, 0, 10], ddof=1))
    assert result.stderr == pytest.approx(result.std / 2)
    assert result.normalised == pytest.approx(0.5)  # coinrun: Rmin 5, Rmax 10
    assert normalised_return("starpilot", 64) == pytest.approx(1.0)
    assert normalised_return("fruitbot", -1.5) == pytest.approx(0.0)


def test_json_round_trip_and_predecessor_csv(tmp_path: Path) -> None:
    report = _report({"train": [10.0, 0.0], "validation": [5.0, 5.0], "test": [0.0, 0.0]})
    again = EvaluationReport.from_json(report.to_json(tmp_path / "r.json"))
    assert again == report
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["splits"]["train"]["episodes"][0] == {"level_seed": 0, "return": 10.0, "length": 10}
    assert "full distribution" in data["note"]
    report.to_csv(tmp_path / "evaluate.csv")
    rows = list(csv.reader((tmp_path / "evaluate.csv").open()))
    assert rows[0][:3] == ["final_test_ret", "final_train_ret", "final_val_ret"]
    values = dict(zip(rows[0], rows[1], strict=True))
    assert float(values["final_train_ret"]) == 5.0 and values["final_val_ret"] == "5.0"
    assert all("[" not in v for v in rows[1])  # plain floats, not the predecessor's "[8.5]"
    (tmp_path / "bad.json").write_text('{"format": "something"}')
    with pytest.raises(FormatVersionError, match="not an offgen evaluation report"):
        EvaluationReport.from_json(tmp_path / "bad.json")


def test_compare_pairs_levels() -> None:
    a = _report({"train": [10.0, 10.0, 0.0, 10.0], "test": [0.0, 10.0]})
    b = _report({"train": [0.0, 10.0, 0.0, 0.0]}, policy="b")
    paired = compare(a, b)
    assert list(paired.splits) == ["train"]
    d = paired.splits["train"]
    assert d.differences == (10.0, 0.0, 0.0, 10.0) and d.mean == 5.0
    assert (d.wins, d.losses, d.ties) == (2, 0, 2)
    assert d.stderr == pytest.approx(np.std([10, 0, 0, 10], ddof=1) / 2)
    assert math.isclose(d.z, d.mean / d.stderr)
    shifted = EvaluationReport(
        "coinrun", "c", "greedy", 1,
        {"train": SplitResult.of("coinrun", "train", 0, 200,
                                 [EpisodeResult(i + 1, 0.0, 5) for i in range(4)])},
    )  # fmt: skip
    with pytest.raises(EvaluationError, match="different levels"):
        compare(a, shifted)
