"""Helpers for the core store / legacy tests: small stores of real or synthetic episodes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from offgen.data import Episode, StoreWriter, make_episode
from offgen.data.format import write_manifest
from offgen.data.info import read_info, write_info


def smooth_episode(
    rng: np.random.Generator, length: int, game: str = "coinrun", **kw: object
) -> Episode:
    """An episode whose frames compress like game frames (a static background, a moving patch)."""
    background = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    frames = np.repeat(background[None], length + 1, axis=0)
    for t in range(length + 1):
        y = t % 56
        frames[t, y : y + 8, 10:18] = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return make_episode(
        frames,
        rng.integers(0, 15, length),
        rng.integers(0, 2, length).astype(np.float32) * 10,
        game=game,
        level_seed=int(rng.integers(0, 200)),
        **kw,  # type: ignore[arg-type]
    )


def build_store(
    path: Path, episodes: list[Episode], *, shard_frames: int = 256, chunk_frames: int = 64
) -> Path:
    """A finished store with small shards so that tests touch several shard files."""
    with StoreWriter(
        path, game=episodes[0].game, shard_frames=shard_frames, chunk_frames=chunk_frames
    ) as writer:
        for episode in episodes:
            writer.write(episode)
    return path


def reseal(store: Path, *, manifest: bool = False) -> None:
    """Record a hand-edited store's checksums as a writer that produced these files would have:
    ``info.json``'s own (and with ``manifest``, a manifest agreeing with the files). For tests of
    the checks that lie beyond the checksums."""
    info = read_info(store)
    if manifest:
        info = dataclasses.replace(info, manifest_sha256=write_manifest(store))
    write_info(store, info)


def assert_same_episode(a: Episode, b: Episode) -> None:
    """Frames, actions, rewards and level seed equal."""
    assert a.length == b.length
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert a.level_seed == b.level_seed


@pytest.fixture
def small_episodes() -> list[Episode]:
    """Eight synthetic episodes of 20-90 steps."""
    rng = np.random.default_rng(1)
    return [smooth_episode(rng, int(rng.integers(20, 90))) for _ in range(8)]
