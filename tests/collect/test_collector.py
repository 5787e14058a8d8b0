"""Collector: exact budget, levels in the split, determinism, .npz output, replay."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from offgen.collect import CollectResult, collect, shard_budget
from offgen.data import OffgenStore
from offgen.data.legacy import read_legacy_episode
from offgen.envs import EnvSpec
from offgen.envs.replay import replay_episode, replay_episodes
from offgen.errors import StoreExistsError
from offgen.policies import CallablePolicy, RandomPolicy


def test_exact_budget_and_true_final_frames(small_store: CollectResult) -> None:
    store = OffgenStore(small_store.output)
    rows = store.table.rows
    assert int(rows["length"].sum()) == 1500 == small_store.transitions
    assert store.info["counts"]["transitions"] == 1500
    assert store.final_frame_is_true
    # only the budget-crossing episode may be cut, and a cut episode is truncated, never terminated
    ends = rows["terminated"] | rows["truncated"]
    assert ends.all()
    assert store.policies[0]["id"] == "random"
    assert store.info["provenance"]["collection"]["budget"] == 1500
    assert not (small_store.output / ".offgen-collect.journal").exists()


def test_level_seeds_lie_in_the_split(small_store: CollectResult, tmp_path: Path) -> None:
    seeds = OffgenStore(small_store.output).table.rows["level_seed"]
    assert ((seeds >= 0) & (seeds < 200)).all()
    val = collect(
        tmp_path / "val",
        EnvSpec.from_split("coinrun", "validation"),
        RandomPolicy(),
        budget=300,
        num_envs=4,
        seed=1,
        progress=False,
    )
    seeds = OffgenStore(val.output).table.rows["level_seed"]
    assert ((seeds >= 200) & (seeds < 250)).all()
    one = collect(
        tmp_path / "one",
        EnvSpec.from_split("coinrun", "level_1"),
        RandomPolicy(),
        budget=200,
        num_envs=2,
        seed=1,
        progress=False,
    )
    assert set(OffgenStore(one.output).table.rows["level_seed"].tolist()) == {0}


def test_same_settings_same_dataset(small_store: CollectResult, tmp_path: Path) -> None:
    again = collect(
        tmp_path / "again",
        EnvSpec("coinrun"),
        RandomPolicy(),
        budget=1500,
        num_envs=8,
        seed=3,
        progress=False,
    )
    a, b = OffgenStore(small_store.output), OffgenStore(again.output)
    assert np.array_equal(a.table.rows, b.table.rows)
    assert np.array_equal(a.actions, b.actions)
    assert np.array_equal(a.read_frames(0, 200), b.read_frames(0, 200))


def test_rerun_of_finished_collection_is_a_no_op_and_other_settings_are_refused(
    small_store: CollectResult,
) -> None:
    again = collect(
        small_store.output,
        EnvSpec("coinrun"),
        RandomPolicy(),
        budget=1500,
        num_envs=8,
        seed=3,
        progress=False,
    )
    assert again.already_complete and again.transitions == 1500
    with pytest.raises(StoreExistsError, match="seed"):
        collect(
            small_store.output,
            EnvSpec("coinrun"),
            RandomPolicy(),
            budget=1500,
            num_envs=8,
            seed=4,
            progress=False,
        )


def test_npz_output_matches_store_and_reads_with_the_legacy_reader(
    small_store: CollectResult, tmp_path: Path
) -> None:
    out = collect(
        tmp_path / "npz",
        EnvSpec("coinrun"),
        RandomPolicy(),
        budget=1500,
        num_envs=8,
        seed=3,
        fmt="npz",
        progress=False,
    )
    files = sorted(out.output.glob("*.npz"), key=lambda p: int(p.name.split("_")[1]))
    store = OffgenStore(small_store.output)
    assert len(files) == len(store.table) == out.episodes
    for path, episode in zip(files, store.iter_episodes(), strict=True):
        legacy = read_legacy_episode(path, "coinrun")
        assert legacy.level_seed == episode.level_seed
        assert np.array_equal(legacy.actions, episode.actions)
        assert np.array_equal(legacy.rewards, episode.rewards)
        assert np.array_equal(legacy.observations, episode.observations)


def test_replay_reproduces_collected_episodes(small_store: CollectResult) -> None:
    store = OffgenStore(small_store.output)
    results = replay_episodes(store, 3, seed=0)
    assert len(results) == 3 and all(r.ok for r in results), results
    # the last (possibly cut) episode replays too
    last = len(store.table) - 1
    assert replay_episode(store.episode(last), index=last).ok


def test_replay_detects_a_changed_episode(small_store: CollectResult) -> None:
    episode = OffgenStore(small_store.output).episode(0)
    actions = episode.actions.copy()
    actions[: min(20, len(actions))] = (actions[: min(20, len(actions))] + 7) % 15
    bad = replay_episode(dataclasses.replace(episode, actions=actions))
    assert not bad.ok
    wrong_level = replay_episode(dataclasses.replace(episode, level_seed=episode.level_seed + 1))
    assert not wrong_level.ok


def test_callable_policy_and_shard_budget(tmp_path: Path) -> None:
    assert [shard_budget(10, i, 3) for i in range(3)] == [4, 3, 3]
    always_right = CallablePolicy(lambda obs: np.full(len(obs), 7), policy_id="right")
    out = collect(
        tmp_path / "right",
        EnvSpec("coinrun"),
        always_right,
        budget=200,
        num_envs=2,
        seed=0,
        progress=False,
    )
    store = OffgenStore(out.output)
    assert set(store.actions.tolist()) == {7}
    assert store.policies[0]["id"] == "right"
