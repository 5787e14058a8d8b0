"""Draw a PPO run's learning curve from its ``progress.csv`` (a small PNG).

Plots ``train/mean_episode_return`` (the mean return of the training episodes that finished since
the previous row) against ``env_steps``: each row as a faint point and an episode-weighted moving
average over ``--window`` rows as the curve. The seeded evaluations of the archives
(``eval/train_return``, ``eval/test_return``), when the file has them, are drawn as markers, and
``--reference`` draws a horizontal line, e.g. the random policy's mean return on the same levels.

Usage::

    python benchmarks/plot_learning_curve.py ppo/coinrun/<xpid>/progress.csv -o curve.png \\
        --reference 3.28 --reference-label "random policy" --title "PPO, coinrun"
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from offgen._optional import require

RETURN = "train/mean_episode_return"
EPISODES = "train/episodes"
EVALS = {"eval/train_return": "seeded eval, train levels", "eval/test_return": "seeded eval, test"}


def read_progress(path: Path) -> dict[str, np.ndarray]:
    """Columns of ``progress.csv`` as float arrays (an empty cell is NaN)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "env_steps" not in rows[0] or RETURN not in rows[0]:
        raise SystemExit(f"{path}: not a PPO progress.csv (needs env_steps and {RETURN} rows)")
    return {
        key: np.array([float(r[key]) if r[key] not in ("", None) else np.nan for r in rows])
        for key in rows[0]
    }


def smoothed(values: np.ndarray, weights: np.ndarray, window: int) -> np.ndarray:
    """Weighted moving average over the last ``window`` rows (rows without episodes skipped)."""
    ok = ~np.isnan(values) & (weights > 0)
    v, w = np.where(ok, values, 0.0), np.where(ok, weights, 0.0)
    kernel = np.ones(window)
    num = np.convolve(v * w, kernel)[: len(v)]
    den = np.convolve(w, kernel)[: len(v)]
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def plot(columns: dict[str, np.ndarray], args: argparse.Namespace) -> None:
    require("matplotlib", "plots").use("Agg")
    plt = require("matplotlib.pyplot", "plots")
    steps, ret = columns["env_steps"], columns[RETURN]
    weights = columns.get(EPISODES, np.ones_like(ret))
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    try:
        ax.plot(steps, ret, ".", color="tab:blue", alpha=0.5, label="per logged update")
        ax.plot(steps, smoothed(ret, weights, args.window), color="tab:blue",
                label=f"moving average ({args.window} rows, episode-weighted)")  # fmt: skip
        for (key, label), marker in zip(EVALS.items(), "os", strict=True):
            if key in columns and not np.isnan(columns[key]).all():
                ax.plot(steps, columns[key], marker, linestyle="none", label=label)
        if args.reference is not None:
            ax.axhline(args.reference, color="grey", linestyle="--", label=args.reference_label)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("episode return")
        if args.title:
            ax.set_title(args.title, fontsize="medium")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.output, dpi=args.dpi)
    finally:
        plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("progress", type=Path, help="a run's progress.csv")
    parser.add_argument("-o", "--output", type=Path, default=Path("learning_curve.png"))
    parser.add_argument("--reference", type=float, help="a horizontal reference return")
    parser.add_argument("--reference-label", default="random policy")
    parser.add_argument("--window", type=int, default=5, help="rows in the moving average")
    parser.add_argument("--title")
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error("--window must be at least 1")
    if not args.progress.is_file():
        parser.error(
            f"{args.progress}: no such file; pass <model_saving_dir>/<game>/<xpid>/progress.csv"
        )
    plot(read_progress(args.progress), args)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
