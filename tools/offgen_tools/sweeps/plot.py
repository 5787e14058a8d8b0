"""Plots: learning curves of the best settings (PNG and PDF) and the offline results table (PNG);
matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from offgen_tools._optional import require
from offgen_tools.sweeps.analysis import (
    Criterion,
    Statistic,
    best_setting,
    bootstrap_band,
    setting_curves,
)
from offgen_tools.sweeps.offline import SPLITS, TableRow
from offgen_tools.sweeps.results import Combined


def plot_best(
    experiments: Mapping[str, Combined],
    metric: str,
    out: str | Path,
    *,
    statistic: Statistic = "mean",
    criterion: Criterion = "last",
    last_k: int = 10,
    maximize: bool = True,
    confidence: float = 0.95,
    n_boot: int = 1000,
    title: str | None = None,
) -> list[Path]:
    """Plot the best setting of each experiment with a bootstrap confidence band.

    Args:
        experiments: Label to combined results (one line per label).
        metric: Run-data key to plot and to select the best setting by.
        out: Output path without suffix (``plots/pendulum``); ``.png`` and ``.pdf`` are written.
        statistic: ``mean`` or ``iqm`` over runs.
        criterion: Best-setting criterion (``last`` or ``auc``).
        last_k: Evaluations averaged by ``last``.
        maximize: Higher is better.
        confidence: Band coverage.
        n_boot: Bootstrap resamples.
        title: Plot title.

    Returns:
        The PNG and PDF paths.
    """
    require("matplotlib", "plots").use("Agg")
    plt = require("matplotlib.pyplot", "plots")

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    try:
        for label, combined in experiments.items():
            best = best_setting(
                combined, metric, criterion=criterion, last_k=last_k, maximize=maximize
            )
            x, curves = setting_curves(combined, best.setting, metric)
            center, low, high = bootstrap_band(
                curves, statistic, confidence=confidence, n_boot=n_boot
            )
            (line,) = ax.plot(
                x, center, label=f"{label} (setting {best.setting}, n={curves.shape[0]})"
            )
            ax.fill_between(x, low, high, alpha=0.25, color=line.get_color(), linewidth=0)
        ax.set_xlabel("timesteps")
        ax.set_ylabel(f"{metric} ({statistic}, {int(confidence * 100)}% bootstrap CI)")
        if title:
            ax.set_title(title)
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        stem = Path(out)
        if stem.suffix in (".png", ".pdf"):
            stem = stem.with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"]
        for path in paths:
            fig.savefig(path, dpi=150)
    finally:
        plt.close(fig)
    return paths


def plot_offline_table(
    rows: Sequence[TableRow],
    out: str | Path,
    *,
    statistic: str = "iqm",
    confidence: float = 0.95,
    title: str | None = None,
) -> Path:
    """Bar chart of an offline results table: one panel per split, games on the x axis, one bar
    per algorithm with its bootstrap interval as an error bar.

    Args:
        rows: :func:`offgen_tools.sweeps.offline.offline_table`'s rows.
        out: Output path; ``.png`` is added when missing.
        statistic: Name of the statistic, for the axis label.
        confidence: Interval coverage, for the axis label.
        title: Figure title.

    Returns:
        The PNG path.
    """
    require("matplotlib", "plots").use("Agg")
    plt = require("matplotlib.pyplot", "plots")
    games = sorted({r.game for r in rows})
    algos = sorted({r.algo for r in rows})
    by_pair = {(r.algo, r.game): r for r in rows}
    width = 0.8 / max(1, len(algos))
    fig, axes = plt.subplots(
        1, len(SPLITS), figsize=(max(6.0, 1.2 * len(games) * len(SPLITS)), 3.6), sharey=True
    )
    try:
        for ax, split in zip(axes, SPLITS, strict=True):
            for i, algo in enumerate(algos):
                xs, ys, errs = [], [], []
                for g, game in enumerate(games):
                    row = by_pair.get((algo, game))
                    if row is not None:
                        xs.append(g + (i - (len(algos) - 1) / 2) * width)
                        ys.append(row.center[split])
                        errs.append(
                            (
                                row.center[split] - row.low[split],
                                row.high[split] - row.center[split],
                            )
                        )
                yerr = [[e[0] for e in errs], [e[1] for e in errs]]
                ax.bar(xs, ys, width, yerr=yerr, capsize=2, label=algo)
            ax.set_title(split)
            ax.set_xticks(range(len(games)), games, rotation=45, ha="right")
            ax.grid(axis="y", alpha=0.3)
        axes[0].set_ylabel(f"normalised return ({statistic}, {confidence:.0%} CI)")
        axes[-1].legend(fontsize="small")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        path = Path(out)
        path = path if path.suffix == ".png" else path.parent / f"{path.name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    finally:
        plt.close(fig)
    return path
