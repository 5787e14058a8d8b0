"""Episode schema validation: every malformed input raises a SchemaError saying what is wrong."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from offgen.data import Episode, make_episode
from offgen.data.schema import NUM_ACTIONS
from offgen.errors import SchemaError
from offgen.registry import GAMES

T = 5


def _arrays(steps: int = T) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "observations": rng.integers(0, 256, (steps + 1, 64, 64, 3), dtype=np.uint8),
        "actions": rng.integers(0, NUM_ACTIONS, steps).astype(np.uint8),
        "rewards": rng.standard_normal(steps).astype(np.float32),
    }


def _episode(**overrides: Any) -> Episode:
    fields: dict[str, Any] = {
        **_arrays(),
        "terminated": True,
        "truncated": False,
        "level_seed": 3,
        "game": "coinrun",
    }
    fields.update(overrides)
    return Episode(**fields)


def test_valid_episode() -> None:
    ep = _episode()
    assert ep.length == T
    assert ep.episode_return == pytest.approx(float(ep.rewards.sum(dtype=np.float64)))
    loose = make_episode(
        np.moveaxis(ep.observations, -1, 1).astype(np.float32),  # CHW float 0-255, legacy style
        ep.actions.astype(np.int64)[:, None],
        ep.rewards[:, None],
        game="CoinrunEasy-v0",
        layout="CHW",
    )
    np.testing.assert_array_equal(loose.observations, ep.observations)
    np.testing.assert_array_equal(loose.actions, ep.actions)
    assert loose.game == "coinrun"  # an alias becomes the canonical name


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((T + 1, 3, 64, 64), r"shape \(T\+1, 64, 64, 3\) \(HWC\), got \(6, 3, 64, 64\).*CHW"),
        ((T + 1, 64, 64), r"shape \(T\+1, 64, 64, 3\).*got \(6, 64, 64\)"),
        ((T + 1, 32, 32, 3), r"shape \(T\+1, 64, 64, 3\).*got \(6, 32, 32, 3\)"),
    ],
)
def test_wrong_observation_shape(shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        _episode(observations=np.zeros(shape, np.uint8))


def test_wrong_observation_shape_through_make_episode() -> None:
    arrays = _arrays()
    with pytest.raises(SchemaError, match=r"got \(6, 64, 3, 64\)"):
        make_episode(
            np.moveaxis(arrays["observations"], -1, 2),  # neither HWC nor declared CHW
            arrays["actions"],
            arrays["rewards"],
            game="coinrun",
        )


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("observations", np.zeros((T + 1, 64, 64, 3), np.float32), r"observations must be uint8, got float32.*make_episode"),
        ("observations", np.zeros((T + 1, 64, 64, 3), np.int64), r"observations must be uint8, got int64"),
        ("actions", np.zeros(T, np.int64), r"actions must be a 1-D uint8 array, got int64"),
        ("actions", np.zeros((T, 1), np.uint8), r"actions must be a 1-D uint8 array, got uint8 \(5, 1\)"),
        ("rewards", np.zeros(T, np.float64), r"rewards must be a 1-D float32 array, got float64"),
        ("rewards", [0.0] * T, r"rewards must be a numpy array, got list"),
    ],
)  # fmt: skip
def test_wrong_dtype(field: str, value: Any, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        _episode(**{field: value})


def test_make_episode_rejects_unsupported_or_unrepresentable_dtypes() -> None:
    arrays = _arrays()
    with pytest.raises(SchemaError, match="observations have unsupported dtype <U1"):
        make_episode(
            np.full((T + 1, 64, 64, 3), "a"), arrays["actions"], arrays["rewards"], game="coinrun"
        )
    frames = arrays["observations"].astype(np.float32)
    frames[0, 0, 0, 0] = 0.5
    with pytest.raises(SchemaError, match=r"whole numbers in \[0, 255\]"):
        make_episode(frames, arrays["actions"], arrays["rewards"], game="coinrun")
    frames[0, 0, 0, 0] = 256.0
    with pytest.raises(SchemaError, match=r"whole numbers in \[0, 255\]"):
        make_episode(frames, arrays["actions"], arrays["rewards"], game="coinrun")
    with pytest.raises(SchemaError, match=r"integer observations must lie in \[0, 255\]"):
        make_episode(
            arrays["observations"].astype(np.int16) - 1,
            arrays["actions"],
            arrays["rewards"],
            game="coinrun",
        )
    with pytest.raises(SchemaError, match="actions must be whole numbers"):
        make_episode(
            arrays["observations"], arrays["actions"] + 0.5, arrays["rewards"], game="coinrun"
        )
    with pytest.raises(SchemaError, match="actions have unsupported dtype <U1"):
        make_episode(arrays["observations"], np.full(T, "a"), arrays["rewards"], game="coinrun")


@pytest.mark.parametrize(
    ("frames", "actions", "rewards", "match"),
    [
        (T, T, T, r"length mismatch: 5 actions need 6 observations \(T\+1\), got 5"),
        (T + 2, T, T, r"length mismatch: 5 actions need 6 observations \(T\+1\), got 7"),
        (T + 1, T, T - 1, r"length mismatch: 5 actions but 4 rewards"),
        (T + 1, T, T + 1, r"length mismatch: 5 actions but 6 rewards"),
        (1, 0, 0, "at least one step"),
    ],
)
def test_length_mismatch(frames: int, actions: int, rewards: int, match: str) -> None:
    arrays = _arrays(max(frames, actions, rewards) + 1)
    obs = arrays["observations"][:frames]
    act = arrays["actions"][:actions]
    rew = arrays["rewards"][:rewards]
    with pytest.raises(SchemaError, match=match):
        _episode(observations=obs, actions=act, rewards=rew)
    with pytest.raises(SchemaError, match=match):  # make_episode validates the same way
        make_episode(obs, act.astype(np.int64), rew, game="coinrun")


@pytest.mark.parametrize("bad", [15, 255])
def test_action_out_of_range(bad: int) -> None:
    actions = _arrays()["actions"]
    actions[2] = bad
    with pytest.raises(SchemaError, match=rf"action {bad} out of range \[0, 15\)"):
        _episode(actions=actions)
    with pytest.raises(SchemaError, match=rf"action out of range \[0, 15\): min 0, max {bad}"):
        make_episode(
            _arrays()["observations"],
            np.where(np.arange(T) == 2, bad, 0),
            _arrays()["rewards"],
            game="coinrun",
        )


def test_negative_action_rejected_before_narrowing() -> None:
    with pytest.raises(SchemaError, match=r"action out of range \[0, 15\): min -1, max 0"):
        make_episode(
            _arrays()["observations"], np.array([0, 0, -1, 0, 0]), _arrays()["rewards"], game="coinrun"
        )  # fmt: skip


def test_action_boundaries_accepted() -> None:
    ep = _episode(actions=np.array([0, 14, 7, 14, 0], np.uint8))
    assert int(ep.actions.max()) == NUM_ACTIONS - 1


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_reward(value: float) -> None:
    rewards = _arrays()["rewards"]
    rewards[1] = value
    with pytest.raises(SchemaError, match="rewards contain NaN or infinity"):
        _episode(rewards=rewards)


def test_terminated_and_truncated_are_exclusive() -> None:
    with pytest.raises(SchemaError, match="cannot be both terminated and truncated"):
        _episode(terminated=True, truncated=True)
    with pytest.raises(SchemaError, match="cannot be both terminated and truncated"):
        make_episode(**_arrays(), game="coinrun", terminated=True, truncated=True)
    for terminated, truncated in [(True, False), (False, True), (False, False)]:
        ep = _episode(terminated=terminated, truncated=truncated)
        assert (ep.terminated, ep.truncated) == (terminated, truncated)


def test_unknown_game() -> None:
    with pytest.raises(SchemaError, match=r"unknown game 'cionrun'\. Did you mean 'coinrun'\?"):
        _episode(game="cionrun")
    with pytest.raises(SchemaError, match=r"unknown game 'cionrun'\. Did you mean 'coinrun'\?"):
        make_episode(**_arrays(), game="cionrun")
    with pytest.raises(SchemaError, match="one of the 16 Procgen games, got ''"):
        _episode(game="")
    with pytest.raises(SchemaError, match="one of the 16 Procgen games, got None"):
        _episode(game=None)
    # Episodes carry canonical names; make_episode converts an alias, Episode refuses it.
    with pytest.raises(SchemaError, match=r"canonical name 'coinrun', got 'CoinrunEasy-v0'"):
        _episode(game="CoinrunEasy-v0")


@pytest.mark.parametrize("game", sorted(GAMES))
def test_every_game_accepted(game: str) -> None:
    assert _episode(game=game).game == game
