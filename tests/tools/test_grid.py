"""Index semantics of sweeps, checked against hand-computed examples in both orders."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import pytest
from offgen_tools.errors import GridError
from offgen_tools.sweeps.commands import parse_indices, render
from offgen_tools.sweeps.grid import Grid, SeedRule, load_sweep

# The policy-params README example: 1 x 3 x 3 x 4 x 1 x 1 = 36 settings.
SEED_PARAMS = {
    "decay": [0.5],
    "critic_lr": [0.005, 0.1, 0.3],
    "actor_lr": [0.005, 0.1, 0.3],
    "avg_reward_lr": [0.1, 0.3, 0.5, 0.9],
    "scaled": [True],
    "clip_stddev": [1000],
}


def test_size_is_product_of_lengths() -> None:
    assert len(Grid(SEED_PARAMS)) == 36


@pytest.mark.parametrize(
    ("index", "critic", "actor", "avg"),
    [
        (0, 0.005, 0.005, 0.1),
        (1, 0.1, 0.005, 0.1),  # the README's "index 1" example really shows index 0
        (5, 0.3, 0.1, 0.1),  # 5 = 2 + 3*1
        (23, 0.3, 0.1, 0.5),  # 23 = 2 + 3*1 + 9*2
        (35, 0.3, 0.3, 0.9),
    ],
)
def test_first_key_fastest_hand_computed(
    index: int, critic: float, actor: float, avg: float
) -> None:
    s = Grid(SEED_PARAMS).resolve(index)
    assert (s.flat["critic_lr"], s.flat["actor_lr"], s.flat["avg_reward_lr"]) == (
        critic,
        actor,
        avg,
    )
    assert s.flat["decay"] == 0.5 and s.flat["scaled"] is True and s.flat["clip_stddev"] == 1000
    assert s.setting == index and s.run == 0


@pytest.mark.parametrize(
    ("index", "critic", "actor", "avg"),
    [
        (0, 0.005, 0.005, 0.1),
        (1, 0.005, 0.005, 0.3),
        (5, 0.005, 0.1, 0.3),  # 5 = 1 + 4*1
        (23, 0.1, 0.3, 0.9),  # 23 = 3 + 4*2 + 12*1
        (35, 0.3, 0.3, 0.9),
    ],
)
def test_last_key_fastest_hand_computed(
    index: int, critic: float, actor: float, avg: float
) -> None:
    s = Grid(SEED_PARAMS, order="last-fastest").resolve(index)
    assert (s.flat["critic_lr"], s.flat["actor_lr"], s.flat["avg_reward_lr"]) == (
        critic,
        actor,
        avg,
    )


def test_last_fastest_matches_itertools_product() -> None:
    grid = Grid(SEED_PARAMS, order="last-fastest")
    for i, combo in enumerate(itertools.product(*SEED_PARAMS.values())):
        assert tuple(grid.resolve(i).flat.values()) == combo


def test_wraps_are_new_runs_with_new_seeds() -> None:
    grid = Grid(SEED_PARAMS)
    a, b, c = grid.resolve(1), grid.resolve(37), grid.resolve(73)
    assert a.params == b.params == c.params
    assert (a.run, b.run, c.run) == (0, 1, 2)
    assert (a.seed, b.seed, c.seed) == (0, 1, 2)
    assert grid.resolve(37) == grid.resolve(37)  # re-running an index reproduces it
    legacy = Grid(SEED_PARAMS, seed_rule=SeedRule("legacy"))
    assert [legacy.resolve(i).seed for i in (1, 37, 73)] == [32767, 32766, 32765]
    assert Grid(SEED_PARAMS, seed_rule=SeedRule("offset", 100)).resolve(37).seed == 101


def test_lookup_both_ways() -> None:
    grid = Grid(SEED_PARAMS)
    settings = grid.settings_matching({"critic_lr": 0.1})
    assert settings == list(range(1, 36, 3))
    assert grid.settings_matching({"critic_lr": 0.3, "actor_lr": 0.1, "avg_reward_lr": 0.5}) == [23]
    assert grid.indices({"critic_lr": 0.3, "actor_lr": 0.1, "avg_reward_lr": 0.5}, runs=3) == [
        23,
        59,
        95,
    ]
    for index in (0, 7, 23, 40, 100):
        s = grid.resolve(index)
        assert grid.index_of(s.setting, s.run) == index
        assert s.setting in grid.settings_matching(s.flat)
    with pytest.raises(GridError, match="unknown parameter"):
        grid.settings_matching({"nope": 1})


def test_nested_and_together_axes() -> None:
    params = {
        "a": [1, 2, 3],
        "$together": {"lr": [0.1, 0.2], "bs": [32, 64]},
        "optim": {"eps": [1e-8], "beta": ["x", "y"]},
    }
    grid = Grid(params)
    assert len(grid) == 3 * 2 * 2
    s = grid.resolve(4)  # a: 4 % 3 = 1; together: (4 // 3) % 2 = 1; beta: 4 // 6 = 0
    assert s.params == {"a": 2, "lr": 0.2, "bs": 64, "optim": {"eps": 1e-8, "beta": "x"}}
    assert s.flat == {"a": 2, "lr": 0.2, "bs": 64, "optim.eps": 1e-8, "optim.beta": "x"}
    assert grid.settings_matching({"lr": 0.2, "a": 2}) == [4, 10]
    assert grid.settings_matching({"optim": {"beta": "y"}}) == list(range(6, 12))
    last = Grid(params, order="last-fastest").resolve(1)
    assert last.flat["optim.beta"] == "y" and last.flat["a"] == 1
    with pytest.raises(GridError, match="same non-zero length"):
        Grid({"$together": {"lr": [1, 2], "bs": [1]}})


def test_never_mutates_input() -> None:
    params = copy.deepcopy(SEED_PARAMS) | {"net": {"layers": [[64, 64], [128]]}}
    before = copy.deepcopy(params)
    grid = Grid(params)
    s = grid.resolve(3)
    s.params["net"]["layers"].append(1)
    s.flat["net.layers"].append(2)
    assert params == before
    assert grid.resolve(3).flat["net.layers"] == [64, 64]


def test_invalid_grids() -> None:
    with pytest.raises(GridError, match="empty list"):
        Grid({"a": []})
    with pytest.raises(GridError, match="index order"):
        Grid({"a": [1]}, order="random")
    with pytest.raises(GridError, match="out of range"):
        Grid({"a": [1]}).index_of(3)


def test_load_sweep_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    config = {
        "agent_name": "linearAC",
        "index_order": "last-fastest",
        "seed_rule": {"kind": "legacy"},
        "parameters": {"lr": [1, 2], "b": [3, 4]},
    }
    path.write_text(json.dumps(config))
    sweep = load_sweep(path)
    assert sweep.grid.order == "last-fastest"
    assert sweep.metadata == {"agent_name": "linearAC"}
    assert sweep.grid.resolve(1).flat == {"lr": 1, "b": 4}
    assert sweep.grid.resolve(5).seed == 32766
    assert load_sweep(path, order="first-fastest").grid.resolve(1).flat == {"lr": 2, "b": 3}
    path.write_text(json.dumps({"parameters": {"a": [1]}, "seed_rule": {"kind": "bad"}}))
    with pytest.raises(GridError, match="seed_rule"):
        load_sweep(path)


def test_parse_indices_and_render() -> None:
    assert parse_indices("0-3,7, 9-9") == [0, 1, 2, 3, 7, 9]
    with pytest.raises(GridError):
        parse_indices("5-2")
    grid = Grid({"lr": [0.1, 0.2], "opt": {"name": ["adam sgd"]}})
    cmd = render("train {args} --seed {seed} --i {index} --lr {params[lr]}", grid.resolve(3))
    assert cmd == "train --lr 0.2 --opt.name 'adam sgd' --seed 1 --i 3 --lr 0.2"
    with pytest.raises(GridError, match="unknown field"):
        render("{nope}", grid.resolve(0))
