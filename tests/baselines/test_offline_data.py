"""The offline loop's data: prefetching resumes at the batches consumed; top-return selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures.factories import DatasetFactory, EpisodeFactory

torch = pytest.importorskip("torch")

from baselines.offline.config import OfflineConfig  # noqa: E402
from baselines.offline.data import Prefetcher, open_training_data  # noqa: E402


@pytest.fixture
def store(tmp_path: Path, dataset_factory: DatasetFactory, episode_factory: EpisodeFactory) -> Path:
    ds = dataset_factory(tmp_path / "store", episode_factory.mixed(4, 12))
    return Path(ds.store.location)


def test_prefetcher_state_is_the_batches_consumed_not_prepared(store: Path) -> None:
    cfg = OfflineConfig(dataset=str(store), batch_size=8, seed=2, progress=False)
    data = open_training_data(cfg, "transitions")
    with Prefetcher(data.sampler("transitions", cfg), torch.device("cpu"), depth=3) as ahead:
        first = [ahead.next() for _ in range(3)]
        assert ahead.state_dict()["batches"] == 3  # the thread has prepared more by now
        fourth = ahead.next()
        state = ahead.state_dict()
    assert first[0]["obs"].shape == (8, 3, 64, 64) and first[0]["obs"].dtype == torch.uint8
    resumed = data.sampler("transitions", cfg)
    resumed.load_state_dict({**state, "batches": 3})
    again = next(resumed)
    np.testing.assert_array_equal(again.obs, fourth["obs"].numpy())
    np.testing.assert_array_equal(again.action, fourth["action"].numpy())


def test_prefetcher_raises_the_samplers_error_in_the_consumer(store: Path) -> None:
    cfg = OfflineConfig(dataset=str(store), batch_size=8, progress=False)
    sampler = open_training_data(cfg, "transitions").sampler("transitions", cfg)

    class Broken:
        def state_dict(self) -> dict[str, int]:
            return sampler.state_dict()

        def __next__(self) -> None:
            raise OSError("disk gone")

    with Prefetcher(Broken(), torch.device("cpu")) as ahead, pytest.raises(OSError, match="disk"):  # type: ignore[arg-type]
        ahead.next()


def test_top_return_selection_is_an_explicit_option(store: Path) -> None:
    everything = open_training_data(OfflineConfig(dataset=str(store)), "transitions")
    cfg = OfflineConfig(dataset=str(store), dataset_size=200, percentile=0.5)
    best = open_training_data(cfg, "transitions")
    ((ds, weight),) = best.datasets
    assert weight == 1.0 and best.num_transitions == ds.num_transitions >= 100
    assert best.num_transitions < everything.num_transitions
    assert ds.selection.tolist() == everything.datasets[0][0].top_returns(100).selection.tolist()
    assert best.max_return == everything.max_return
