"""StoreWriter's own shard encoder writes exactly what zarr writes, and zarr reads it back."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr
from fixtures.factories import EpisodeFactory

import offgen.data.writer as writer_module
from offgen.data import Episode, OffgenStore, StoreWriter
from offgen.data._shards import ShardStream
from offgen.data.schema import frames_placeholder
from offgen.data.table import EPISODE_RECORD
from offgen.errors import CorruptStoreError, SchemaError


def _episodes(episode_factory: EpisodeFactory) -> list[Episode]:
    rng = np.random.default_rng(7)
    return [episode_factory.smooth(rng, int(rng.integers(20, 150))) for _ in range(9)]


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
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flush_each: bool,
    episode_factory: EpisodeFactory,
) -> None:
    episodes = _episodes(episode_factory)
    _write(tmp_path / "offgen", episodes, flush_each=flush_each)
    with monkeypatch.context() as patch:
        _through_zarr(patch)
        _write(tmp_path / "zarr", episodes, flush_each=flush_each)
    ours, theirs = _shard_files(tmp_path / "offgen"), _shard_files(tmp_path / "zarr")
    assert len(ours) > 3 and ours.keys() == theirs.keys()  # several full shards and a partial
    for key in ours:
        assert ours[key] == theirs[key], key


def test_read_back_through_offgen_and_plain_zarr(
    tmp_path: Path, episode_factory: EpisodeFactory
) -> None:
    episodes = _episodes(episode_factory)
    _write(tmp_path / "s", episodes, flush_each=True)
    frames = np.concatenate([e.observations for e in episodes])
    store = OffgenStore(tmp_path / "s")
    np.testing.assert_array_equal(store.read_frames(0, len(frames)), frames)
    array = zarr.open_array(tmp_path / "s" / "observations", mode="r")
    np.testing.assert_array_equal(array[:], frames)
    for index, episode in enumerate(episodes):
        np.testing.assert_array_equal(store.episode(index).observations, episode.observations)
    store.verify()


def test_resume_continues_the_partial_shard(
    tmp_path: Path, episode_factory: EpisodeFactory
) -> None:
    episodes = _episodes(episode_factory)
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


def test_a_corrupt_byte_in_our_shard_is_detected(
    tmp_path: Path, episode_factory: EpisodeFactory
) -> None:
    episodes = _episodes(episode_factory)
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


class _Frames:
    """A FrameSource over an array that records which threads filled it and can fail."""

    def __init__(self, frames: np.ndarray, fail_at: int | None = None) -> None:
        self.frames = frames
        self.fail_at = fail_at
        self.threads: set[str] = set()

    def __len__(self) -> int:
        return len(self.frames)

    def fill(self, start: int, out: np.ndarray) -> None:
        self.threads.add(threading.current_thread().name)
        if self.fail_at is not None and start <= self.fail_at < start + len(out):
            raise SchemaError(f"frames.npy: frame {self.fail_at} is not whole numbers")
        out[:] = self.frames[start : start + len(out)]


def _write_deferred(path: Path, episodes: list[Episode], *, flush_each: bool) -> list[_Frames]:
    sources = [_Frames(e.observations) for e in episodes]
    with StoreWriter(path, game="coinrun", shard_frames=128, chunk_frames=32) as writer:
        for episode, source in zip(episodes, sources, strict=True):
            placeholder = dataclasses.replace(episode, observations=frames_placeholder(len(source)))
            writer.write(placeholder, frames=source)
            if flush_each:
                writer.flush()
    return sources


@pytest.mark.parametrize("through_zarr", [False, True])
@pytest.mark.parametrize("flush_each", [False, True])
def test_deferred_frames_write_the_same_shards(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flush_each: bool,
    through_zarr: bool,
    episode_factory: EpisodeFactory,
) -> None:
    episodes = _episodes(episode_factory)
    _write(tmp_path / "copied", episodes, flush_each=flush_each)
    with monkeypatch.context() as patch:
        if through_zarr:
            _through_zarr(patch)
        sources = _write_deferred(tmp_path / "deferred", episodes, flush_each=flush_each)
    copied, deferred = _shard_files(tmp_path / "copied"), _shard_files(tmp_path / "deferred")
    assert len(copied) > 3 and copied.keys() == deferred.keys()
    for key in copied:
        assert copied[key] == deferred[key], key
    filled_by = set().union(*(s.threads for s in sources))
    # Complete chunks are made by the compression threads; zarr's path fills on the caller's.
    assert any(name.startswith("offgen-zstd") for name in filled_by) is not through_zarr
    store = OffgenStore(tmp_path / "deferred")
    for index, episode in enumerate(episodes):
        np.testing.assert_array_equal(store.episode(index).observations, episode.observations)


def test_a_failing_source_keeps_what_was_committed(
    tmp_path: Path, episode_factory: EpisodeFactory
) -> None:
    episodes = _episodes(episode_factory)
    path = tmp_path / "s"
    with (
        pytest.raises(SchemaError, match=r"frames\.npy: frame 5"),
        StoreWriter(path, game="coinrun", shard_frames=128, chunk_frames=32) as writer,
    ):
        for episode in episodes[:3]:
            writer.write(episode)
        writer.flush()
        bad = _Frames(episodes[3].observations, fail_at=5)
        writer.write(
            dataclasses.replace(episodes[3], observations=frames_placeholder(len(bad))),
            frames=bad,
        )
        for episode in episodes[4:]:  # the failed chunk surfaces on a later write or commit
            writer.write(episode)
    with StoreWriter(path, game="coinrun", mode="append") as writer:
        assert writer.num_episodes == 3  # nothing after the last commit became visible
        for episode in episodes[3:]:
            writer.write(episode)
    store = OffgenStore(path)
    for index, episode in enumerate(episodes):
        np.testing.assert_array_equal(store.episode(index).observations, episode.observations)


def test_a_source_of_the_wrong_length_is_refused(
    tmp_path: Path, episode_factory: EpisodeFactory
) -> None:
    episode = _episodes(episode_factory)[0]
    with StoreWriter(tmp_path / "s", game="coinrun") as writer:
        with pytest.raises(SchemaError, match=rf"needs {episode.length + 1} frames.*has 3"):
            writer.write(episode, frames=_Frames(episode.observations[:3]))
        assert writer.num_episodes == 0


def test_full_shards_are_written_in_the_background_and_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, episode_factory: EpisodeFactory
) -> None:
    writers: list[str] = []
    real = ShardStream._write_shard

    def write_shard(self: ShardStream, index: int, *args: object) -> None:
        writers.append(threading.current_thread().name)
        real(self, index, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ShardStream, "_write_shard", write_shard)
    episodes = _episodes(episode_factory)
    path = tmp_path / "s"
    writer = StoreWriter(path, game="coinrun", shard_frames=128, chunk_frames=32)
    for episode in episodes[:5]:  # ~400 frames: three full shards
        writer.write(episode)
    for future, _end in list(writer._sealing):
        future.result()
    writer.write(episodes[5])  # notices the written shards and commits their episodes
    records = (path / "episodes.bin").stat().st_size // EPISODE_RECORD.itemsize
    full = sum(e.length + 1 for e in episodes[:5]) // 128 * 128
    assert records == sum(np.cumsum([e.length + 1 for e in episodes[:5]]) <= full) > 0
    assert writers and all(name.startswith("offgen-shard") for name in writers)
    writer.close()
    assert len(OffgenStore(path).table) == 6


def test_a_failed_shard_write_commits_nothing_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, episode_factory: EpisodeFactory
) -> None:
    real = ShardStream._write_shard

    def write_shard(self: ShardStream, index: int, *args: object) -> None:
        if index == 1:
            raise OSError(28, "No space left on device")
        real(self, index, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ShardStream, "_write_shard", write_shard)
    episodes = _episodes(episode_factory)
    path = tmp_path / "s"
    with (
        pytest.raises(OSError, match="No space left"),
        StoreWriter(path, game="coinrun", shard_frames=128, chunk_frames=32) as writer,
    ):
        for episode in episodes:  # shards 2, 3, ... are written fine after shard 1 failed
            writer.write(episode)
    monkeypatch.undo()
    ends = np.cumsum([e.length + 1 for e in episodes])
    with StoreWriter(path, game="coinrun", mode="append") as writer:
        assert writer.num_episodes == int((ends <= 128).sum())  # only shard 0's episodes
        for episode in episodes[writer.num_episodes :]:
            writer.write(episode)
    store = OffgenStore(path)
    for index, episode in enumerate(episodes):
        np.testing.assert_array_equal(store.episode(index).observations, episode.observations)
