"""An offgen store as a TorchRL replay-buffer storage, with the real ``torchrl`` package."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures.assertions import Reference
from fixtures.factories import DatasetFactory, EpisodeFactory, StoreFactory

from offgen.data.dataset import OffgenDataset
from offgen.errors import MissingDependencyError
from offgen.paths import dataset_dir

torch = pytest.importorskip("torch")
pytest.importorskip("torchrl", reason="TorchRL is not installed (pip install 'offgen[torchrl]')")

from offgen.data.torchrl import OffgenExperienceReplay, OffgenStorage  # noqa: E402

#: The keys (and dtypes) torchrl.data.datasets.GenDGRLExperienceReplay writes (TED layout).
GEN_DGRL_KEYS = {
    "observation": torch.uint8,
    "action": torch.int64,
    "done": torch.bool,
    "terminated": torch.bool,
    "truncated": torch.bool,
    ("next", "observation"): torch.uint8,
    ("next", "reward"): torch.float32,
    ("next", "done"): torch.bool,
    ("next", "terminated"): torch.bool,
    ("next", "truncated"): torch.bool,
}


@pytest.fixture
def dataset(
    tmp_path: Path, dataset_factory: DatasetFactory, episode_factory: EpisodeFactory
) -> OffgenDataset:
    # Episodes ending terminated, truncated, or neither (an unfinished last episode).
    return dataset_factory(tmp_path / "coinrun", episode_factory.mixed(2, 12))


def _check(batch: object, ds: OffgenDataset, n: int) -> None:
    td = batch
    leaves = {k for k in td.keys(include_nested=True, leaves_only=True)}  # type: ignore[attr-defined]
    assert leaves == set(GEN_DGRL_KEYS) | {"index"}
    for key, dtype in GEN_DGRL_KEYS.items():
        assert td[key].dtype == dtype, key  # type: ignore[index]
        assert td[key].shape[0] == n  # type: ignore[index]
    assert td["observation"].shape == (n, 3, 64, 64)  # type: ignore[index]
    for key in ("action", "done", ("next", "reward"), ("next", "done"), ("next", "truncated")):
        assert td[key].shape == (n, 1), key  # type: ignore[index]
    # Every row is the store's transition at that position (frames, action, reward, flags).
    index = td["index"].numpy()  # type: ignore[index]
    rows = ds.transition_rows(layout="CHW")[index]
    Reference(ds).check_transitions(rows, layout="CHW")
    np.testing.assert_array_equal(td["observation"].numpy(), rows.obs)  # type: ignore[index]
    np.testing.assert_array_equal(td["next", "observation"].numpy(), rows.next_obs)  # type: ignore[index]
    np.testing.assert_array_equal(td["action"].numpy()[:, 0], rows.action)  # type: ignore[index]
    np.testing.assert_array_equal(td["next", "reward"].numpy()[:, 0], rows.reward)  # type: ignore[index]
    terminated = td["next", "terminated"].numpy()[:, 0]  # type: ignore[index]
    truncated = td["next", "truncated"].numpy()[:, 0]  # type: ignore[index]
    np.testing.assert_array_equal(terminated, rows.terminated)
    np.testing.assert_array_equal(truncated, rows.truncated)
    np.testing.assert_array_equal(td["next", "done"].numpy()[:, 0], terminated | truncated)  # type: ignore[index]
    assert not td["done"].any() and not td["terminated"].any() and not td["truncated"].any()  # type: ignore[index]


def test_replay_buffer_samples_the_stores_transitions(dataset: OffgenDataset) -> None:
    rb = OffgenExperienceReplay(dataset, batch_size=64)
    assert len(rb) == dataset.num_transitions
    for _ in range(3):
        _check(rb.sample(), dataset, 64)
    # Epochs without replacement through TorchRL's own sampler cover every transition once.
    from torchrl.data.replay_buffers import SamplerWithoutReplacement

    epoch = OffgenExperienceReplay(
        dataset, batch_size=dataset.num_transitions, sampler=SamplerWithoutReplacement()
    ).sample()
    assert sorted(epoch["index"].tolist()) == list(range(dataset.num_transitions))
    # Episode ends: as many terminated / truncated last steps as the store's episodes have.
    eps = [dataset.episode(i) for i in range(len(dataset))]
    assert int(epoch["next", "terminated"].sum()) == sum(e.terminated for e in eps) > 0
    assert int(epoch["next", "truncated"].sum()) == sum(e.truncated for e in eps) > 0


def test_storage_in_a_plain_torchrl_buffer(dataset: OffgenDataset) -> None:
    from torchrl.data.replay_buffers import RandomSampler, TensorDictReplayBuffer

    storage = OffgenStorage(dataset, strategy="ram")
    rb = TensorDictReplayBuffer(
        storage=storage, sampler=RandomSampler(), batch_size=16, collate_fn=lambda x: x
    )
    _check(rb.sample(), dataset, 16)
    one = storage[3]
    assert one.batch_size == torch.Size([]) and one["action"].shape == (1,)
    with pytest.raises(RuntimeError, match="read-only"):
        rb.extend(rb.sample())


def test_gen_dgrl_id_is_a_one_line_swap(
    store_factory: StoreFactory, episode_factory: EpisodeFactory
) -> None:
    # GenDGRLExperienceReplay("coinrun-1M_E") -> OffgenExperienceReplay("coinrun-1M_E"): the
    # category is the predecessor's name, which offgen resolves (1M_E = expert_1M).
    store_factory(dataset_dir("expert_1M", "coinrun"), episode_factory.mixed(4, 6))
    rb = OffgenExperienceReplay("coinrun-1M_E", batch_size=8)
    assert rb.dataset.game == "coinrun" and len(rb) == rb.dataset.num_transitions
    assert rb.sample()["observation"].shape == (8, 3, 64, 64)


def test_missing_torchrl_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchrl", None)
    monkeypatch.setitem(sys.modules, "torchrl.data.replay_buffers", None)
    monkeypatch.delitem(sys.modules, "offgen.data.torchrl")
    with pytest.raises(MissingDependencyError, match=r"pip install 'offgen\[torchrl\]'"):
        importlib.import_module("offgen.data.torchrl")
