"""The stream strategy: bounded pool, unit order, determinism across resumes, shards."""

from __future__ import annotations

import numpy as np
from fixtures.assertions import Reference

from offgen.data.dataset import OffgenDataset
from offgen.data.sampling.stream import StreamSampler


def _stream(ds: OffgenDataset, **kw: object) -> StreamSampler:  # type: ignore[type-arg]
    opts = {"unit_frames": 64, "pool_bytes": 3 * 64 * 12288, "strategy": "stream", **kw}
    sampler = ds.transitions(32, **opts)  # type: ignore[arg-type]
    assert isinstance(sampler, StreamSampler)
    return sampler


def test_pool_is_bounded_and_rotates(small_ds: OffgenDataset) -> None:
    sampler = _stream(small_ds)
    assert sampler.slots == 3
    assert sampler.slot_frames <= 64 + 41  # a unit is ~unit_frames, or one long episode
    seen: set[int] = set()
    ref = Reference(small_ds)
    store = small_ds.store
    rows = store.table.rows
    frames = store.read_frames(0, store.num_frames_stored)
    for _ in range(60):
        # The units the pool holds for this batch, as store table positions.
        pool_units = list(sampler._slot_unit)
        in_pool = {int(small_ds.selection[m]) for u in pool_units for m in sampler._units[u]}
        assert in_pool < set(small_ds.selection.tolist())  # the pool never holds everything
        batch = next(sampler)
        ref.check_transitions(batch)
        assert sampler._pool is not None
        assert sampler._pool.nbytes == 3 * sampler.slot_frames * 12288
        # Every draw comes from an episode in the pool, at a valid step of it...
        assert set(batch.episode.tolist()) <= in_pool
        assert (batch.timestep >= 0).all()
        assert (batch.timestep < rows["length"][batch.episode]).all()
        # ...and its frames are the store's frames t and t + 1 of that episode.
        frame = rows["frame_offset"][batch.episode] + batch.timestep
        np.testing.assert_array_equal(batch.obs, frames[frame])
        np.testing.assert_array_equal(batch.next_obs, frames[frame + 1])
        np.testing.assert_array_equal(
            batch.action, store.actions[rows["step_offset"][batch.episode] + batch.timestep]
        )
        seen.update(batch.episode.tolist())
    assert seen == set(small_ds.selection.tolist())  # the pool cycled through every unit
    sampler.close()


def test_resume_mid_stream_equals_uninterrupted(small_ds: OffgenDataset) -> None:
    a = _stream(small_ds, seed=5)
    full = [next(a) for _ in range(25)]
    b = _stream(small_ds, seed=5)
    for _ in range(11):
        next(b)
    c = _stream(small_ds, seed=5)
    c.load_state_dict(b.state_dict())
    for want in full[11:]:
        got = next(c)
        np.testing.assert_array_equal(got.obs, want.obs)
        np.testing.assert_array_equal(got.episode, want.episode)


def test_stream_shards_use_disjoint_episodes(small_ds: OffgenDataset) -> None:
    """Within an epoch each shard streams its own units (a new epoch reshuffles them)."""
    base = _stream(small_ds)
    eps = []
    for i in range(2):
        shard = base.with_shard(i, 2)
        units = [shard._unit_at(j) for j in range(shard._per_shard)]
        mine = {int(small_ds.selection[m]) for u in units for m in shard._units[u]}
        first = {int(e) for e in next(shard).episode}  # drawn from the first units of the epoch
        assert first <= mine
        eps.append(mine)
    assert eps[0] and eps[1] and not (eps[0] & eps[1])


def test_stream_respects_selection(small_ds: OffgenDataset) -> None:
    sub = small_ds.filter(policies=["p1"])
    sampler = _stream(sub)
    wanted = set(sub.selection.tolist())
    for _ in range(20):
        assert set(next(sampler).episode.tolist()) <= wanted
