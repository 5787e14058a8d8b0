"""Minari export and import with the real ``minari`` package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("minari")
pytest.importorskip("envpool")

from offgen.data.dataset import OffgenDataset
from offgen.data.minari_io import from_minari, to_minari


@pytest.fixture(autouse=True)
def _minari_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))


def test_export_recover_environment_and_import_back(
    small_ds: OffgenDataset, tmp_path: Path
) -> None:
    ds = small_ds.filter(policies=["p0"])
    exported = to_minari(ds, "offgen/coinrun/test-v0", author="offgen tests")
    assert exported.total_episodes == len(ds)
    assert exported.total_steps == ds.num_transitions
    # A fresh process loads it by id and recovers the environment from the recorded spec.
    script = (
        "import minari; d = minari.load_dataset('offgen/coinrun/test-v0'); "
        "env = d.recover_environment(); obs, info = env.reset(seed=0); "
        "print(env.spec.id, obs.shape, obs.dtype, 0 <= info['level_seed'] < 200)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["offgen/coinrun-v0", "(64,", "64,", "3)", "uint8", "True"]
    for episode, ours in zip(exported.iterate_episodes(), ds.iter_episodes(), strict=True):
        np.testing.assert_array_equal(episode.observations, ours.observations)
        np.testing.assert_array_equal(episode.actions, ours.actions)
    store = from_minari("offgen/coinrun/test-v0", tmp_path / "back")
    assert store.game == "coinrun" and len(store.table) == len(ds)
    for i, ours in enumerate(ds.iter_episodes()):
        back = store.episode(i)
        np.testing.assert_array_equal(back.observations, ours.observations)
        np.testing.assert_array_equal(back.actions, ours.actions)
        np.testing.assert_array_equal(back.rewards, ours.rewards)
        assert (back.level_seed, back.terminated, back.truncated) == (
            ours.level_seed,
            ours.terminated,
            ours.truncated,
        )
    assert set(store.table.policy_names()) == {"minari:offgen/coinrun/test-v0"}
