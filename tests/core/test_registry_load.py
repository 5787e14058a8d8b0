"""Names (games, datasets, aliases), local paths and offgen.load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import offgen
from offgen.data import StoreWriter
from offgen.errors import DatasetNotFoundError, OffgenError, UnknownNameError
from offgen.paths import cache_dir, dataset_dir, offgen_home
from offgen.registry import (
    DATASETS,
    GAMES,
    Target,
    local_datasets,
    normalized_return,
    registered_clash,
    resolve_dataset,
    resolve_game,
    resolve_target,
)

from .conftest import build_store


def test_sixteen_games_with_limits_and_reference_returns() -> None:
    assert len(GAMES) == 16
    assert {g: s.max_episode_steps for g, s in GAMES.items() if s.max_episode_steps != 1000} == {
        "bigfish": 6000,
        "bossfight": 4000,
        "plunder": 4000,
        "leaper": 500,
        "maze": 500,
    }
    assert (GAMES["fruitbot"].return_min, GAMES["fruitbot"].return_max) == (-1.5, 32.4)
    assert normalized_return("coinrun", 10) == 1.0 and normalized_return("coinrun", 5) == 0.0
    assert resolve_game("CoinrunEasy-v0").name == "coinrun"
    assert GAMES["starpilot"].envpool_id == "StarpilotEasy-v0"


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("1M_E", "expert_1M"),
        ("1m_s", "mixed_1M"),
        ("10M", "expert_10M"),
        ("25M", "suboptimal_25M"),
        ("level_1_E", "level1_expert_100k"),
        ("level_1_S", "level1_mixed_100k"),
        ("level_40_E", "level40_expert_100k"),
        ("LEVEL-40-S", "level40_mixed_100k"),
        ("expert_1M", "expert_1M"),
    ],
)
def test_dataset_aliases(alias: str, name: str) -> None:
    assert resolve_dataset(alias).name == name


def test_dataset_facts_and_both_url_schemes() -> None:
    assert len(DATASETS) == 8
    spec = resolve_dataset("mixed_1M")
    assert (spec.behaviour, spec.transitions_per_game, spec.num_levels) == ("mixed", 1_000_000, 200)
    first, second = spec.sources("chaser")
    assert first.url == "https://dl.fbaipublicfiles.com/DGRL/1M/suboptimal/chaser.tar.xz"
    assert second.url == (
        "https://dl.fbaipublicfiles.com/DGRL/Procgen/Datasets/Compressed/1M/level_200/suboptimal/"
        "chaser.tar.xz"
    )
    assert resolve_dataset("25M").sources("maze")[0].url.endswith("/DGRL/25M/maze.tar.xz")
    single = resolve_dataset("level_40_S").sources("maze")
    assert single[0].all_games and single[0].archive == "tar"
    assert (
        single[0].url
        == "https://dl.fbaipublicfiles.com/DGRL/100k_procgen_dataset_40_suboptimal.tar"
    )
    assert (
        single[1].url.endswith("/100k/level_40/suboptimal/maze.tar.xz") and not single[1].all_games
    )
    assert resolve_dataset("level_1_E").num_levels == 1


@pytest.mark.parametrize(
    ("call", "suggestion"),
    [
        (lambda: resolve_dataset("exprt_1M"), "expert_1M"),
        (lambda: resolve_dataset("1M_EE"), "expert_1M"),
        (lambda: resolve_game("cionrun"), "coinrun"),
        (lambda: resolve_game("starpilto"), "starpilot"),
    ],
)
def test_unknown_names_suggest(call, suggestion: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownNameError, match=rf"Did you mean '{suggestion}'\?"):
        call()


def test_paths_follow_offgen_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFGEN_HOME", str(tmp_path / "h"))
    assert offgen_home() == tmp_path / "h"
    assert (
        dataset_dir("expert_1M", "coinrun") == tmp_path / "h" / "datasets" / "expert_1M" / "coinrun"
    )
    assert cache_dir("memmap") == tmp_path / "h" / "cache" / "memmap"
    monkeypatch.delenv("OFFGEN_HOME")
    assert offgen_home() == Path.home() / ".cache" / "offgen"


def test_load_missing_dataset_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFGEN_OFFLINE", "1")  # what happens on a miss is offgen.hub's business
    with pytest.raises(DatasetNotFoundError) as err:
        offgen.load("expert_1M", game="coinrun")
    message = str(err.value)
    assert "offgen download --dataset expert_1M --games coinrun" in message
    assert str(dataset_dir("expert_1M", "coinrun")) in message
    assert "offgen convert <folder> --game coinrun --dataset expert_1M" in message
    assert "unsetting OFFGEN_OFFLINE" in message


def test_missing_dataset_online_does_not_blame_offline_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OFFGEN_SOURCES", "local")  # no download source: nothing to fetch from
    with pytest.raises(DatasetNotFoundError) as err:
        offgen.load("expert_1M", game="coinrun")
    assert "OFFGEN_OFFLINE" not in str(err.value)
    assert "offgen convert" in str(err.value)


def test_load_errors() -> None:
    with pytest.raises(UnknownNameError, match="needs a game"):
        offgen.load("expert_1M")
    with pytest.raises(UnknownNameError, match="Did you mean 'expert_1M'"):
        offgen.load("expret_1M", game="coinrun")
    with pytest.raises(UnknownNameError, match="Did you mean 'coinrun'"):
        offgen.load("expert_1M", game="conirun")
    with pytest.raises(DatasetNotFoundError, match="no offgen store here"):
        offgen.load("./no/such/store")


def test_load_by_name_path_and_url(small_episodes) -> None:  # type: ignore[no-untyped-def]
    target = build_store(dataset_dir("level40_mixed_100k", "coinrun"), small_episodes)
    by_alias = offgen.load("level_40_S", game="coinrun")
    assert len(by_alias) == len(small_episodes)
    assert by_alias.store.location == str(target)
    assert len(offgen.load(target)) == len(small_episodes)
    assert len(offgen.load(str(target), game="coinrun")) == len(small_episodes)
    assert len(offgen.load(f"file://{target}")) == len(small_episodes)
    with pytest.raises(UnknownNameError, match="holds game 'coinrun', not 'maze'"):
        offgen.load(target, game="maze")


def test_import_offgen_is_light() -> None:
    code = "import sys, offgen; offgen.load; print(sorted(m for m in ('numpy', 'zarr') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_one_rule_tells_names_from_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_target("1M_E") == Target(
        "registered", "1M_E", resolve_dataset("expert_1M"), name="expert_1M"
    )
    (tmp_path / "expert_1M").mkdir()  # a folder of the same name: the name still wins
    assert resolve_target("expert_1M").kind == "registered"
    assert resolve_target("./expert_1M") == Target("path", "./expert_1M")
    assert resolve_target(Path("expert_1M")) == Target("path", "expert_1M")
    for spelled_as_path in ("stores/coinrun", "~/stores", "s3://bucket/coinrun", "/abs"):
        assert resolve_target(spelled_as_path).kind == "path"
    (tmp_path / "mystore").mkdir()
    assert resolve_target("mystore") == Target("path", "mystore")
    with pytest.raises(UnknownNameError, match="Did you mean 'expert_1M'"):
        resolve_target("exprt_1M")


def test_public_names_resolve_lazily_without_heavy_imports() -> None:
    heavy = ("numpy", "zarr", "torch", "huggingface_hub", "typer", "offgen.data", "offgen.hub.hf")
    code = (
        f"import sys, offgen, offgen.hub; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import offgen.hub

    for module in (offgen, offgen.hub):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    assert offgen.push_store is offgen.hub.push_store
    assert offgen.hub.pull_store.__module__ == "offgen.hub.hf"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        offgen.nope  # noqa: B018


def test_own_datasets_are_names(small_episodes, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    mine = build_store(dataset_dir("my_random", "coinrun"), small_episodes[:3])
    lab = build_store(dataset_dir("my-lab/coinrun-random", "coinrun"), small_episodes[:2])
    assert offgen.load("my_random", game="coinrun").store.location == str(mine)
    assert len(offgen.load("my-lab/coinrun-random", game="coinrun")) == 2
    assert resolve_target("my-lab/coinrun-random").local.folder == lab.parent  # type: ignore[union-attr]
    assert [(d.name, d.games) for d in local_datasets()] == [
        ("my-lab/coinrun-random", ("coinrun",)),
        ("my_random", ("coinrun",)),
    ]
    with pytest.raises(UnknownNameError, match=r"needs a game .* It has: coinrun"):
        offgen.load("my_random")
    with pytest.raises(DatasetNotFoundError, match=r"has no store for 'maze'.*it has coinrun"):
        offgen.load("my_random", game="maze")
    with pytest.raises(UnknownNameError, match=r"Did you mean 'my_random'.*local datasets: my-lab"):
        offgen.load("my_randon", game="coinrun")
    with pytest.raises(OffgenError, match="revision='v1' applies to hub names"):
        offgen.load("my_random", game="coinrun", revision="v1")


def test_local_folder_may_not_take_a_registered_name(
    small_episodes, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OFFGEN_SOURCES", "local")
    build_store(dataset_dir("1M_E", "coinrun"), small_episodes[:1])  # spells expert_1M's alias
    assert registered_clash("1M_E") is DATASETS["expert_1M"]
    assert registered_clash("expert_1M") is None  # the registered dataset's own folder
    with pytest.raises(DatasetNotFoundError, match="expert_1M"):
        offgen.load("1M_E", game="coinrun")  # the registered dataset, not the folder
    labelled = dataset_dir("expert_1M", "coinrun")
    with StoreWriter(labelled, game="coinrun", dataset="my_random") as writer:
        writer.write(small_episodes[0])
    with pytest.raises(DatasetNotFoundError, match="labelled dataset 'my_random', not 'expert_1M'"):
        offgen.load("expert_1M", game="coinrun")
