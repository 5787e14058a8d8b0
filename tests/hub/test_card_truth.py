"""Cards that never lie: every claim measured from the store or marked as the publisher's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from offgen.data import Episode, StoreWriter

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
