"""Converting offgen's own ``.npz`` output keeps what its sidecar records (policy ids, levels)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from offgen.collect import collect
from offgen.data import OffgenStore
from offgen.data.collect_sidecar import COLLECT_SIDECAR
from offgen.data.legacy import read_legacy_episode
from offgen.envs import EnvSpec
from offgen.policies import RandomPolicy

OFFGEN = str(Path(sys.executable).with_name("offgen"))


def _offgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OFFGEN, *args], capture_output=True, text=True, timeout=600, env=os.environ
    )


def test_convert_of_collected_npz_keeps_policy_ids_and_level_range(tmp_path: Path) -> None:
    npz = collect(
        tmp_path / "npz",
        EnvSpec.from_split("coinrun", "validation"),  # levels 200-249: not the default range
        RandomPolicy(),
        budget=400,
        num_envs=4,
        seed=5,
        fmt="npz",
        progress=False,
    ).output
    assert (npz / COLLECT_SIDECAR).is_file()
    done = _offgen("convert", str(npz), str(tmp_path / "store"), "--game", "coinrun")
    assert done.returncode == 0, done.stderr
    store = OffgenStore(tmp_path / "store")
    env = store.info.env
    assert (env.start_level, env.num_levels) == (200, 50)
    assert env.distribution_mode == "easy"
    assert set(store.table.policy_names()) == {"random"}
    assert [p["id"] for p in store.policies] == ["random"]
    assert store.final_frame_is_true  # the collector's files hold true final frames
    assert store.info.provenance["collection"]["budget"] == 400
    seeds = store.table.level_seeds
    assert ((seeds >= 200) & (seeds < 250)).all()
    first = min(npz.glob("*.npz"), key=lambda p: int(p.name.split("_")[1]))
    legacy = read_legacy_episode(first, "coinrun")
    np.testing.assert_array_equal(store.episode(0).observations, legacy.observations)
    shown = _offgen("info", str(tmp_path / "store"))
    assert shown.returncode == 0 and "random" in shown.stdout


def test_sidecar_of_another_game_is_refused(tmp_path: Path) -> None:
    npz = collect(
        tmp_path / "npz",
        EnvSpec("coinrun"),
        RandomPolicy(),
        budget=100,
        num_envs=2,
        seed=0,
        fmt="npz",
        progress=False,
    ).output
    record = json.loads((npz / COLLECT_SIDECAR).read_text())
    record["collection"]["env"]["game"] = "bigfish"
    (npz / COLLECT_SIDECAR).write_text(json.dumps(record))
    done = _offgen("convert", str(npz), str(tmp_path / "store"), "--game", "coinrun")
    assert done.returncode != 0
    assert "collected on 'bigfish', not 'coinrun'" in done.stderr
    assert "Traceback" not in done.stderr
