"""Dataset cards: measured statistics, HF YAML header, histogram, and the published cards."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from offgen.data import Episode, StoreWriter
from offgen.hub.card import measure_store, render_card
from offgen.registry import DATASETS, GAMES, resolve_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]


def _header(text: str) -> dict[str, object]:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "card must start with a YAML header"
    meta = yaml.safe_load(match[1])
    assert isinstance(meta, dict)
    return meta


def test_measured_card_from_real_store(short_episodes: list[Episode], tmp_path: Path) -> None:
    store = tmp_path / "coinrun"
    # Shaped like the published expert_1M converted (legacy policy id, next-level final frames),
    # so the card may carry the name (a random-policy store may not: test_card_truth.py).
    with StoreWriter(
        store,
        game="coinrun",
        dataset="expert_1M",
        env_options={"num_levels": 200},
        final_frame_is_true=False,
    ) as w:
        for ep in short_episodes:
            w.write(
                dataclasses.replace(ep, policy_id="legacy:expert_1M", final_frame_is_true=False)
            )
    stats = measure_store(store)
    returns = [ep.episode_return for ep in short_episodes]
    assert stats["episodes"] == 3
    assert stats["transitions"] == sum(ep.length for ep in short_episodes)
    assert stats["returns"]["mean"] == pytest.approx(np.mean(returns))
    assert stats["level_seeds"]["unique"] == len({ep.level_seed for ep in short_episodes})
    assert stats["compression_ratio"] > 1
    assert stats["policies"][0]["episodes"] == 3

    out = subprocess.run(
        [str(Path(sys.executable).parent / "offgen"), "card", "expert_1M", "-g", "coinrun",
         "--store", str(store), "-o", str(tmp_path / "card")],
        capture_output=True, text=True, env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "card" / "README.md").read_text()
    meta = _header(text)
    assert meta["task_categories"] == ["reinforcement-learning"]
    assert meta["size_categories"] == ["n<1K"]  # 864 transitions
    assert meta["configs"] == [
        {
            "config_name": "coinrun",
            "data_files": [{"split": "train", "path": "expert_1M/coinrun/**"}],
        }
    ]
    assert f"{stats['transitions']:,}" in text and "images/coinrun_returns.png" in text
    png = tmp_path / "card" / "images" / "coinrun_returns.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_published_cards_exist_and_match_registry(name: str) -> None:
    text = (REPO_ROOT / "dataset_cards" / f"{name}.md").read_text()
    meta = _header(text)
    assert meta["license"] and meta["task_categories"] == ["reinforcement-learning"]
    assert [c["config_name"] for c in meta["configs"]] == list(GAMES)  # type: ignore[union-attr]
    assert text == render_card(resolve_dataset(name)), "regenerate: python -m offgen.hub.card"
