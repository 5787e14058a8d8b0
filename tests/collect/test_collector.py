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
from offgen.evaluation import evaluate
from offgen.policies import CallablePolicy, RandomPolicy


def test_exact_budget_and_true_final_frames(small_store: CollectResult) -> None:
    store = OffgenStore(small_store.output)
    rows = store.table.rows
    assert int(rows["length"].sum()) == 1500 == small_store.transitions
    assert store.info.counts.transitions == 1500
    assert store.final_frame_is_true
    limit = EnvSpec("coinrun").max_episode_steps
    # Every episode but the last (the budget-crossing one, written last) is a genuine end: exactly
    # one end flag, a time-limit truncation only at the game's limit, and the game really ends it
    # there (replay checks the end step and the terminated flag against envpool).
    whole, crossing = rows[:-1], rows[-1]
    assert len(whole) >= 2
    assert (whole["terminated"] != whole["truncated"]).all()
    assert (whole["length"][whole["truncated"]] == limit).all()
    for i in range(len(whole)):
        assert replay_episode(store.episode(i), index=i).ok, i
    # The crossing episode is cut: truncated (not terminated) before the game's limit, with exactly
    # the steps left in the budget, and the game had not ended it there (claiming a genuine end
    # makes the replay fail).
    assert bool(crossing["truncated"]) and not bool(crossing["terminated"])
    assert 0 < int(crossing["length"]) == 1500 - int(whole["length"].sum()) < limit
    last = store.episode(len(rows) - 1)
    assert replay_episode(last).ok
    claimed_end = dataclasses.replace(last, terminated=True, truncated=False)
    assert "did not end" in replay_episode(claimed_end).message
    assert store.policies[0]["id"] == "random"
    assert store.info.provenance["collection"]["budget"] == 1500
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


def test_plain_callables_are_accepted_as_policies(tmp_path: Path) -> None:
    def right_up(obs: np.ndarray) -> np.ndarray:
        return np.full(len(obs), 8)

    out = collect(
        tmp_path / "plain", EnvSpec("coinrun"), right_up, budget=150, num_envs=2, progress=False
    )
    store = OffgenStore(out.output)
    assert out.transitions == 150 and set(store.actions.tolist()) == {8}
    assert [p["id"] for p in store.policies] == ["callable"]
    # several plain callables (a mixture) keep one policies.json entry each
    mixed = collect(
        tmp_path / "mixed",
        EnvSpec("coinrun"),
        [right_up, lambda obs: np.full(len(obs), 7)],
        budget=150,
        num_envs=2,
        slot_policy=[0, 1],
        progress=False,
    )
    mixed_store = OffgenStore(mixed.output)
    assert {p["id"] for p in mixed_store.policies} == {"callable0", "callable1"}
    for i in range(len(mixed_store.table)):
        episode = mixed_store.episode(i)
        expected = {"callable0": {8}, "callable1": {7}}[episode.policy_id]
        assert set(episode.actions.tolist()) == expected
    measured = evaluate(right_up, game="coinrun", splits="train", episodes=2, seed=0, num_envs=2)
    assert len(measured.splits["train"].episodes) == 2
