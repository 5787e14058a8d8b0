"""Offline baseline runs as sweep results: the adapter from ``evaluate_offline``'s files.

A run of ``python -m baselines.train_offline`` lives in ``<save_path>/<game>/<xpid>/``;
``python -m baselines.evaluate_offline`` (same flags) adds ``evaluate.json`` there. This module
reads, per run folder:

* ``evaluate.json``: its top-level ``final_<split>_ret`` / ``final_<split>_norm`` floats (the
  ``evaluate.csv`` columns, ``val`` standing for validation), ``algo`` and ``report.game``;
* ``metadata.json`` (written when the run starts): ``config``, the run's flags.

Runs whose flags differ only in :data:`NOT_SETTINGS` (the seed, where and how they ran) are runs
of one setting. :func:`combine_offline_runs` turns a folder of them into the :class:`Combined`
structure ``offgen-sweep best`` ranks (metric ``validation_norm`` ...), and :func:`offline_table`
summarises the best setting of each algorithm and game over seeds (IQM or mean with a bootstrap
confidence interval). Only these few keys are read: the report itself is offgen's to parse.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offgen_tools.errors import ResultError
from offgen_tools.sweeps.analysis import Statistic, bootstrap_band, rank_settings
from offgen_tools.sweeps.results import Combined, Duplicate

__all__ = [
    "SPLITS",
    "OfflineRun",
    "TableRow",
    "combine_offline_runs",
    "find_offline_runs",
    "offline_table",
    "read_offline_run",
    "table_markdown",
]

EVALUATION_NAME = "evaluate.json"
METADATA_NAME = "metadata.json"
SPLITS = ("train", "validation", "test")
_COLUMN = {"train": "train", "validation": "val", "test": "test"}

#: Flags that do not change what a run learns: runs differing only in these share a setting.
NOT_SETTINGS = frozenset(
    {
        "seed",
        "xpid",
        "save_path",
        "resume",
        "device",
        "torch_threads",
        "log_wandb",
        "progress",
        "log_interval",
        "final_eval_episodes",
        "eval_num_envs",
        "data_strategy",
        "data",
        "game",
    }
)


@dataclass(frozen=True)
class OfflineRun:
    """One evaluated offline run.

    Attributes:
        path: The run folder.
        algo: ``--algo``.
        game: The Procgen game.
        seed: ``--seed``.
        settings: The flags that define its setting (all but :data:`NOT_SETTINGS`).
        returns: Split to mean raw return of the final evaluation.
        normalised: Split to normalised mean return.
    """

    path: Path
    algo: str
    game: str
    seed: int
    settings: Mapping[str, Any]
    returns: Mapping[str, float]
    normalised: Mapping[str, float]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise ResultError(f"{path}: expected a JSON object")
    return data


def read_offline_run(run_dir: str | Path) -> OfflineRun:
    """Read one run folder (``evaluate.json`` and ``metadata.json``).

    Raises:
        ResultError: A missing or damaged file, or a missing key (naming the file and the fix).
    """
    run_dir = Path(run_dir)
    evaluation = _read_json(run_dir / EVALUATION_NAME)
    meta_path = run_dir / METADATA_NAME
    if not meta_path.is_file():
        raise ResultError(
            f"{meta_path} is missing: the run's flags are read from it; keep the whole run folder"
        )
    config = _read_json(meta_path).get("config")
    if not isinstance(config, dict):
        raise ResultError(f"{meta_path}: no 'config' object")
    try:
        game = str(evaluation["report"]["game"])
        returns = {s: float(evaluation[f"final_{_COLUMN[s]}_ret"]) for s in SPLITS}
        normalised = {s: float(evaluation[f"final_{_COLUMN[s]}_norm"]) for s in SPLITS}
        algo, seed = str(evaluation["algo"]), int(config["seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultError(
            f"{run_dir}: {EVALUATION_NAME} / {METADATA_NAME} lack {exc}; evaluate the run with "
            "`python -m baselines.evaluate_offline` and its training flags"
        ) from exc
    settings = {k: v for k, v in sorted(config.items()) if k not in NOT_SETTINGS}
    settings.update(algo=algo, env_name=game)
    return OfflineRun(run_dir, algo, game, seed, settings, returns, normalised)


def find_offline_runs(root: str | Path) -> list[Path]:
    """Run folders (holding ``evaluate.json``) under ``root``, recursively, sorted."""
    return sorted(p.parent for p in Path(root).rglob(EVALUATION_NAME))


def _run_data(run: OfflineRun) -> dict[str, Any]:
    # One-evaluation curves, so rank_settings' "last" criterion and plots read them as they are.
    data: dict[str, Any] = {f"{s}_norm": [run.normalised[s]] for s in SPLITS}
    data.update({f"{s}_return": [run.returns[s]] for s in SPLITS})
    data["run_dir"] = str(run.path)
    return data


def combine_offline_runs(root: str | Path) -> Combined:
    """Combine the evaluated offline runs under ``root`` into :class:`Combined`.

    Settings are numbered in the order of (algo, game, flags); runs of a setting in the order of
    their seeds. Two folders with the same setting and seed are reported as duplicates and the
    first (by path) kept; a setting with fewer seeds than the most has missing indices.

    Raises:
        ResultError: If no run folder holds ``evaluate.json``, or one cannot be read.
    """
    folders = find_offline_runs(root)
    if not folders:
        raise ResultError(
            f"no evaluated offline runs ({EVALUATION_NAME}) under {root}; run "
            "`python -m baselines.evaluate_offline` with each run's training flags"
        )
    groups: dict[str, dict[int, list[OfflineRun]]] = {}
    for folder in folders:
        run = read_offline_run(folder)
        key = json.dumps(run.settings, sort_keys=True, default=str)
        groups.setdefault(key, {}).setdefault(run.seed, []).append(run)
    num_settings = len(groups)
    experiment_data: dict[int, dict[str, Any]] = {}
    duplicates: list[Duplicate] = []
    for setting, key in enumerate(sorted(groups)):
        by_seed = groups[key]
        runs: list[dict[str, Any]] = []
        for number, seed in enumerate(sorted(by_seed)):
            if len(by_seed[seed]) > 1:
                paths = tuple(str(r.path) for r in by_seed[seed])
                duplicates.append(Duplicate(setting, seed, paths))
            index = setting + number * num_settings
            runs.append(
                {
                    **_run_data(by_seed[seed][0]),
                    "run_number": number,
                    "random_seed": seed,
                    "index": index,
                }
            )
        experiment_data[setting] = {"agent_params": json.loads(key), "runs": runs}
    most = max(len(e["runs"]) for e in experiment_data.values())
    missing = tuple(
        i
        for i in range(num_settings * most)
        if i // num_settings >= len(experiment_data[i % num_settings]["runs"])
    )
    return Combined(
        experiment={"source": "offline-runs", "root": str(root)},
        num_settings=num_settings,
        runs=most,
        experiment_data=experiment_data,
        missing_indices=missing,
        duplicates=tuple(duplicates),
    )


@dataclass(frozen=True)
class TableRow:
    """One algorithm and game of the results table.

    Attributes:
        algo: Algorithm.
        game: Game.
        setting: The setting chosen (best mean validation normalised return).
        seeds: Seeds summarised.
        center: Split to the statistic (IQM or mean) of the normalised return over seeds.
        low: Split to the lower end of its bootstrap confidence interval.
        high: Split to the upper end.
        agent_params: The setting's flags.
    """

    algo: str
    game: str
    setting: int
    seeds: int
    center: Mapping[str, float]
    low: Mapping[str, float]
    high: Mapping[str, float]
    agent_params: Mapping[str, Any]


def _subset(combined: Combined, settings: Sequence[int]) -> Combined:
    data = {s: combined.experiment_data[s] for s in settings}
    return Combined(combined.experiment, combined.num_settings, combined.runs, data, (), ())


def offline_table(
    combined: Combined,
    *,
    statistic: Statistic = "iqm",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[TableRow]:
    """Algorithm x game: the normalised returns of each pair's best setting over its seeds.

    The best setting of an (algo, game) is the one with the highest mean validation normalised
    return over its seeds (the split that selects models; test stays unseen). Its seeds are then
    summarised per split by ``statistic`` with a percentile-bootstrap interval over seeds
    (:func:`offgen_tools.sweeps.analysis.bootstrap_band`; the splits of a seed are resampled
    together).

    Args:
        combined: What :func:`combine_offline_runs` returns.
        statistic: ``iqm`` (``int(0.25 n)`` seeds cut from each end) or ``mean``.
        confidence: Interval coverage.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling (the table is reproducible).

    Returns:
        Rows sorted by algorithm, then game.
    """
    pairs: dict[tuple[str, str], list[int]] = {}
    for setting, entry in combined.experiment_data.items():
        params = entry["agent_params"]
        pairs.setdefault((str(params.get("algo")), str(params.get("env_name"))), []).append(setting)
    rows: list[TableRow] = []
    for (algo, game), settings in sorted(pairs.items()):
        best = rank_settings(_subset(combined, settings), "validation_norm", last_k=1)[0]
        runs = combined.experiment_data[best.setting]["runs"]
        values = np.array([[run[f"{s}_norm"][-1] for s in SPLITS] for run in runs], np.float64)
        center, low, high = bootstrap_band(
            values, statistic, confidence=confidence, n_boot=n_boot, seed=seed
        )
        rows.append(
            TableRow(
                algo,
                game,
                best.setting,
                len(runs),
                dict(zip(SPLITS, center.tolist(), strict=True)),
                dict(zip(SPLITS, low.tolist(), strict=True)),
                dict(zip(SPLITS, high.tolist(), strict=True)),
                best.agent_params,
            )
        )
    return rows


def _cell(row: TableRow, split: str) -> str:
    if math.isnan(row.center[split]):
        return "n/a"
    return f"{row.center[split]:.3f} [{row.low[split]:.3f}, {row.high[split]:.3f}]"


def table_markdown(rows: Sequence[TableRow], *, statistic: str, confidence: float) -> str:
    """The table as Markdown: one line per algorithm and game, ``value [low, high]`` per split."""
    head = (
        f"Normalised return, {statistic.upper() if statistic == 'iqm' else statistic} over seeds "
        f"[{confidence:.0%} bootstrap CI]; best setting per algorithm and game by validation.\n\n"
        "| algorithm | game | seeds | train | validation | test |\n"
        "|---|---|---:|---|---|---|\n"
    )
    body = "".join(
        f"| {r.algo} | {r.game} | {r.seeds} | " + " | ".join(_cell(r, s) for s in SPLITS) + " |\n"
        for r in rows
    )
    return head + body
