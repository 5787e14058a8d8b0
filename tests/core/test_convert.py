"""offgen convert: legacy folder -> store -> offgen.load gives back the same episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import offgen
from offgen.data import Episode
from offgen.data.convert import SOURCES_FILE, convert_legacy
from offgen.data.legacy import write_npz_episode
from offgen.errors import IncompleteStoreError, SchemaError, StoreExistsError, UnsafeFileError
from offgen.paths import dataset_dir

from .conftest import assert_same_episode, smooth_episode
from .test_legacy import _as_predecessor_npy, _legacy_dict


@pytest.fixture
def legacy_folder(tmp_path: Path, procgen_episodes: list[Episode]) -> Path:
    """An extracted archive: coinrun/<files>, half .npz, half pickled .npy, written out of order."""
    root = tmp_path / "extracted"
    for index in reversed(range(len(procgen_episodes))):
        path = write_npz_episode(root / "coinrun", procgen_episodes[index], index)
        if index % 2:
            _as_predecessor_npy(path)
            path.unlink()
    return root


def test_convert_then_load_by_name(legacy_folder: Path, procgen_episodes: list[Episode]) -> None:
    target = dataset_dir("expert_1M", "coinrun")
    result = convert_legacy(legacy_folder, target, game="coinrun", dataset="1M_E", progress=False)
    assert result.episodes == len(procgen_episodes) and result.converted == result.episodes
    assert result.transitions == sum(e.length for e in procgen_episodes)
    dataset = offgen.load("1M_E", game="coinrun")  # the alias finds the converted store
    assert len(dataset) == len(procgen_episodes)
    for i, original in enumerate(procgen_episodes):
        back = dataset.episode(i)
        assert_same_episode(back, original)  # frames cast to uint8 and moved CHW -> HWC exactly
        assert back.final_frame_is_true is False
        assert back.policy_id == "legacy:expert_1M"
        assert back.terminated != back.truncated
    info = dataset.info
    assert info.dataset == "expert_1M"
    assert info.env.to_json() == {"distribution_mode": "easy", "start_level": 0, "num_levels": 200}
    assert info.provenance["converted_from"]["files"] == len(procgen_episodes)
    assert info.observation.final_frame == "next_level_first_frame"
    sources = (target / SOURCES_FILE).read_text().split()
    assert [int(name.split("_")[1]) for name in sources] == list(range(len(procgen_episodes)))
    dataset.store.verify()  # the sources file is covered by the manifest


def test_convert_resumes_after_interruption(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    episodes = [smooth_episode(rng, int(rng.integers(10, 60))) for _ in range(12)]
    for i, episode in enumerate(episodes):
        write_npz_episode(tmp_path / "src", episode, i)
    store = tmp_path / "store"

    class Stop(Exception):
        pass

    def stop_after_five(count: int) -> None:
        if count == 5:
            raise Stop

    with pytest.raises(Stop):
        convert_legacy(
            tmp_path / "src", store, game="coinrun", progress=False, on_episode=stop_after_five
        )
    with pytest.raises(StoreExistsError, match="--resume"):
        convert_legacy(tmp_path / "src", store, game="coinrun", progress=False)
    result = convert_legacy(tmp_path / "src", store, game="coinrun", mode="append", progress=False)
    assert result.skipped == 5 and result.converted == 7
    dataset = offgen.load(store, game="coinrun")
    assert len(dataset) == 12
    for i, episode in enumerate(episodes):
        assert_same_episode(dataset.episode(i), episode)


def test_resume_from_other_files_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for i in range(3):
        write_npz_episode(tmp_path / "a", smooth_episode(rng, 30), i)
        write_npz_episode(tmp_path / "b", smooth_episode(rng, 31), i)
    convert_legacy(tmp_path / "a", tmp_path / "store", game="coinrun", progress=False)
    with pytest.raises(StoreExistsError, match=r"does not match source file.*--overwrite"):
        convert_legacy(
            tmp_path / "b", tmp_path / "store", game="coinrun", mode="append", progress=False
        )
    result = convert_legacy(
        tmp_path / "b", tmp_path / "store", game="coinrun", mode="overwrite", progress=False
    )
    assert (
        result.episodes == 3 and offgen.load(tmp_path / "store").table.lengths.tolist() == [31] * 3
    )


def test_unsafe_file_stops_conversion_keeping_committed(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    for i in range(4):
        write_npz_episode(tmp_path / "src", smooth_episode(rng, 30), i)
    bad = tmp_path / "src" / "20230101T000000_9_3_1_0.00.npy"
    np.save(bad, np.array({"observations": print}, dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeFileError, match=bad.name):
        convert_legacy(tmp_path / "src", tmp_path / "store", game="coinrun", progress=False)
    partial = offgen.load(tmp_path / "store", allow_incomplete=True)
    assert len(partial) == 4  # every episode before the bad file was committed


def test_a_bad_frame_stops_conversion_and_resume_finishes_it(tmp_path: Path) -> None:
    """Frames are decoded in the writer's compression threads: a bad value still stops the
    conversion with the file's name, and the store resumes once the file is fixed."""
    rng = np.random.default_rng(8)
    episodes = [smooth_episode(rng, int(rng.integers(200, 400))) for _ in range(8)]
    paths = [
        _as_predecessor_npy(write_npz_episode(tmp_path / "npz", e, i))
        for i, e in enumerate(episodes)
    ]
    source = tmp_path / "src"
    source.mkdir()
    for path in paths:
        path.rename(source / path.name)
    bad = source / paths[5].name
    good_bytes = bad.read_bytes()
    arrays = _legacy_dict(tmp_path / "npz" / paths[5].with_suffix(".npz").name)
    arrays["observations"][100, 1, 7, 9] = 12.5
    np.save(bad, np.array(arrays, dtype=object), allow_pickle=True)
    store = tmp_path / "store"
    with pytest.raises(SchemaError, match=rf"{bad.name}.*whole numbers"):
        convert_legacy(source, store, game="coinrun", progress=False)
    bad.write_bytes(good_bytes)
    result = convert_legacy(source, store, game="coinrun", mode="append", progress=False)
    assert result.episodes == 8 and result.skipped < 5
    dataset = offgen.load(store, game="coinrun")
    for i, episode in enumerate(episodes):
        assert_same_episode(dataset.episode(i), episode)


