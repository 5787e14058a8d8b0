"""``benchmarks/plot_learning_curve.py`` draws a PNG from a real ``progress.csv`` layout."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "plot_learning_curve.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plot_learning_curve", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _progress(path: Path) -> Path:
    columns = ["update", "env_steps", "train/mean_episode_return", "train/episodes",
               "eval/train_return", "eval/test_return"]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerow([1, 2048, "", 0, "", ""])  # no episode finished in the first update
        writer.writerow([2, 4096, 2.0, 4, "", ""])
        writer.writerow([3, 6144, 6.0, 2, 5.0, 4.0])
    return path


def test_moving_average_weights_rows_by_their_episodes() -> None:
    smoothed = _script().smoothed(np.array([np.nan, 2.0, 6.0]), np.array([0.0, 4.0, 2.0]), window=2)
    assert np.isnan(smoothed[0])
    assert smoothed[1] == 2.0
    assert smoothed[2] == pytest.approx((2.0 * 4 + 6.0 * 2) / 6)


def test_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "img" / "curve.png"
    _script().main([str(_progress(tmp_path / "progress.csv")), "-o", str(out), "--reference", "3"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_refuses_a_csv_that_is_not_a_progress_file(tmp_path: Path) -> None:
    other = tmp_path / "evaluate.csv"
    other.write_text("final_test_ret,final_train_ret\n1.0,2.0\n")
    with pytest.raises(SystemExit, match=r"not a PPO progress\.csv"):
        _script().main([str(other), "-o", str(tmp_path / "x.png")])
