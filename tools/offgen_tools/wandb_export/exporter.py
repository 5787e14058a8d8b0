"""Export run histories to NumPy (``.npz``) or CSV matrices: runs x steps, NaN-padded.

For each experiment and field the exporter writes, under ``<output_path>/<experiment>/``:

* ``numpy``: ``<field>.npz`` with ``values`` (runs x steps, float64, NaN where a run has no
  value), ``steps`` (``align: step``: the sorted union of steps, shape ``(steps,)``;
  ``align: index``: per-run steps, runs x positions, -1 padded), ``run_ids`` and
  ``run_names`` (unicode arrays; read with ``allow_pickle=False``);
* ``csv``: ``<field>.csv`` with a header ``run_id,run_name,<step>...`` (``align: step``) or
  ``run_id,run_name,0,1,...`` plus ``<field>_steps.csv`` (``align: index``).

A value missing in one row never cuts the series: each field is taken from every row that
logged it. Field names have ``/`` replaced by ``_`` in file names.
"""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from offgen_tools.runs.engine import FetchReport, RunQuery
from offgen_tools.wandb_export.yaml_config import Experiment


@dataclass(frozen=True)
class Matrix:
    """One field of one experiment as a matrix.

    Attributes:
        values: Runs x columns.
        steps: ``(columns,)`` for step alignment or runs x columns (-1 padded) for index alignment.
        run_ids: Run ids, one per row.
        run_names: Display names, one per row.
    """

    values: npt.NDArray[np.float64]
    steps: npt.NDArray[np.int64]
    run_ids: tuple[str, ...]
    run_names: tuple[str, ...]


@dataclass(frozen=True)
class ExportResult:
    """What exporting one experiment did.

    Attributes:
        experiment: Experiment name.
        runs: Runs exported.
        files: Files written.
        skipped: Why the experiment was skipped (output exists), or None.
        failed: ``run: error`` for runs whose download failed.
    """

    experiment: str
    runs: int
    files: tuple[str, ...] = ()
    skipped: str | None = None
    failed: tuple[str, ...] = ()


def build_matrix(reports: Sequence[FetchReport], field: str, align: str = "step") -> Matrix:
    """Stack one field of several runs.

    Args:
        reports: Successful downloads.
        field: Metric name.
        align: ``step`` (columns = union of steps) or ``index`` (columns = row positions).

    Returns:
        The matrix.
    """
    series = [r.history.series[field] for r in reports if r.history is not None]
    ids = tuple(r.run.id for r in reports if r.history is not None)
    names = tuple(r.run.name for r in reports if r.history is not None)
    if align == "step":
        steps = (
            np.unique(np.concatenate([s.steps for s in series]))
            if series
            else np.zeros(0, np.int64)
        )
        values = np.full((len(series), steps.size), np.nan)
        for row, s in enumerate(series):
            values[row, np.searchsorted(steps, s.steps)] = s.values
        return Matrix(values, steps.astype(np.int64), ids, names)
    width = max((len(s) for s in series), default=0)
    values = np.full((len(series), width), np.nan)
    step_matrix = np.full((len(series), width), -1, dtype=np.int64)
    for row, s in enumerate(series):
        values[row, : len(s)] = s.values
        step_matrix[row, : len(s)] = s.steps
    return Matrix(values, step_matrix, ids, names)


def _safe(field: str) -> str:
    return field.replace("/", "_").replace("\\", "_")


def write_matrix(matrix: Matrix, directory: Path, field: str, kind: str) -> list[Path]:
    """Write a matrix as ``.npz`` or CSV.

    Args:
        matrix: The matrix.
        directory: Experiment output folder.
        field: Metric name.
        kind: ``numpy`` or ``csv``.

    Returns:
        Files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = _safe(field)
    if kind == "numpy":
        path = directory / f"{stem}.npz"
        np.savez(
            path,
            values=matrix.values,
            steps=matrix.steps,
            run_ids=np.array(matrix.run_ids, dtype=str),
            run_names=np.array(matrix.run_names, dtype=str),
        )
        return [path]
    path = directory / f"{stem}.csv"
    files = [path]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        columns = (
            matrix.steps.tolist() if matrix.steps.ndim == 1 else list(range(matrix.values.shape[1]))
        )
        writer.writerow(["run_id", "run_name", *columns])
        for rid, name, row in zip(matrix.run_ids, matrix.run_names, matrix.values, strict=True):
            writer.writerow([rid, name, *("" if math.isnan(v) else repr(float(v)) for v in row)])
    if matrix.steps.ndim == 2:
        steps_path = directory / f"{stem}_steps.csv"
        with steps_path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["run_id", "run_name", *range(matrix.steps.shape[1])])
            for rid, name, row in zip(matrix.run_ids, matrix.run_names, matrix.steps, strict=True):
                writer.writerow([rid, name, *("" if v < 0 else int(v) for v in row)])
        files.append(steps_path)
    return files


def export_experiment(
    experiment: Experiment, query: RunQuery, *, overwrite: bool = False, progress: bool = False
) -> ExportResult:
    """Export one experiment.

    Args:
        experiment: The experiment.
        query: Run-query engine over the experiment's source.
        overwrite: Replace an existing output folder (else skip the experiment).
        progress: Show progress bars.

    Returns:
        What was done.
    """
    out = experiment.output_dir
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            return ExportResult(experiment.name, 0, skipped=f"{out} exists (use -o to overwrite)")
        shutil.rmtree(out)
    runs = query.select(experiment.filters())
    reports = query.fetch(
        runs, list(experiment.fields), experiment.history_samples, progress=progress
    )
    ok = [r for r in reports if r.history is not None]
    failed = tuple(f"{r.run.name} ({r.run.id}): {r.error}" for r in reports if r.history is None)
    files: list[Path] = []
    for field in experiment.fields:
        matrix = build_matrix(ok, field, experiment.align)
        files += write_matrix(matrix, out, field, experiment.output_data_type)
    return ExportResult(experiment.name, len(ok), tuple(str(f) for f in files), failed=failed)
