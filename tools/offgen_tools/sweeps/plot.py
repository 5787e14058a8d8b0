"""Learning-curve plots of the best settings (PNG and PDF, matplotlib's Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from offgen_tools._optional import require
from offgen_tools.sweeps.analysis import (
    Criterion,
    Statistic,
    best_setting,
    bootstrap_band,
    setting_curves,
)
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
