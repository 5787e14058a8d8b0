"""Mixtures in exact proportions; level splits and table-only filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from offgen.data import mix
from offgen.data.dataset import OffgenDataset
from offgen.data.sampling import choose_heldout_levels
from offgen.data.sampling.mixture import largest_remainder
from offgen.data.store import OffgenStore
from offgen.errors import UnknownNameError
from sampling.conftest import Reference, mixed_episodes, write_store


def test_largest_remainder() -> None:
    assert largest_remainder([0.75, 0.25], 256) == [192, 64]
    assert largest_remainder([0.75, 0.25], 255) == [191, 64]
    assert largest_remainder([1, 1, 1], 10) == [4, 3, 3]  # tie: the earlier component
    assert largest_remainder([2, 1], 1) == [1, 0]
    assert sum(largest_remainder([0.1, 0.2, 0.3, 0.4], 7)) == 7
    with pytest.raises(ValueError, match="weights"):
        largest_remainder([0, 0], 4)
    with pytest.raises(ValueError, match="weights"):
        largest_remainder([1, -1], 4)


@pytest.fixture
def two(tmp_path: Path) -> tuple[OffgenDataset, OffgenDataset]:
    return (
        write_store(tmp_path / "expert", mixed_episodes(10, 8)),
        write_store(tmp_path / "subopt", mixed_episodes(11, 8)),
    )


def test_mixture_exact_counts_and_sources(two: tuple[OffgenDataset, OffgenDataset]) -> None:
    expert, subopt = two
    sampler = mix([(expert, 0.75), (subopt, 0.25)], batch_size=255, seed=1, strategy="ram")
    refs = [Reference(expert), Reference(subopt)]
    for _ in range(3):
        batch = next(sampler)
        assert len(batch) == 255
        assert np.bincount(batch.source, minlength=2).tolist() == [191, 64]
        for src, ref in enumerate(refs):
            rows = np.flatnonzero(batch.source == src)
            from dataclasses import fields, replace

            part = replace(batch, **{f.name: getattr(batch, f.name)[rows] for f in fields(batch)})
            ref.check_transitions(part)


def test_mixture_windows_and_resume(two: tuple[OffgenDataset, OffgenDataset]) -> None:
    expert, subopt = two
    make = lambda: mix(  # noqa: E731
        [(expert, 1.0), (subopt, 3.0)], batch_size=8, kind="windows", context=4, strategy="ram"
    )
    a = make()
    stream = [next(a) for _ in range(5)]
    assert np.bincount(stream[0].source).tolist() == [2, 6]
    b = make()
    next(b), next(b)
    c = make()
    c.load_state_dict(b.state_dict())
    for want in stream[2:]:
        np.testing.assert_array_equal(next(c).states, want.states)


def test_split_by_levels_is_disjoint_and_deterministic(small_ds: OffgenDataset) -> None:
    train, held = small_ds.split_by_levels(fraction=0.25, seed=0)
    levels = set(small_ds.table.level_seeds.tolist())
    assert len(train) + len(held) == len(small_ds)
    assert not set(train.table.level_seeds.tolist()) & set(held.table.level_seeds.tolist())
    assert len(set(held.table.level_seeds.tolist())) == round(0.25 * len(levels))
    _, held2 = small_ds.split_by_levels(fraction=0.25, seed=0)
    assert np.array_equal(held.selection, held2.selection)
    _, other = small_ds.split_by_levels(fraction=0.25, seed=1)
    assert not np.array_equal(other.selection, held.selection)
    # Samplers of a split only ever see its episodes.
    batch = next(held.transitions(256, strategy="ram"))
    assert set(batch.episode.tolist()) <= set(held.selection.tolist())
    with pytest.raises(ValueError, match="exactly one"):
        small_ds.split_by_levels()
    assert choose_heldout_levels([5, 5, 7], count=2).tolist() == [5, 7]


def _forbid_array_reads(mp: pytest.MonkeyPatch) -> list[str]:
    """Make every way a store reads frames (or any zarr array) raise, and record the attempts."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def raiser(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise AssertionError(f"a table-only operation called OffgenStore.{what}")

        return raiser

    mp.setattr(OffgenStore, "read_frames", refuse("read_frames"))
    mp.setattr(OffgenStore, "_array", refuse("_array"))
    mp.setattr(OffgenStore, "_group", property(refuse("_group")))
    mp.setattr(OffgenStore, "observations", property(refuse("observations")))
    return attempts


def test_filters_use_table_only(tmp_path: Path) -> None:
    path = tmp_path / "store"
    write_store(path, mixed_episodes(0))
    with pytest.MonkeyPatch.context() as mp:
        attempts = _forbid_array_reads(mp)
        with pytest.raises(AssertionError, match="read_frames"):  # the guard works
            OffgenDataset.open(path).store.read_frames(0, 1)
        assert attempts == ["read_frames"]
        attempts.clear()
        ds = OffgenDataset.open(path)  # opening reads metadata and the table only
        rows = ds.table.rows
        long = ds.filter(min_length=20)
        assert (long.table.lengths >= 20).all() and len(long) == int((rows["length"] >= 20).sum())
        good = ds.filter(min_return=0.0, policies=["p0"])
        assert (good.table.returns >= 0).all()
        assert set(good.table.policy_names()) <= {"p0"}
        assert 0 < len(good) < len(ds)
        seeds = ds.filter(level_seeds=[int(rows["level_seed"][0])])
        assert len(seeds) >= 1
        ended = ds.filter(terminated=False, truncated=True, max_return=1e9)
        assert len(ended) >= 1 and ended.table.rows["truncated"].all()
        train, heldout = ds.split_by_levels(fraction=0.25, seed=0)
        assert len(train) + len(heldout) == len(ds)
        assert attempts == []  # nothing but the episode table was touched
    batch = next(long.transitions(64, strategy="ram"))  # frames are read only when sampling
    assert (ds.store.table.lengths[batch.episode] >= 20).all()
    Reference(long).check_transitions(batch)


def test_iter_episodes_shuffled_and_sharded(small_ds: OffgenDataset) -> None:
    from offgen.data.sampling import Shard

    plain = [int(e.provenance["episode_id"]) for e in small_ds.iter_episodes()]
    assert plain == list(range(len(small_ds)))
    shuffled = [int(e.provenance["episode_id"]) for e in small_ds.iter_episodes(shuffle=True)]
    assert sorted(shuffled) == plain and shuffled != plain
    parts = [
        [int(e.provenance["episode_id"]) for e in small_ds.iter_episodes(shard=Shard(i, 3))]
        for i in range(3)
    ]
    assert sorted(e for part in parts for e in part) == plain


def test_filter_unknown_policy_is_an_error(small_ds: OffgenDataset) -> None:
    # A policy id the store never recorded is a typo, not an empty selection.
    with pytest.raises(UnknownNameError, match=r"'ppo_final'.*'p0', 'p1'") as err:
        small_ds.filter(policies=["ppo_final"])
    assert "Did you mean" not in str(err.value)
    with pytest.raises(UnknownNameError, match=r"Did you mean 'p1'\?"):
        small_ds.filter(policies=["p0", "P1"])
    # A bare string is one id, not its characters.
    assert set(small_ds.filter(policies="p1").table.policy_names()) == {"p1"}
    # An id the store knows selects normally, even where a narrower selection holds none of it.
    only_p0 = small_ds.filter(policies=["p0"])
    assert len(only_p0.filter(policies=["p1"])) == 0
