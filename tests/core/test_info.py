"""``info.json`` as a typed, checked StoreInfo: round trips byte for byte, refuses bad values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from offgen.data import OffgenStore, StoreWriter
from offgen.data.format import INFO
from offgen.data.info import Codec, RatioRecipe, StoreInfo, read_info
from offgen.errors import CorruptStoreError

from .conftest import build_store

RECIPE = {
    "mode": "closest",
    "ratio": 0.5,
    "final_checkpoint": "run/final/model_9.90.pt",
    "final_return": 8,
    "target_return": 4.0,
    "tolerance_ratio": 0.05,
    "measurement": {"episodes": 10, "split": "test"},
    "candidates": [
        {
            "path": "run/final/model_9.90.pt",
            "kind": "final",
            "step": None,
            "name_return": 9.9,
            "measured_return": 8,
            "measured_length": 120.5,
        }
    ],
    "mixture": [
        {"path": "run/final/model_9.90.pt", "num_envs": 4, "weight_envs": 1.0,
         "measured_return": 8}
    ],
    "predicted_return": 8.0,
}  # fmt: skip


def test_written_info_round_trips_byte_for_byte(tmp_path: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    path = build_store(tmp_path / "s", small_episodes)
    data = (path / INFO).read_bytes()
    info = StoreInfo.from_bytes(data, "info.json")
    assert info.to_bytes() == data
    assert info.complete and info.game == "coinrun" and info.final_frame_is_true
    assert info.codec == Codec(chunk_frames=64, shard_frames=256)
    assert info.counts.episodes == len(small_episodes)
    assert OffgenStore(path).info == info


def test_recipe_is_typed_and_round_trips(tmp_path: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    with StoreWriter(tmp_path / "s", game="coinrun") as writer:
        writer.write(small_episodes[0])
        writer.update_info(recipe=RECIPE)
    info = read_info(tmp_path / "s")
    assert isinstance(info.recipe, RatioRecipe)
    assert info.recipe.candidates[0].name_return == 9.9 and info.recipe.mixture[0].num_envs == 4
    assert info.recipe.within_tolerance is None
    assert info.recipe.to_json() == RECIPE  # integers stay integers: the file round-trips
    assert info.to_bytes() == (tmp_path / "s" / INFO).read_bytes()


def test_final_frame_semantics_are_a_bool_not_a_string(tmp_path: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    with StoreWriter(tmp_path / "s", game="coinrun", final_frame_is_true=False) as writer:
        writer.write(small_episodes[0])
    assert OffgenStore(tmp_path / "s").info.final_frame_is_true is False
    assert OffgenStore(tmp_path / "s").final_frame_is_true is False


def _edit(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    raw = json.loads((path / INFO).read_bytes())
    edit(raw)
    (path / INFO).write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["codec"].update(shard_frames=0), r"codec\.shard_frames is 0, must be >= 1"),
        (lambda r: r["codec"].update(shard_frames=100), r"not a multiple of codec\.chunk_frames"),
        (lambda r: r["observation"].update(final_frame="yes"), r"observation\.final_frame"),
        (lambda r: r.update(game="pacman"), r"game is 'pacman'"),
        (lambda r: r.update(ginal_frame="true"), r"unknown keys \['ginal_frame'\]"),
        (lambda r: r["counts"].update(episodes="8"), r"counts\.episodes must be an integer"),
        (lambda r: r["env"].update(num_levels=-1), r"env\.num_levels is -1"),
        (lambda r: r.update(recipe={"mode": "closest"}), r"recipe\.ratio is missing"),
        (lambda r: r.update(status=True), r"status must be a string"),
    ],
)
def test_bad_values_are_refused_naming_file_and_key(
    tmp_path: Path,
    small_episodes,
    edit,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    path = build_store(tmp_path / "s", small_episodes[:2])
    _edit(path, edit)
    with pytest.raises(CorruptStoreError, match=rf"info\.json: .*{message}.*re-download") as err:
        OffgenStore(path)
    assert "\n" not in str(err.value)


def test_update_info_checks_values_and_fields(tmp_path: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    with StoreWriter(tmp_path / "s", game="coinrun") as writer:
        writer.write(small_episodes[0])
        with pytest.raises(ValueError, match="cannot set"):
            writer.update_info(game="maze")
        with pytest.raises(ValueError, match="recipe"):
            writer.update_info(recipe={"ratio": "half"})
        writer.update_info(recipe=RatioRecipe.from_json(RECIPE))
    assert read_info(tmp_path / "s").recipe == RatioRecipe.from_json(RECIPE)
    assert dataclasses.replace(read_info(tmp_path / "s"), recipe=None).recipe is None
