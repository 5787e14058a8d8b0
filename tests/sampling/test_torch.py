"""torch adapters: real DataLoaders with two workers, rank sharding, resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from offgen.data.dataset import OffgenDataset
from sampling.conftest import Reference

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from offgen.data.torch import EpisodeIterable, SamplerIterable  # noqa: E402


class _Rows(SimpleNamespace):
    """Numpy arrays of a loader batch, shaped like a TransitionBatch for the reference check."""

    def __len__(self) -> int:
        return len(self.action)


def _keys(batches: list[dict[str, torch.Tensor]]) -> np.ndarray:
    return np.concatenate([(b["episode"] * 1000 + b["timestep"]).numpy() for b in batches])


def test_epoch_over_two_workers_and_two_ranks_has_no_duplicates(small_ds: OffgenDataset) -> None:
    sampler = small_ds.transitions(16, strategy="memmap", replacement=False, progress=False)
    keys = []
    for rank in range(2):
        adapter = SamplerIterable(sampler, rank=rank, world_size=2)
        loader = DataLoader(adapter, batch_size=None, num_workers=2)
        batches = list(loader)
        assert isinstance(batches[0]["obs"], torch.Tensor)
        assert (
            batches[0]["obs"].dtype == torch.uint8 and batches[0]["terminated"].dtype == torch.bool
        )
        keys.append(_keys(batches))
    allkeys = np.concatenate(keys)
    assert len(allkeys) == len(np.unique(allkeys)) == (small_ds.num_transitions // 4) * 4
    assert not set(keys[0]) & set(keys[1])


def test_random_sampling_workers_draw_distinct_streams(small_ds: OffgenDataset) -> None:
    sampler = small_ds.transitions(64, strategy="ram", progress=False)
    loader = DataLoader(
        SamplerIterable(sampler, batches_per_epoch=4), batch_size=None, num_workers=2
    )
    batches = list(loader)
    assert len(batches) == 4
    streams = [tuple(_keys([b])) for b in batches]
    assert len(set(streams)) == 4
    # Same seed, same loader: the same batches again (set_epoch(0) is the default epoch).
    again = list(
        DataLoader(SamplerIterable(sampler, batches_per_epoch=4), batch_size=None, num_workers=2)
    )
    assert [tuple(_keys([b])) for b in again] == streams


def test_loader_resume(small_ds: OffgenDataset) -> None:
    sampler = small_ds.windows(context=5, batch_size=8, strategy="ram", progress=False)
    adapter = SamplerIterable(sampler, batches_per_epoch=7)
    full = list(DataLoader(adapter, batch_size=None, num_workers=2))
    resumed = SamplerIterable(sampler, batches_per_epoch=7)
    resumed.load_state_dict(adapter.state_dict(batches_delivered=3))
    rest = list(DataLoader(resumed, batch_size=None, num_workers=2))
    assert len(rest) == 4
    for got, want in zip(rest, full[3:], strict=True):
        assert torch.equal(got["states"], want["states"])
    # A new epoch gives new batches.
    adapter.set_epoch(1)
    nxt = list(DataLoader(adapter, batch_size=None, num_workers=0))
    assert not torch.equal(nxt[0]["states"], full[0]["states"])


def test_random_sampler_needs_batches_per_epoch(small_ds: OffgenDataset) -> None:
    adapter = SamplerIterable(small_ds.transitions(8, strategy="ram"))
    with pytest.raises(ValueError, match="batches_per_epoch"):
        next(iter(adapter))


def test_episode_iterable_partitions(small_ds: OffgenDataset) -> None:
    loader = DataLoader(
        EpisodeIterable(small_ds, shuffle=True, layout="CHW"), batch_size=None, num_workers=2
    )
    eps = list(loader)
    ids = sorted(int(e["episode_id"]) for e in eps)
    assert ids == list(range(len(small_ds)))
    assert eps[0]["observations"].shape[1:] == (3, 64, 64)
    one = small_ds.store.episode(int(eps[0]["episode_id"]))
    assert eps[0]["observations"].shape[0] == one.length + 1


def test_rank_without_world_size_is_a_clear_error(small_ds: OffgenDataset) -> None:
    from offgen.data.torch import current_shard

    assert not torch.distributed.is_initialized()
    sampler = small_ds.transitions(16, strategy="ram", replacement=False, progress=False)
    with pytest.raises(ValueError, match=r"rank=1 was given without world_size.*not initialised"):
        SamplerIterable(sampler, rank=1)
    with pytest.raises(ValueError, match=r"world_size=2 was given without rank.*pass both"):
        SamplerIterable(sampler, world_size=2)
    with pytest.raises(ValueError, match=r"rank=0 was given without world_size"):
        EpisodeIterable(small_ds, rank=0)
    with pytest.raises(ValueError, match=r"rank=0 was given without world_size"):
        current_shard(rank=0)
    with pytest.raises(ValueError, match="rank 2 is outside world size 2"):
        SamplerIterable(sampler, rank=2, world_size=2)
    assert current_shard()[0] == current_shard(0, 1)[0]  # neither: rank 0 of 1


@pytest.fixture
def gloo_group(tmp_path: Path) -> Iterator[None]:
    """A real single-process torch.distributed group (gloo over a FileStore)."""
    dist = torch.distributed
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    store = dist.FileStore(str(tmp_path / "dist_store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()


def test_rank_and_world_size_from_torch_distributed(
    small_ds: OffgenDataset, gloo_group: None
) -> None:
    from offgen.data.sampling import Shard
    from offgen.data.torch import current_shard

    dist = torch.distributed
    assert dist.is_initialized() and (dist.get_rank(), dist.get_world_size()) == (0, 1)
    assert current_shard() == (Shard(0, 1), 0, 1)
    sampler = small_ds.transitions(16, strategy="memmap", replacement=False, progress=False)
    # The missing half comes from the group: world size 1, so rank 1 is out of range...
    with pytest.raises(ValueError, match="rank 1 is outside world size 1"):
        SamplerIterable(sampler, rank=1)
    # ...and rank 0 alone (world size 1 from the group) is the whole epoch, in the workers too.
    whole = _keys(
        list(DataLoader(SamplerIterable(sampler, rank=0), batch_size=None, num_workers=2))
    )
    assert len(whole) == len(np.unique(whole)) == (small_ds.num_transitions // 2) * 2
    auto = _keys(list(DataLoader(SamplerIterable(sampler), batch_size=None, num_workers=2)))
    np.testing.assert_array_equal(auto, whole)
    # world_size alone takes rank 0 from the group: the same as rank 0 of 2 given explicitly.
    half = _keys(list(DataLoader(SamplerIterable(sampler, world_size=2), batch_size=None)))
    explicit = _keys(
        list(DataLoader(SamplerIterable(sampler, rank=0, world_size=2), batch_size=None))
    )
    np.testing.assert_array_equal(half, explicit)
    assert 0 < len(half) < len(whole)
    episodes = list(DataLoader(EpisodeIterable(small_ds), batch_size=None, num_workers=2))
    assert sorted(int(e["episode_id"]) for e in episodes) == list(range(len(small_ds)))


def test_episode_iterable_defaults_to_chw(small_ds: OffgenDataset) -> None:
    first = next(iter(EpisodeIterable(small_ds)))
    episode = small_ds.store.episode(int(first["episode_id"]))
    assert first["observations"].shape == (episode.length + 1, 3, 64, 64)
    assert first["observations"].is_contiguous()
    np.testing.assert_array_equal(
        first["observations"].numpy(), episode.observations.transpose(0, 3, 1, 2)
    )
    assert first["actions"].dtype == torch.int64
    hwc = next(iter(EpisodeIterable(small_ds, layout="HWC")))
    assert hwc["observations"].shape == (episode.length + 1, 64, 64, 3)
    with pytest.raises(ValueError, match="layout must be 'HWC' or 'CHW'"):
        EpisodeIterable(small_ds, layout="NCHW")  # type: ignore[arg-type]


def test_map_style_transition_dataset(small_ds: OffgenDataset) -> None:
    from offgen.data.torch import TransitionDataset

    mapped = TransitionDataset(small_ds, frame_stack=2, progress=False)
    assert len(mapped) == small_ds.num_transitions
    item = mapped[5]
    assert item["obs"].shape == (2, 3, 64, 64)  # CHW by default, stack axis first
    rows = small_ds.to_dict(layout="CHW", frame_stack=2, progress=False)
    np.testing.assert_array_equal(item["obs"].numpy(), rows["observations"][5])
    np.testing.assert_array_equal(mapped[-1]["next_obs"].numpy(), rows["next_observations"][-1])
    assert int(mapped[5]["action"]) == int(rows["actions"][5])
    with pytest.raises(IndexError, match=f"transition {len(mapped)} is out of range"):
        mapped[len(mapped)]
    # An epoch of a shuffled map-style loader over two workers visits every transition once,
    # each exactly as the brute-force reference builds it.
    loader = DataLoader(mapped, batch_size=16, shuffle=True, num_workers=2)
    batches = list(loader)
    keys = _keys(batches)
    assert len(keys) == len(np.unique(keys)) == small_ds.num_transitions
    batch = batches[0]
    Reference(small_ds).check_transitions(
        _Rows(**{k: v.numpy() for k, v in batch.items()}), k=2, layout="CHW"
    )
    hwc = TransitionDataset(small_ds, layout="HWC", progress=False)
    assert hwc[0]["obs"].shape == (64, 64, 3)
    with pytest.raises(ValueError, match="random access needs every frame"):
        TransitionDataset(small_ds, strategy="stream")
