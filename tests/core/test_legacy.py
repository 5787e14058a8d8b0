"""The predecessor's per-episode files: exact writer, safe readers, bad files."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixtures.assertions import assert_same_episode
from fixtures.factories import EpisodeFactory

from offgen.data import Episode
from offgen.data.legacy import (
    LegacyName,
    find_legacy_files,
    legacy_arrays,
    read_legacy_episode,
    write_npz_episode,
)
from offgen.errors import CorruptStoreError, SchemaError, UnsafeFileError


def _legacy_dict(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:  # plain numpy, as the predecessor's code read them
        return {k: npz[k] for k in npz.files}


def _as_predecessor_npy(npz_path: Path) -> Path:
    """The published format: np.save of a 0-d object array wrapping the dict (a pickle)."""
    target = npz_path.with_suffix(".npy")
    np.save(target, np.array(_legacy_dict(npz_path), dtype=object), allow_pickle=True)
    return target


@pytest.mark.parametrize(
    "name",
    [
        "20230101T120000_17_250_42_10.00.npz",
        "20221231T235959_0_1000_123456_-3.50.npy",
        "20230101T120000_5_12_7_-0.00.npz",
    ],
)
def test_name_round_trip(name: str) -> None:
    parsed = LegacyName.parse(name)
    assert parsed.format() == name
    assert LegacyName.parse(f"/some/dir/{name}") == parsed


def test_name_fields() -> None:
    name = LegacyName.parse("20221231T235959_3_1000_99_-3.50.npy")
    assert (name.index, name.length, name.level_seed, name.episode_return) == (3, 1000, 99, -3.5)
    assert name.timestamp == "20221231T235959" and name.suffix == "npy"


@pytest.mark.parametrize(
    "bad", ["episode_1.npz", "2023_1_2_3_4.00.npz", "20230101T120000_1_2_3.npz"]
)
def test_bad_name(bad: str) -> None:
    with pytest.raises(SchemaError, match=r"not a legacy episode file name.*expected"):
        LegacyName.parse(bad)


def test_npz_written_exactly_like_the_published_data(
    tmp_path: Path, procgen_episodes: list[Episode]
) -> None:
    episode = procgen_episodes[0]
    path = write_npz_episode(tmp_path, episode, index=7, timestamp="20240102T030405")
    steps = episode.length
    assert (
        path.name
        == f"20240102T030405_7_{steps}_{episode.level_seed}_{episode.episode_return:.2f}.npz"
    )
    with zipfile.ZipFile(path) as archive:  # np.savez_compressed: deflated members
        assert {m.compress_type for m in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    arrays = _legacy_dict(path)
    assert sorted(arrays) == ["actions", "dones", "observations", "rewards"]
    assert arrays["observations"].shape == (steps + 1, 3, 64, 64)
    assert arrays["observations"].dtype == np.float32
    assert arrays["actions"].shape == (steps, 1) and arrays["actions"].dtype == np.int64
    assert arrays["rewards"].shape == (steps, 1) and arrays["rewards"].dtype == np.float32
    assert arrays["dones"].shape == (steps,) and arrays["dones"].dtype == np.float32
    assert arrays["dones"][-1] == 1 and not arrays["dones"][:-1].any()
    np.testing.assert_array_equal(arrays["observations"], np.moveaxis(episode.observations, -1, 1))
    assert not list(tmp_path.glob(".*"))  # atomic write left no temporary file


def test_npz_round_trip_real_frames(tmp_path: Path, procgen_episodes: list[Episode]) -> None:
    for i, episode in enumerate(procgen_episodes[:4]):
        path = write_npz_episode(tmp_path, episode, index=i)
        back = read_legacy_episode(path, "coinrun")
        assert_same_episode(back, episode)
        assert back.observations.dtype == np.uint8 and back.observations.shape[1:] == (64, 64, 3)
        assert back.final_frame_is_true is False
        assert back.provenance["source_file"] == path.name


def test_predecessor_npy_pickled_dict(tmp_path: Path, procgen_episodes: list[Episode]) -> None:
    episode = procgen_episodes[1]
    npy = _as_predecessor_npy(write_npz_episode(tmp_path, episode, index=1))
    # the predecessor's reader, for reference
    assert np.load(npy, allow_pickle=True).item()["observations"].shape[0] == episode.length + 1
    back = read_legacy_episode(npy, "coinrun")
    assert_same_episode(back, episode)


def test_truncation_inferred_from_the_time_limit(
    tmp_path: Path, episode_factory: EpisodeFactory
) -> None:
    rng = np.random.default_rng(0)
    long = episode_factory.smooth(rng, 500, game="maze")  # maze's limit is 500 steps
    short = episode_factory.smooth(rng, 499, game="maze")
    a = read_legacy_episode(write_npz_episode(tmp_path, long, 0), "maze")
    b = read_legacy_episode(write_npz_episode(tmp_path, short, 1), "maze")
    assert (a.truncated, a.terminated) == (True, False)
    assert (b.truncated, b.terminated) == (False, True)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_in_npy_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    bad = tmp_path / "20230101T000000_1_3_1_0.00.npy"
    payload = {"observations": _Exploit(marker), "actions": np.zeros((3, 1))}
    np.save(bad, np.array(payload, dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeFileError, match=rf"{bad.name}.*system"):
        read_legacy_episode(bad, "coinrun")
    assert not marker.exists()


def test_pickle_with_numpy_function_is_refused(tmp_path: Path) -> None:
    # Only array-reconstruction globals are allowed, not arbitrary numpy callables.
    marker = tmp_path / "written.npy"

    class Saver:
        def __reduce__(self) -> tuple[object, tuple[str, np.ndarray]]:
            return (np.save, (str(marker), np.zeros(1)))

    bad = tmp_path / "20230101T000000_2_3_1_0.00.npy"
    np.save(bad, np.array({"observations": Saver()}, dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeFileError, match="numpy"):
        read_legacy_episode(bad, "coinrun")
    assert not marker.exists()


def test_raw_pickle_file_disguised_as_npy(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    bad = tmp_path / "20230101T000000_3_3_1_0.00.npy"
    bad.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(CorruptStoreError, match=bad.name):
        read_legacy_episode(bad, "coinrun")
    assert not marker.exists()


def test_object_array_in_npz_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    bad = tmp_path / "20230101T000000_4_3_1_0.00.npz"
    np.savez_compressed(
        bad,
        observations=np.array([_Exploit(marker)], dtype=object),
        actions=np.zeros((3, 1)),
        rewards=np.zeros((3, 1)),
        dones=np.zeros(3),
    )
    with pytest.raises(UnsafeFileError, match=bad.name):
        read_legacy_episode(bad, "coinrun")
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_truncated_file(tmp_path: Path, suffix: str, episode_factory: EpisodeFactory) -> None:
    rng = np.random.default_rng(1)
    path = write_npz_episode(tmp_path, episode_factory.smooth(rng, 50), 0)
    if suffix == ".npy":
        path = _as_predecessor_npy(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(CorruptStoreError, match=rf"{path.name}.*(truncated|corrupt)"):
        read_legacy_episode(path, "coinrun")


def test_corrupt_byte_in_npz(tmp_path: Path, episode_factory: EpisodeFactory) -> None:
    rng = np.random.default_rng(2)
    path = write_npz_episode(tmp_path, episode_factory.smooth(rng, 50), 0)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match=path.name):
        read_legacy_episode(path, "coinrun")


def save_three_steps(path: Path, observations: np.ndarray) -> None:
    """A 3-step legacy ``.npz`` around ``observations`` (zero actions and rewards)."""
    np.savez_compressed(
        path,
        observations=observations,
        actions=np.zeros((3, 1)),
        rewards=np.zeros((3, 1)),
        dones=np.ones(3),
    )


def test_missing_key_and_length_mismatch(tmp_path: Path) -> None:
    obs = np.zeros((4, 3, 64, 64), np.float32)
    partial = tmp_path / "20230101T000000_0_3_1_0.00.npz"
    np.savez_compressed(partial, observations=obs, actions=np.zeros((3, 1), np.int64))
    with pytest.raises(SchemaError, match=r"missing keys \['rewards', 'dones'\]"):
        read_legacy_episode(partial, "coinrun")
    lying = tmp_path / "20230101T000000_1_9_1_0.00.npz"  # the name says 9 steps
    save_three_steps(lying, obs)
    with pytest.raises(SchemaError, match="name says 9 steps"):
        read_legacy_episode(lying, "coinrun")


@pytest.mark.parametrize("bad", [0.5, 255.5, 256.0, -1.0, 1e10, np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_integer_frames_refused(tmp_path: Path, bad: float, dtype: type) -> None:
    obs = np.full((4, 3, 64, 64), 7, dtype)
    obs[2, 1, 30, 40] = bad  # one bad value in an otherwise valid episode
    path = tmp_path / "20230101T000000_0_3_1_0.00.npz"
    save_three_steps(path, obs)
    with pytest.raises(SchemaError, match=rf"{path.name}.*whole numbers"):
        read_legacy_episode(path, "coinrun")
    assert legacy_arrays(path)["observations"].dtype == dtype


def test_whole_number_float_frames_are_cast_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (4, 3, 64, 64)).astype(np.float32)
    frames[0, 0, 0, :2] = (0.0, 255.0)
    path = tmp_path / "20230101T000000_0_3_1_0.00.npz"
    save_three_steps(path, frames)
    episode = read_legacy_episode(path, "coinrun")
    np.testing.assert_array_equal(
        episode.observations, frames.transpose(0, 2, 3, 1).astype(np.uint8)
    )


def test_find_files_sorted_by_index_both_layouts(
    tmp_path: Path, episode_factory: EpisodeFactory
) -> None:
    rng = np.random.default_rng(3)
    games = tmp_path / "extracted" / "coinrun"
    for index in (10, 2, 1):
        write_npz_episode(games, episode_factory.smooth(rng, 5), index)
    (games / "README.txt").write_text("not an episode")
    found = find_legacy_files(tmp_path / "extracted", "coinrun")
    assert [name.index for name, _ in found] == [1, 2, 10]  # numeric, not lexical
    assert [n for n, _ in find_legacy_files(games)] == [n for n, _ in found]
    with pytest.raises(CorruptStoreError, match="no legacy episode files"):
        find_legacy_files(tmp_path / "extracted")
    (games / "stray.npz").write_bytes(b"")
    with pytest.raises(SchemaError, match=r"stray\.npz"):
        find_legacy_files(games)


def test_npy_pickled_by_numpy_1(tmp_path: Path, procgen_episodes: list[Episode]) -> None:
    """The published files were written by numpy < 1.24: protocol 3, globals under numpy.core."""
    episode = procgen_episodes[2]
    arrays = _legacy_dict(write_npz_episode(tmp_path / "src", episode, index=0))
    payload = pickle.dumps(np.array(arrays, dtype=object), protocol=3)
    assert b"numpy._core.multiarray" in payload  # GLOBAL opcodes are plain text in protocol 3
    payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = (
        tmp_path
        / LegacyName(0, "20220101T000000", episode.length, episode.level_seed, 1.0, "npy").format()
    )
    with open(path, "wb") as handle:
        header = {"descr": "|O", "fortran_order": False, "shape": ()}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(payload)
    assert_same_episode(read_legacy_episode(path, "coinrun"), episode)
