"""Scoring settings and summarising learning curves (mean, IQM, bootstrap confidence bands)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from offgen_tools.errors import ResultError
from offgen_tools.sweeps.results import Combined

Criterion = Literal["last", "auc"]
Statistic = Literal["mean", "iqm"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Ranked:
    """A setting's score.

    Attributes:
        setting: The setting number.
        score: Mean over runs of the per-run score.
        runs: Number of runs scored.
        agent_params: The setting's parameters.
    """

    setting: int
    score: float
    runs: int
    agent_params: Mapping[str, Any]


def run_curve(run_data: Mapping[str, Any], metric: str) -> tuple[FloatArray, FloatArray]:
    """One run's learning curve for a metric.

    A 2-D metric (evaluations x episodes, like ``eval_episode_rewards``) is averaged over
    episodes. The x axis is ``timesteps_at_eval`` when it has the right length, otherwise the
    evaluation number.

    Args:
        run_data: One run's data.
        metric: Key in the run data.

    Returns:
        ``(x, y)`` arrays.

    Raises:
        ResultError: If the metric is missing.
    """
    if metric not in run_data:
        raise ResultError(f"metric {metric!r} not in run data (keys: {sorted(run_data)})")
    raw = run_data[metric]
    try:
        y = np.asarray(raw, dtype=np.float64)
    except ValueError:  # ragged episodes per evaluation
        y = np.asarray([np.nanmean(np.asarray(v, dtype=np.float64)) for v in raw], dtype=np.float64)
    if y.ndim == 2:
        y = np.nanmean(y, axis=1) if y.shape[1] else np.full(y.shape[0], np.nan)
    if y.ndim != 1:
        raise ResultError(f"metric {metric!r} must be 1-D or 2-D, got shape {y.shape}")
    x_raw = run_data.get("timesteps_at_eval")
    x = (
        np.asarray(x_raw, dtype=np.float64)
        if x_raw is not None
        else np.arange(len(y), dtype=np.float64)
    )
    if x.shape != y.shape:
        x = np.arange(len(y), dtype=np.float64)
    return x, y


def score_run(x: FloatArray, y: FloatArray, criterion: Criterion, last_k: int) -> float:
    """Score one curve.

    Args:
        x: Evaluation steps.
        y: Values.
        criterion: ``last`` (mean of the last ``last_k`` evaluations) or ``auc`` (area under
            the curve over the step range, divided by the range, i.e. the time-average value;
            the plain mean when there is one point).
        last_k: Evaluations averaged by ``last``.

    Returns:
        The score (NaN for an empty curve).
    """
    if y.size == 0:
        return math.nan
    if criterion == "last":
        return float(np.nanmean(y[-max(1, last_k) :]))
    if criterion == "auc":
        ok = ~np.isnan(y)
        xs, ys = x[ok], y[ok]
        if xs.size < 2 or xs[-1] == xs[0]:
            return float(np.mean(ys)) if ys.size else math.nan
        return float(np.trapezoid(ys, xs) / (xs[-1] - xs[0]))
    raise ValueError(f"criterion must be 'last' or 'auc', got {criterion!r}")


def rank_settings(
    combined: Combined,
    metric: str,
    *,
    criterion: Criterion = "last",
    last_k: int = 10,
    maximize: bool = True,
) -> list[Ranked]:
    """Rank every setting by a named metric, best first.

    Args:
        combined: Combined results.
        metric: Run-data key (``eval_episode_rewards``).
        criterion: ``last`` or ``auc`` (see :func:`score_run`).
        last_k: Evaluations averaged by ``last``.
        maximize: Higher is better (False: lower is better).

    Returns:
        Settings sorted best first; settings with no finite score come last.
    """
    ranked: list[Ranked] = []
    for setting, entry in combined.experiment_data.items():
        scores = [score_run(*run_curve(run, metric), criterion, last_k) for run in entry["runs"]]
        finite = [s for s in scores if not math.isnan(s)]
        score = float(np.mean(finite)) if finite else math.nan
        ranked.append(Ranked(int(setting), score, len(finite), entry["agent_params"]))

    def key(r: Ranked) -> tuple[bool, float, int]:
        value = -r.score if maximize else r.score
        return (math.isnan(r.score), value if not math.isnan(value) else 0.0, r.setting)

    return sorted(ranked, key=key)


def best_setting(combined: Combined, metric: str, **kwargs: Any) -> Ranked:
    """The best setting (see :func:`rank_settings` for arguments)."""
    ranked = rank_settings(combined, metric, **kwargs)
    if not ranked:
        raise ResultError("no settings to rank")
    return ranked[0]


def iqm(values: FloatArray, axis: int = 0) -> FloatArray:
    """Interquartile mean: the mean of the middle 50% (``int(0.25 n)`` cut from each end).

    Args:
        values: Array.
        axis: Axis to reduce.

    Returns:
        The IQM along ``axis``.
    """
    sorted_vals = np.sort(values, axis=axis)
    n = sorted_vals.shape[axis]
    cut = int(0.25 * n)
    kept = np.take(sorted_vals, np.arange(cut, n - cut), axis=axis)
    return np.asarray(np.mean(kept, axis=axis), dtype=np.float64)


def _stat(values: FloatArray, statistic: Statistic, axis: int) -> FloatArray:
    if statistic == "mean":
        return np.asarray(np.mean(values, axis=axis), dtype=np.float64)
    if statistic == "iqm":
        return iqm(values, axis=axis)
    raise ValueError(f"statistic must be 'mean' or 'iqm', got {statistic!r}")


def bootstrap_band(
    curves: FloatArray,
    statistic: Statistic = "mean",
    *,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A statistic over runs with a percentile-bootstrap confidence band.

    Runs are resampled with replacement ``n_boot`` times.

    Args:
        curves: Runs x evaluations.
        statistic: ``mean`` or ``iqm``.
        confidence: Band coverage (0.95 gives the 2.5 and 97.5 percentiles).
        n_boot: Bootstrap resamples.
        seed: Random seed (the band is reproducible).

    Returns:
        ``(center, low, high)`` per evaluation.
    """
    if curves.ndim != 2 or curves.shape[0] == 0:
        raise ValueError(f"curves must be runs x evaluations, got shape {curves.shape}")
    center = _stat(curves, statistic, axis=0)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, curves.shape[0], size=(n_boot, curves.shape[0]))
    samples = np.stack([_stat(curves[p], statistic, axis=0) for p in picks])
    alpha = (1.0 - confidence) / 2.0
    low = np.quantile(samples, alpha, axis=0)
    high = np.quantile(samples, 1.0 - alpha, axis=0)
    return center, low, high


def setting_curves(combined: Combined, setting: int, metric: str) -> tuple[FloatArray, FloatArray]:
    """Stack a setting's runs into one array (cut to the shortest run).

    Args:
        combined: Combined results.
        setting: The setting.
        metric: Run-data key.

    Returns:
        ``(x, curves)``, curves being runs x evaluations.
    """
    entry = combined.experiment_data.get(setting)
    if entry is None or not entry["runs"]:
        raise ResultError(f"setting {setting} has no runs")
    pairs = [run_curve(run, metric) for run in entry["runs"]]
    length = min(len(y) for _, y in pairs)
    x = pairs[0][0][:length]
    return x, np.stack([y[:length] for _, y in pairs])
