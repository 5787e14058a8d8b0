"""Transition batches from every strategy against the brute-force reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures.assertions import Reference

from offgen.data.dataset import OffgenDataset

STRATEGIES = ["ram", "memmap", "stream"]
STREAM = {"unit_frames": 64, "pool_bytes": 4 * 64 * 12288}


def _sampler(ds: OffgenDataset, strategy: str, batch: int = 64, **kw: object):  # type: ignore[no-untyped-def]
    extra = STREAM if strategy == "stream" else {}
    return ds.transitions(batch, strategy=strategy, progress=False, **extra, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("k", "layout"), [(1, "HWC"), (4, "CHW")])
def test_transitions_match_reference(
    small_ds: OffgenDataset, strategy: str, k: int, layout: str
) -> None:
    ref = Reference(small_ds)
    sampler = _sampler(small_ds, strategy, frame_stack=k, layout=layout)
    seen_last = seen_first = 0
    for _ in range(8):
        batch = next(sampler)
        ref.check_transitions(batch, k=k, layout=layout)
        seen_last += int((batch.terminated | batch.truncated).sum())
        seen_first += int((batch.timestep == 0).sum())
    assert seen_last > 0 and seen_first > 0  # episode ends and starts were exercised


def test_real_procgen_frames(procgen_ds: OffgenDataset) -> None:
    ref = Reference(procgen_ds)
    for strategy in STRATEGIES:
        sampler = _sampler(procgen_ds, strategy, batch=128, frame_stack=2)
        for _ in range(3):
            ref.check_transitions(next(sampler), k=2)


def test_frame_stack_pads_with_first_frame(small_ds: OffgenDataset) -> None:
    sampler = _sampler(small_ds, "ram", batch=512, frame_stack=3)
    batch = next(sampler)
    starts = np.flatnonzero(batch.timestep == 0)
    assert len(starts)
    for i in starts:
        np.testing.assert_array_equal(batch.obs[i, 0], batch.obs[i, 2])
        np.testing.assert_array_equal(batch.obs[i, 1], batch.obs[i, 2])


def test_flags_only_at_last_step(small_ds: OffgenDataset) -> None:
    sampler = _sampler(small_ds, "ram", batch=2048)
    batch = next(sampler)
    lengths = small_ds.table.lengths
    pos = np.searchsorted(small_ds.selection, batch.episode)
    last = batch.timestep == lengths[pos] - 1
    assert not (batch.terminated & ~last).any() and not (batch.truncated & ~last).any()
    assert batch.terminated.any() and batch.truncated.any()
    # Episodes that ended neither way (i % 3 == 2) never raise a flag.
    neither = ~small_ds.table.rows["terminated"][pos] & ~small_ds.table.rows["truncated"][pos]
    assert (neither & last).any()
    assert not (batch.terminated | batch.truncated)[neither].any()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_deterministic_and_resumable(small_ds: OffgenDataset, strategy: str) -> None:
    a = _sampler(small_ds, strategy, seed=3)
    first = [next(a) for _ in range(6)]
    b = _sampler(small_ds, strategy, seed=3)
    for want in first[:2]:
        np.testing.assert_array_equal(next(b).obs, want.obs)
    state = json.loads(json.dumps(b.state_dict()))  # states survive JSON
    c = _sampler(small_ds, strategy, seed=3)
    c.load_state_dict(state)
    for want in first[2:]:
        got = next(c)
        np.testing.assert_array_equal(got.obs, want.obs)
        np.testing.assert_array_equal(got.episode, want.episode)
    other = next(_sampler(small_ds, strategy, seed=4))
    assert not np.array_equal(
        other.episode * 1000 + other.timestep, first[0].episode * 1000 + first[0].timestep
    )


def test_state_dict_of_other_settings_is_refused(small_ds: OffgenDataset) -> None:
    state = _sampler(small_ds, "ram", seed=1).state_dict()
    with pytest.raises(ValueError, match="seed"):
        _sampler(small_ds, "ram", seed=2).load_state_dict(state)


def test_epochs_visit_every_step_once(small_ds: OffgenDataset) -> None:
    sampler = _sampler(small_ds, "ram", batch=50, replacement=False)
    per_epoch = sampler.batches_per_epoch
    assert per_epoch == -(-small_ds.num_transitions // 50)
    keys = np.concatenate(
        [(b.episode * 1000 + b.timestep) for b in (next(sampler) for _ in range(per_epoch))]
    )
    assert len(keys) == small_ds.num_transitions == len(np.unique(keys))
    nxt = next(sampler)  # the next epoch is a different permutation
    assert not np.array_equal(nxt.episode * 1000 + nxt.timestep, keys[:50])


def test_epoch_shards_are_disjoint(small_ds: OffgenDataset) -> None:
    base = _sampler(small_ds, "ram", batch=16, replacement=False)
    parts = []
    for i in range(3):
        shard = base.with_shard(i, 3)
        per = shard.batches_per_epoch
        parts.append(
            np.concatenate(
                [b.episode * 1000 + b.timestep for b in (next(shard) for _ in range(per))]
            )
        )
    allkeys = np.concatenate(parts)
    assert len(allkeys) == len(np.unique(allkeys)) == (small_ds.num_transitions // 3) * 3
    assert len({len(p) for p in parts}) == 1


def test_random_shards_differ(small_ds: OffgenDataset) -> None:
    base = _sampler(small_ds, "ram")
    a, b = next(base.with_shard(0, 2)), next(base.with_shard(1, 2))
    assert not np.array_equal(a.episode * 1000 + a.timestep, b.episode * 1000 + b.timestep)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_random_shards_never_draw_the_same_step(small_ds: OffgenDataset, strategy: str) -> None:
    """What data-parallel training relies on: ranks' batches of one step share no transition,
    and together the shards still reach every step."""
    base = _sampler(small_ds, strategy, batch=32)
    shards = [base.with_shard(i, 3) for i in range(3)]
    owners: dict[int, int] = {}
    for _ in range(30):
        for i, shard in enumerate(shards):
            batch = next(shard)
            for key in (batch.episode * 1000 + batch.timestep).tolist():
                assert owners.setdefault(key, i) == i, (
                    f"step {key} drawn by shards {owners[key]}, {i}"
                )
    if strategy != "stream":  # a stream shard reaches its units over many batches
        assert len(owners) > 0.9 * small_ds.num_transitions


def test_more_shards_than_steps_is_refused(small_ds: OffgenDataset) -> None:
    with pytest.raises(ValueError, match="positions for"):
        _sampler(small_ds, "ram").with_shard(0, small_ds.num_transitions + 1)


def test_bad_arguments(small_ds: OffgenDataset) -> None:
    with pytest.raises(ValueError, match="layout"):
        small_ds.transitions(layout="NCHW", strategy="ram")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strategy"):
        small_ds.transitions(strategy="disk")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nothing to sample"):
        small_ds.filter(min_return=1e9).transitions(strategy="ram")
    with pytest.raises(ValueError, match="replacement=False"):
        small_ds.transitions(strategy="stream", replacement=False)
    with pytest.raises(TypeError, match="stream options"):
        small_ds.transitions(strategy="ram", pool_size=3)


def test_batch_and_episode_share_one_vocabulary(small_ds: OffgenDataset) -> None:
    batch = next(small_ds.transitions(32, strategy="ram", seed=3, progress=False))
    # The plural names of episodes and windows are the same arrays, not copies.
    assert batch.observations is batch.obs and batch.next_observations is batch.next_obs
    assert batch.actions is batch.action and batch.rewards is batch.reward
    assert batch.actions.dtype == np.int64  # handed to a learner: int64 (cross_entropy targets)
    episode = small_ds.store.episode(int(batch.episode[0]))
    assert episode.actions.dtype == np.uint8  # as stored
    t = int(batch.timestep[0])
    assert batch.actions[0] == episode.actions[t] and batch.rewards[0] == episode.rewards[t]
    window = next(small_ds.windows(context=4, batch_size=8, strategy="ram", progress=False))
    assert window.actions.dtype == batch.actions.dtype
