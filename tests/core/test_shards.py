"""StoreWriter's own shard encoder writes exactly what zarr writes, and zarr reads it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import offgen.data.writer as writer_module
from offgen.data import Episode, OffgenStore, StoreWriter
from offgen.data._shards import ShardStream
from offgen.errors import CorruptStoreError

from .conftest import smooth_episode


def _episodes() -> list[Episode]:
    rng = np.random.default_rng(7)
    return [smooth_episode(rng, int(rng.integers(20, 150))) for _ in range(9)]


def _write(path: Path, episodes: list[Episode], *, flush_each: bool) -> None:
    with StoreWriter(path, game="coinrun", shard_frames=128, chunk_frames=32) as writer:
        for episode in episodes:
            writer.write(episode)
            if flush_each:  # partial shards rewritten again and again
                writer.flush()


def _shard_files(path: Path) -> dict[str, bytes]:
    root = path / "observations" / "c"
    return {
        str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()
    }


def _through_zarr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module.ShardStream, "for_array", lambda *_a, **_k: None)


@pytest.mark.parametrize("flush_each", [False, True])
def test_shards_are_byte_identical_to_zarrs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flush_each: bool
) -> None:
    episodes = _episodes()
    _write(tmp_path / "offgen", episodes, flush_each=flush_each)
    with monkeypatch.context() as patch:
        _through_zarr(patch)
        _write(tmp_path / "zarr", episodes, flush_each=flush_each)
    ours, theirs = _shard_files(tmp_path / "offgen"), _shard_files(tmp_path / "zarr")
    assert len(ours) > 3 and ours.keys() == theirs.keys()  # several full shards and a partial
    for key in ours:
        assert ours[key] == theirs[key], key


def test_read_back_through_offgen_and_plain_zarr(tmp_path: Path) -> None:
    episodes = _episodes()
    _write(tmp_path / "s", episodes, flush_each=True)
    frames = np.concatenate([e.observations for e in episodes])
    store = OffgenStore(tmp_path / "s")
    np.testing.assert_array_equal(store.read_frames(0, len(frames)), frames)
    array = zarr.open_array(tmp_path / "s" / "observations", mode="r")
    np.testing.assert_array_equal(array[:], frames)
    for index, episode in enumerate(episodes):
        np.testing.assert_array_equal(store.episode(index).observations, episode.observations)
    store.verify()


def test_resume_continues_the_partial_shard(tmp_path: Path) -> None:
    episodes = _episodes()
    path = tmp_path / "s"
    writer = StoreWriter(path, game="coinrun", shard_frames=128, chunk_frames=32)
    for episode in episodes[:4]:
        writer.write(episode)
    writer.close(finalize=False)
    with StoreWriter(path, game="coinrun", mode="append") as writer:
        assert writer.num_episodes == 4
        for episode in episodes[4:]:
            writer.write(episode)
    frames = np.concatenate([e.observations for e in episodes])
    np.testing.assert_array_equal(OffgenStore(path).read_frames(0, len(frames)), frames)


def test_a_corrupt_byte_in_our_shard_is_detected(tmp_path: Path) -> None:
    episodes = _episodes()
    _write(tmp_path / "s", episodes, flush_each=False)
    shard = tmp_path / "s" / "observations" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError):
        OffgenStore(tmp_path / "s").read_frames(0, 128)


def test_other_layouts_are_left_to_zarr(tmp_path: Path) -> None:
    plain = zarr.create_array(
        tmp_path / "plain", shape=(10, 4), chunks=(5, 4), dtype="uint8", fill_value=0
    )
    assert ShardStream.for_array(plain) is None
    with StoreWriter(tmp_path / "s", game="coinrun", shard_frames=128, chunk_frames=32) as writer:
        stream = ShardStream.for_array(writer._obs)
        assert stream is not None
        with pytest.raises(ValueError, match="holds 128 frames"):
            stream.push(np.zeros((129, 64, 64, 3), dtype=np.uint8))
        stream.close()
