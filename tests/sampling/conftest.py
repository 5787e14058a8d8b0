"""Stores for the sampler tests (the brute-force reference is ``fixtures.assertions.Reference``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.factories import DatasetFactory, EpisodeFactory

from offgen.data import Episode
from offgen.data.dataset import OffgenDataset


@pytest.fixture
def small_ds(
    tmp_path: Path, episode_factory: EpisodeFactory, dataset_factory: DatasetFactory
) -> OffgenDataset:
    """24 random episodes (one of length 1) over several shards."""
    return dataset_factory(tmp_path / "small", episode_factory.mixed(0))


@pytest.fixture
def procgen_ds(
    tmp_path: Path, procgen_episodes: list[Episode], dataset_factory: DatasetFactory
) -> OffgenDataset:
    """The twelve real coinrun episodes in a multi-shard store."""
    return dataset_factory(
        tmp_path / "procgen", procgen_episodes, shard_frames=128, chunk_frames=32
    )
