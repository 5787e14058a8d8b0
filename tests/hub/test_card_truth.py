"""Cards that never lie: every claim measured from the store or marked as the publisher's."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures.factories import LegacyFactory

from offgen.data import Episode, OffgenStore, StoreWriter
from offgen.hub.card import write_card
from offgen.hub.card_plots import frame_strip_rows

BIN = Path(sys.executable).parent


def _offgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "offgen"), *args], capture_output=True, text=True, env=dict(os.environ),
        timeout=180,
    )  # fmt: skip


def _random_store(path: Path, episodes: list[Episode], dataset: str | None = None) -> Path:
    """Random-policy episodes with true final frames, as offgen-collect writes them."""
    with StoreWriter(
        path, game="coinrun", dataset=dataset, env_options={"num_levels": 200, "start_level": 0}
    ) as writer:
        for ep in episodes:
            writer.write(ep)
    return path


def test_card_of_random_store_named_expert_is_refused(
    short_episodes: list[Episode], tmp_path: Path
) -> None:
    store = _random_store(tmp_path / "coinrun", short_episodes)
    out = _offgen("card", "expert_1M", "-g", "coinrun", "--store", str(store),
                  "-o", str(tmp_path / "card"))  # fmt: skip
    assert out.returncode != 0
    assert "cannot be the registered dataset expert_1M" in out.stderr
    assert "random" in out.stderr and "true final frame" in out.stderr
    assert "--force" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "card" / "README.md").exists()


def test_forced_card_states_the_store_facts_and_flags_the_label(
    short_episodes: list[Episode], tmp_path: Path
) -> None:
    store = _random_store(tmp_path / "coinrun", short_episodes)
    out = _offgen("card", "expert_1M", "-g", "coinrun", "--store", str(store),
                  "-o", str(tmp_path / "card"), "--force")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "expert_1M" in out.stderr and "random" in out.stderr  # flagged on the terminal too
    text = (tmp_path / "card" / "README.md").read_text()
    # The old card's claims are no longer made about the data: the registry's words appear
    # only under the publisher's description, after what the store holds.
    rest, publisher = text.split("## Publisher's description")
    measured = rest.split("## What the stores hold (measured)")[1]
    assert "Final PPO checkpoint" not in measured and "Final PPO checkpoint" in publisher
    assert "next level's first frame" not in measured and "PPO" not in measured
    # ... the store's own facts are stated ...
    assert "`random` (3 episodes)" in text
    assert "true final frame" in text
    ends = sum(ep.terminated for ep in short_episodes), sum(ep.truncated for ep in short_episodes)
    assert f"{ends[0]} terminated, {ends[1]} truncated" in text
    seeds = sorted({ep.level_seed for ep in short_episodes})
    assert f"{len(seeds)} distinct level seeds ({seeds[0]}-{seeds[-1]})" in text
    # ... the registry's words are marked as not measured ...
    assert "**not** measured from the stores of this card" in publisher
    # ... and the mismatch is flagged at the top, before any other section.
    warning = text.index("[!WARNING]")
    assert warning < text.index("## ") and "not the registered dataset `expert_1M`" in text


def _table_blocks(text: str) -> list[list[str]]:
    """Runs of consecutive Markdown table lines."""
    blocks: list[list[str]] = []
    previous = False
    for line in text.splitlines():
        is_row = line.startswith("|")
        if is_row and previous:
            blocks[-1].append(line)
        elif is_row:
            blocks.append([line])
        previous = is_row
    return blocks


def test_statistics_table_is_one_contiguous_table_and_nothing_says_none(
    short_episodes: list[Episode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.figure

    titles: list[str] = []
    save = matplotlib.figure.Figure.savefig

    def record(fig: matplotlib.figure.Figure, *args: Any, **kwargs: Any) -> None:
        titles.extend(ax.get_title() for ax in fig.axes)
        titles.append(fig.get_suptitle())
        save(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    card = tmp_path / "card"
    for game in ("coinrun", "maze"):  # no dataset recorded in the stores: their label is None
        store = tmp_path / game
        with StoreWriter(store, game=game, env_options={"num_levels": 200}) as writer:
            for ep in short_episodes:
                writer.write(dataclasses.replace(ep, game=game))
        written = write_card("expert_1M", store, card, force=True)
        assert written.mismatches  # random policy, true final frames
    text = (card / "README.md").read_text()
    tables = _table_blocks(text)
    assert len(tables) == 1, "the statistics table must be one block of contiguous lines"
    header, rule, *rows = tables[0]
    assert header.startswith("| game | episodes | transitions |") and rule.startswith("|---|")
    assert [row.split(" | ")[0] for row in rows] == ["| coinrun", "| maze"]
    assert all(row.count("|") == header.count("|") for row in rows)
    assert "None" not in text
    assert titles and not any("None" in t for t in titles)
    assert any(t.startswith("expert_1M / maze: 3 episodes") for t in titles)


def test_card_pictures_are_written_and_referenced(
    short_episodes: list[Episode], tmp_path: Path
) -> None:
    import matplotlib.image

    store = _random_store(tmp_path / "coinrun", short_episodes)
    written = write_card("expert_1M", store, tmp_path / "card", force=True)
    text = written.card.read_text()
    assert [p.name for p in written.images] == [
        f"coinrun_{kind}.png" for kind in ("returns", "lengths", "levels", "frames")
    ]
    for png in written.images:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](images/{png.name})" in text
    # The strip shows three sample episodes (lowest, median, highest return), first to last.
    opened = OffgenStore(store)
    picks = frame_strip_rows(opened)
    assert len(picks) == 3
    for index, frames in picks:
        assert frames[0] == 0 and frames[-1] == int(opened.table.rows["length"][index])
    strip = matplotlib.image.imread(tmp_path / "card" / "images" / "coinrun_frames.png")
    assert strip.shape[1] > 2 * strip.shape[0]  # a strip: wider than tall


def test_convert_refuses_a_registered_name_the_files_cannot_be(
    short_episodes: list[Episode], tmp_path: Path, legacy_factory: LegacyFactory
) -> None:
    src = tmp_path / "src"
    legacy_factory.files(short_episodes, src)
    seeds = sorted({ep.level_seed for ep in short_episodes})
    assert seeds != [0]  # collected on 200 levels: not the single level of level1_mixed_100k
    store = tmp_path / "store"
    refused = _offgen("convert", str(src), str(store), "-g", "coinrun", "-d", "level1_mixed_100k")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "cannot be the registered dataset level1_mixed_100k" in refused.stderr
    assert f"lie outside level1_mixed_100k's level 0 ({seeds[0]}" in refused.stderr
    assert "--force" in refused.stderr
    assert not store.exists()

    forced = _offgen("convert", str(src), str(store), "-g", "coinrun", "-d", "level1_mixed_100k",
                     "--force")  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    provenance = OffgenStore(store).info.provenance
    assert "level seeds lie outside" in provenance["label_forced"][0]
    # The store keeps contradicting its name: its card needs --force too, and says so.
    assert _offgen("card", "level1_mixed_100k", "-g", "coinrun", "--store", str(store),
                   "-o", str(tmp_path / "card")).returncode != 0  # fmt: skip

    # The same files may be expert_1M (200 levels, under 1M transitions).
    ok = _offgen("convert", str(src), str(tmp_path / "e"), "-g", "coinrun", "-d", "expert_1M")
    assert ok.returncode == 0, ok.stderr
    carded = _offgen("card", "expert_1M", "-g", "coinrun", "--store", str(tmp_path / "e"),
                     "-o", str(tmp_path / "card_e"))  # fmt: skip
    assert carded.returncode == 0, carded.stderr
    text = (tmp_path / "card_e" / "README.md").read_text()
    assert "[!WARNING]" not in text and "`legacy:expert_1M` (3 episodes" in text
    assert "the next level's first frame (Procgen auto-reset)" in text.split("## Publisher")[0]
    assert "inferred: truncated when length" in text


def test_card_refuses_a_store_of_another_game(
    short_episodes: list[Episode], tmp_path: Path
) -> None:
    store = _random_store(tmp_path / "coinrun", short_episodes)
    out = _offgen("card", "expert_1M", "-g", "maze", "--store", str(store), "--force",
                  "-o", str(tmp_path / "card"))  # fmt: skip
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "holds coinrun episodes, not maze" in out.stderr


def test_card_of_own_dataset_is_measured_only(
    short_episodes: list[Episode], tmp_path: Path
) -> None:
    # A name the registry does not know has no label to contradict and no publisher's words.
    store = _random_store(tmp_path / "coinrun", short_episodes, dataset="my_random")
    written = write_card("my_random", store, tmp_path / "card")
    assert written.mismatches == ()
    text = written.card.read_text()
    assert "# Procgen offline RL: `my_random`" in text
    assert "## What the stores hold (measured)" in text and "### coinrun" in text
    assert "Publisher's description" not in text and "predecessor" not in text
    assert "[!WARNING]" not in text and "license_name" not in text
    assert "- random" not in text.split("---")[1]  # no behaviour tag a registry would give
    assert f"{len(short_episodes)} episodes" in text  # the random policy's episodes, measured
