"""Damaged stores: every fault gives a clear offgen error naming the file, and no committed episode
is lost where the damage leaves it intact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from offgen.data import OffgenStore, StoreWriter
from offgen.data.format import (
    ACTIONS,
    EPISODES,
    INFO,
    MANIFEST,
    OBSERVATIONS,
)
from offgen.data.table import encode_records
from offgen.errors import (
    ChecksumError,
    CorruptStoreError,
    DatasetNotFoundError,
    FormatVersionError,
    IncompleteStoreError,
)

from .conftest import assert_same_episode, build_store, reseal


def _shards(store: Path) -> list[Path]:
    return sorted(
        p for p in (store / "observations").rglob("*") if p.is_file() and p.name != "zarr.json"
    )


@pytest.fixture
def store(tmp_path: Path, small_episodes) -> Path:  # type: ignore[no-untyped-def]
    path = build_store(tmp_path / "store", small_episodes)
    assert len(_shards(path)) >= 2
    return path


def test_intact_store_reads_back(store: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    opened = OffgenStore(store)
    assert opened.verify()
    for i, episode in enumerate(small_episodes):
        assert_same_episode(opened.episode(i), episode)


def test_corrupt_chunk_byte(store: Path) -> None:
    shard = _shards(store)[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=str(shard.name)):
        OffgenStore(store).verify()
    with pytest.raises(CorruptStoreError, match="observations"):
        OffgenStore(store).verify(check_hashes=False)  # decoding alone catches it (zstd checksum)


def test_truncated_chunk(store: Path) -> None:
    shard = _shards(store)[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(ChecksumError, match="truncated"):
        OffgenStore(store).verify()
    opened = OffgenStore(store)
    with pytest.raises(CorruptStoreError, match="observations"):
        opened.episode(0)


def test_missing_shard_file(store: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    shard = _shards(store)[0]
    shard.unlink()
    with pytest.raises(CorruptStoreError, match="missing"):
        OffgenStore(store).verify()
    opened = OffgenStore(store)
    # zarr would silently return zeros for a missing shard; offgen must not.
    with pytest.raises(CorruptStoreError, match="observations"):
        opened.episode(0)
    # Damage is local: an episode stored wholly in a later shard still reads back exactly.
    last = len(opened.table) - 1
    assert int(opened.table.rows["frame_offset"][last]) >= 256
    assert_same_episode(opened.episode(last), small_episodes[last])


def test_missing_table(store: Path) -> None:
    (store / EPISODES).unlink()
    with pytest.raises(CorruptStoreError, match=r"episodes\.bin"):
        OffgenStore(store)


def test_missing_info_is_not_a_store(store: Path) -> None:
    (store / INFO).unlink()
    with pytest.raises(DatasetNotFoundError, match="offgen convert"):
        OffgenStore(store)


def test_checksum_mismatch_same_size(store: Path) -> None:
    actions = next(
        p for p in sorted((store / "actions").rglob("*")) if p.is_file() and p.name != "zarr.json"
    )
    data = bytearray(actions.read_bytes())
    data[-5] ^= 0x10  # same size, different content
    actions.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=rf"{actions.name}.*sha256 mismatch.*Re-download"):
        OffgenStore(store).verify()


def test_manifest_tampered(store: Path) -> None:
    manifest = json.loads((store / MANIFEST).read_bytes())
    first = sorted(manifest["files"])[0]
    manifest["files"][first]["sha256"] = "0" * 64
    (store / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ChecksumError, match="sha256"):
        OffgenStore(store).verify()
    (store / MANIFEST).write_text("{")
    with pytest.raises(CorruptStoreError, match=r"manifest\.json"):
        OffgenStore(store).verify()


def test_unknown_format_version(store: Path) -> None:
    info = json.loads((store / INFO).read_bytes())
    info["format_version"] = 99
    (store / INFO).write_text(json.dumps(info))
    with pytest.raises(FormatVersionError, match=r"version 99.*Upgrade offgen"):
        OffgenStore(store)


@pytest.mark.parametrize(
    "content", [b"{not json", b"[]", b'{"format": "offgen-store"}', b"\xff\xfe"]
)
def test_malformed_info(store: Path, content: bytes) -> None:
    (store / INFO).write_bytes(content)
    with pytest.raises((CorruptStoreError, FormatVersionError), match=r"info\.json"):
        OffgenStore(store)


def test_malformed_table_record(store: Path) -> None:
    data = bytearray((store / EPISODES).read_bytes())
    data[70] ^= 0x01  # inside the second record
    (store / EPISODES).write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match=r"episodes.bin.*record 1"):
        OffgenStore(store)


def test_torn_table_in_finished_store_is_an_error(store: Path) -> None:
    with open(store / EPISODES, "ab") as handle:
        handle.write(b"\x01" * 17)
    with pytest.raises(CorruptStoreError, match=r"episodes.bin.*truncated"):
        OffgenStore(store)


def test_torn_table_tail_while_writing_keeps_committed(tmp_path: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "store"
    writer = StoreWriter(path, game="coinrun", shard_frames=256, chunk_frames=64)
    for episode in small_episodes[:5]:
        writer.write(episode)
    writer.close(finalize=False)
    with open(path / EPISODES, "ab") as handle:  # a record half-appended by a killed writer
        handle.write(b"\x07" * 31)
    with pytest.raises(IncompleteStoreError, match="allow_incomplete"):
        OffgenStore(path)
    partial = OffgenStore(path, allow_incomplete=True)
    assert len(partial.table) == 5
    for i in range(5):
        assert_same_episode(partial.episode(i), small_episodes[i])
    with StoreWriter(path, game="coinrun", mode="append") as writer:
        for episode in small_episodes[5:]:
            writer.write(episode)
    final = OffgenStore(path)
    final.verify()
    for i, episode in enumerate(small_episodes):
        assert_same_episode(final.episode(i), episode)


def test_table_offsets_beyond_arrays(store: Path) -> None:
    info = json.loads((store / INFO).read_bytes())
    info["counts"]["episodes"] = 3
    (store / INFO).write_text(json.dumps(info))
    with pytest.raises(CorruptStoreError, match="disagree"):
        OffgenStore(store)


def _append_record(store: Path, length: int) -> int:
    """Append a valid, contiguous record (and matching counts) for an episode whose frames and
    steps were never written; return its table position."""
    opened = OffgenStore(store)
    rows = opened.table.rows
    last = rows[-1:].copy()
    last["episode_id"] += 1
    last["frame_offset"] = opened.num_frames_stored
    last["step_offset"] = opened.num_steps_stored
    last["length"] = length
    with open(store / EPISODES, "ab") as handle:
        handle.write(encode_records(last))
    info = json.loads((store / INFO).read_bytes())
    info["counts"]["episodes"] = len(rows) + 1
    info["counts"]["transitions"] = int(rows["length"].sum()) + length
    (store / INFO).write_text(json.dumps(info))
    reseal(store)  # a consistent table and info.json, as a faulty writer would leave them
    return len(rows)


def test_table_says_more_frames_than_arrays_hold(store: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    frames_before = OffgenStore(store).num_frames_stored
    extra = _append_record(store, length=30)
    opened = OffgenStore(store)  # the table itself is consistent: opening reads no array
    assert opened.num_frames_stored == frames_before + 31
    first = small_episodes[0]  # earlier frames still read
    np.testing.assert_array_equal(opened.read_frames(0, first.length + 1), first.observations)
    want = (
        rf"observations: holds {frames_before} frames but the episode table .* needs "
        rf"{frames_before + 31}.*damaged"
    )
    with pytest.raises(CorruptStoreError, match=want):
        opened.read_frames(frames_before, frames_before + 31)
    with pytest.raises(CorruptStoreError, match=want):
        OffgenStore(store).episode(extra)
    steps = int(opened.table.rows["step_offset"][extra])
    with pytest.raises(
        CorruptStoreError, match=rf"{ACTIONS}: holds {steps} steps but .* needs {steps + 30}"
    ):
        _ = OffgenStore(store).actions  # zarr alone would return the shorter array
    with pytest.raises(ChecksumError, match=r"episodes\.bin.*manifest says"):
        OffgenStore(store).verify()  # the manifest notices the edited table
    reseal(store, manifest=True)  # a manifest that agrees
    with pytest.raises(CorruptStoreError, match=want):
        OffgenStore(store).verify()  # decoding every frame still finds the short array


def test_observation_array_shorter_than_table(store: Path) -> None:
    """The arrays' own metadata says fewer frames than the table (zarr would just clamp the read)."""
    meta_path = store / OBSERVATIONS / "zarr.json"
    meta = json.loads(meta_path.read_bytes())
    frames = OffgenStore(store).num_frames_stored
    meta["shape"][0] = frames - 10
    meta_path.write_text(json.dumps(meta))
    reseal(store, manifest=True)  # as a faulty writer would leave it: checksums agree
    opened = OffgenStore(store)
    last = len(opened.table) - 1
    _ = opened.actions, opened.rewards  # steps are intact
    with pytest.raises(
        CorruptStoreError,
        match=rf"{OBSERVATIONS}: holds {frames - 10} frames but the episode table "
        rf"\({EPISODES}, {last + 1} episodes\) needs {frames}",
    ):
        opened.episode(last)
    row = opened.table.rows[0]
    assert opened.episode(0).length == int(row["length"])  # frames inside the array still read
    np.testing.assert_array_equal(opened.read_frames(0, 3).shape, (3, 64, 64, 3))
