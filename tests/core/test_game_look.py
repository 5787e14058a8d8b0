"""Issue 12 item 6: files whose frames are another game's are refused unless forced.

Real envpool frames of levels not among the signatures' references (9,000,000 on), written as the
predecessor's files through the factories.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixtures.factories import EpisodeFactory, LegacyFactory, build_game_archive

import offgen
from offgen.data import Episode
from offgen.data.convert import convert_legacy
from offgen.data.game_look import check_game_look
from offgen.errors import CorruptStoreError, OffgenError, SchemaError
from offgen.hub.stream import convert_archive
from offgen.registry import GAMES

pytest.importorskip("envpool")


def _first_frames(episodes: list[Episode]) -> np.ndarray:
    return np.stack([e.observations[0] for e in episodes])


@pytest.mark.parametrize("mode", ["Easy", "Hard"])
def test_real_first_frames_of_every_game_pass_as_their_game(
    episode_factory: EpisodeFactory, mode: str
) -> None:
    for game in sorted(GAMES):
        episodes = episode_factory.procgen_openings(game, 8, steps=1, mode=mode)
        names = [f"{game}-{e.level_seed}" for e in episodes]
        check_game_look(_first_frames(episodes), names, game, where=game)  # must not raise


@pytest.mark.parametrize(
    ("actual", "claimed"),
    [
        ("coinrun", "maze"),
        ("maze", "coinrun"),
        ("bigfish", "plunder"),
        ("jumper", "climber"),
        ("caveflyer", "coinrun"),
        ("dodgeball", "fruitbot"),
        ("starpilot", "bossfight"),
    ],
)
def test_frames_of_another_game_are_refused_naming_it(
    episode_factory: EpisodeFactory, actual: str, claimed: str
) -> None:
    episodes = episode_factory.procgen_openings(actual, 8, steps=1, start_level=9_500_000)
    names = [f"ep{e.level_seed}.npz" for e in episodes]
    with pytest.raises(SchemaError, match=rf"look like {actual}, not {claimed}.*--game {actual}"):
        check_game_look(_first_frames(episodes), names, claimed, where="folder")


def test_frames_that_look_like_no_game_are_accepted(episode_factory: EpisodeFactory) -> None:
    """Noise says nothing about the game: the documented case where the label is trusted."""
    rng = np.random.default_rng(0)
    episodes = [episode_factory.random(rng, 1) for _ in range(4)]
    for game in ("coinrun", "maze", "starpilot"):
        check_game_look(_first_frames(episodes), ["a", "b", "c", "d"], game, where="noise")


def test_convert_refuses_coinrun_files_claimed_as_maze_unless_forced(
    tmp_path: Path, procgen_episodes: list[Episode], legacy_factory: LegacyFactory
) -> None:
    """The issue's case: real coinrun episodes (all within maze's 500 steps) converted as maze."""
    short = [e for e in procgen_episodes if e.length <= 500][:6]
    source = tmp_path / "src"
    legacy_factory.files(short[:3], source, ext="npy")
    legacy_factory.files(short[3:], source, ext="npz", start=3)
    store = tmp_path / "store"
    with pytest.raises(SchemaError) as refused:
        convert_legacy(source, store, game="maze", progress=False)
    message = str(refused.value)
    assert "\n" not in message and str(source) in message
    assert "look like coinrun, not maze" in message and "--game coinrun" in message
    assert "--force" in message
    assert not store.exists()  # refused before anything was written
    forced = convert_legacy(source, store, game="maze", progress=False, force=True)
    assert forced.episodes == len(short) and offgen.load(store).game == "maze"
    right = convert_legacy(source, tmp_path / "coinrun", game="coinrun", progress=False)
    assert right.episodes == len(short)


def test_convert_accepts_real_files_of_the_claimed_game(
    tmp_path: Path, episode_factory: EpisodeFactory, legacy_factory: LegacyFactory
) -> None:
    episodes = episode_factory.procgen_openings("maze", 4, start_level=9_700_000, mode="Hard")
    legacy_factory.files(episodes, tmp_path / "src", ext="npz")
    result = convert_legacy(tmp_path / "src", tmp_path / "store", game="maze", progress=False)
    assert result.episodes == 4


def test_archive_stream_refuses_coinrun_frames_packed_as_maze_unless_forced(
    tmp_path: Path, procgen_episodes: list[Episode]
) -> None:
    """The download path (an archive converted as one stream) checks the first episodes too."""
    short = [e for e in procgen_episodes if e.length <= 500][:6]
    archive = build_game_archive(short, "maze", tmp_path / "maze.tar.xz", work=tmp_path / "w")
    with pytest.raises(SchemaError) as refused:
        convert_archive(archive, {"maze": tmp_path / "store"}, progress=False)
    message = str(refused.value)
    assert "\n" not in message and str(archive) in message
    assert "look like coinrun, not maze" in message
    info = json.loads((tmp_path / "store" / "info.json").read_bytes())
    assert info["status"] != "complete"  # what was written before the refusal is not a dataset
    forced = convert_archive(archive, {"maze": tmp_path / "store"}, progress=False, force=True)
    assert forced["maze"].episodes == len(short)
    assert offgen.load(tmp_path / "store").game == "maze"


def test_npz_files_are_checked_from_their_first_frame_alone(
    tmp_path: Path, procgen_episodes: list[Episode], legacy_factory: LegacyFactory
) -> None:
    """``.npz`` files only (the collector's format): the first frame is read without inflating the
    whole member, still refuses coinrun claimed as maze; a damaged file among them is left to the
    conversion, which names it."""
    from offgen.data.legacy.npz import load_npz_first_frame

    short = [e for e in procgen_episodes if e.length <= 500][:4]
    source = tmp_path / "src"
    files = legacy_factory.files(short, source, ext="npz")
    first = load_npz_first_frame(files[0])
    assert first.shape == (1, 3, 64, 64)
    np.testing.assert_array_equal(first[0].transpose(1, 2, 0), short[0].observations[0])
    with pytest.raises(SchemaError, match="look like coinrun, not maze"):
        convert_legacy(source, tmp_path / "store", game="maze", progress=False)
    files[1].write_bytes(files[1].read_bytes()[:200])  # cut inside the zip
    with pytest.raises(SchemaError, match="look like coinrun, not maze"):  # 3 of 3 readable
        convert_legacy(source, tmp_path / "store", game="maze", progress=False)
    with pytest.raises(OffgenError) as damaged:  # the conversion names the damaged file
        convert_legacy(source, tmp_path / "coinrun", game="coinrun", progress=False)
    assert files[1].name in str(damaged.value)
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': ("  # the dict never closes
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr(
            "observations.npy", b"\x93NUMPY\x01\x00" + bytes([len(header), 0]) + header
        )
    with pytest.raises(CorruptStoreError) as unreadable:  # one line, not numpy's SyntaxError
        load_npz_first_frame(bad)
    assert str(bad) in str(unreadable.value) and "\n" not in str(unreadable.value)