def test_the_same_episode_twice_is_converted_once_with_a_warning(tmp_path: Path) -> None:
    """Issue 12 item 6: a .npy beside its .npz, or a copy under another timestamp, counted twice."""
    rng = np.random.default_rng(7)
    episodes = [smooth_episode(rng, int(rng.integers(10, 40))) for _ in range(4)]
    paths = [
        write_npz_episode(tmp_path / "src", e, i, timestamp="20230101T000000")
        for i, e in enumerate(episodes)
    ]
    beside = _as_predecessor_npy(paths[1])  # the .npy beside its .npz
    later = write_npz_episode(tmp_path / "src", episodes[3], 3, timestamp="20240101T000000")
    with pytest.warns(UserWarning, match=r"2 file\(s\) repeat an episode") as caught:
        result = convert_legacy(
            tmp_path / "src", tmp_path / "store", game="coinrun", progress=False
        )
    assert len(caught) == 1
    assert result.episodes == 4 and result.duplicates == (beside.name, later.name)
    assert result.transitions == sum(e.length for e in episodes)
    sources = (tmp_path / "store" / SOURCES_FILE).read_text().split()
    assert sources == [p.name for p in paths]  # the .npz, and the earliest copy


def test_episodes_longer_than_the_game_allows_are_refused_unless_forced(tmp_path: Path) -> None:
    """Issue 12 item 6: coinrun's 1000-step episodes converted as maze (limit 500)."""
    rng = np.random.default_rng(8)
    write_npz_episode(tmp_path / "src", smooth_episode(rng, 20, game="maze"), 0)
    write_npz_episode(tmp_path / "src", smooth_episode(rng, 501, game="coinrun"), 1)
    with pytest.raises(SchemaError, match=r"1 of 2 episodes are longer than maze's limit of 500"):
        convert_legacy(tmp_path / "src", tmp_path / "store", game="maze", progress=False)
    assert not (tmp_path / "store").exists()  # refused before anything was written
    forced = convert_legacy(
        tmp_path / "src", tmp_path / "store", game="maze", progress=False, force=True
    )
    assert forced.episodes == 2 and forced.transitions == 521


def test_a_conversion_refused_before_its_first_episode_is_continued_by_its_rerun(
    tmp_path: Path,
) -> None:
    """The first file is refused: the 0-episode store left behind reads as unfinished, and the
    plain rerun (no --resume) does not trip on it."""
    rng = np.random.default_rng(9)
    for i in (1, 2):
        write_npz_episode(tmp_path / "src", smooth_episode(rng, 30), i)
    first = write_npz_episode(tmp_path / "src", smooth_episode(rng, 30), 0)  # the first file
    good = first.read_bytes()
    bad = first.with_suffix(".npy")
    np.save(bad, np.array({"observations": print}, dtype=object), allow_pickle=True)
    first.unlink()
    store = tmp_path / "store"
    with pytest.raises(UnsafeFileError, match=bad.name):
        convert_legacy(tmp_path / "src", store, game="coinrun", progress=False)
    with pytest.raises(IncompleteStoreError):
        offgen.load(store)
    bad.unlink()
    first.write_bytes(good)
    result = convert_legacy(tmp_path / "src", store, game="coinrun", progress=False)  # plain rerun
    assert result.episodes == 3 and len(offgen.load(store)) == 3
