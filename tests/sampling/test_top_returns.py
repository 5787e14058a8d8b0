"""``OffgenDataset.top_returns``: the predecessor's top-return selection, on the table only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures.factories import DatasetFactory, EpisodeFactory

from offgen.data.dataset import OffgenDataset


@pytest.fixture
def ds(
    tmp_path: Path, dataset_factory: DatasetFactory, episode_factory: EpisodeFactory
) -> OffgenDataset:
    return dataset_factory(tmp_path / "store", episode_factory.mixed(3, 16))


def test_keeps_best_returns_until_the_budget_in_table_order(ds: OffgenDataset) -> None:
    returns, lengths = ds.table.returns, ds.table.lengths
    budget = ds.num_transitions // 3
    best = ds.top_returns(budget)
    # By hand: walk the episodes best first, keep each while fewer than `budget` steps are kept.
    kept: list[int] = []
    steps = 0
    for i in sorted(range(len(returns)), key=lambda i: (-returns[i], i)):
        if steps >= budget:
            break
        kept.append(i)
        steps += int(lengths[i])
    assert best.selection.tolist() == sorted(kept)
    assert best.num_transitions == steps >= budget
    worst_kept = best.table.returns.min()
    dropped = np.setdiff1d(np.arange(len(ds)), best.selection)
    assert (returns[dropped] <= worst_kept).all()


def test_budget_above_the_data_keeps_everything_and_composes_with_filters(
    ds: OffgenDataset,
) -> None:
    assert ds.top_returns(10**9).selection.tolist() == list(range(len(ds)))
    long = ds.filter(min_length=10)
    best = long.top_returns(1)  # one step: the single best episode of the filtered selection
    assert len(best) == 1 and best.table.returns[0] == long.table.returns.max()
    assert int(best.selection[0]) in set(long.selection.tolist())
    with pytest.raises(ValueError, match="max_transitions"):
        ds.top_returns(0)
