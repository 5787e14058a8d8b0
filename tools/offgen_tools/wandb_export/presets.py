"""Metric downloads into folder layouts (offgen's runs, and the seed's presets).

Runs are selected with server-side filters (algorithm, env, seed, level from the run config,
where the layout reads them; tags; run state; hard-constraint mode; forbidden tags that really
exclude), ``include_runs`` forces named runs in, histories are downloaded concurrently, and
every metric of every run becomes one JSON file. A run whose config lacks a key the layout
needs is reported and skipped; a summary says what was written, skipped and why, and when no
run matched, which filter removed them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offgen_tools.errors import OptionError
from offgen_tools.runs.engine import RunQuery
from offgen_tools.runs.filters import Filters, and_filters
from offgen_tools.runs.funnel import FunnelStep, funnel
from offgen_tools.runs.model import RunInfo, Series
from offgen_tools.wandb_export.layouts import SELECTIONS, Layout

_STATE_PREFERENCE = {"finished": 0, "running": 1, "crashed": 2}


@dataclass(frozen=True)
class MetricSpec:
    """A metric to download and the stem of its file.

    Attributes:
        name: WandB history key (``reward/reward``).
        stem: File stem (``reward``).
    """

    name: str
    stem: str

    @classmethod
    def parse(cls, text: str) -> MetricSpec:
        """Parse ``key=stem`` or ``key`` (stem: the part after the last ``/``)."""
        name, sep, stem = text.partition("=")
        if not name:
            raise OptionError(f"--metrics: empty metric name in {text!r}; use KEY or KEY=FILE_STEM")
        return cls(name, stem if sep and stem else name.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class DownloadOptions:
    """Every flag of a download (defaults come from the layout).

    Attributes:
        project: ``entity/project``.
        output: Base output folder.
        levels: Levels to download (empty: any).
        seeds: Seeds to download (empty: any).
        envs: Environments (empty: any).
        algos: Algorithms (empty: any).
        metrics: Metrics and file stems.
        wandb_tags: Runs must carry one of these tags (none: no tag filter).
        states: Allowed run states.
        forbidden_tags: Runs carrying these are excluded unless the tag is in ``wandb_tags``.
        include_runs: Run names or ids forced in regardless of filters.
        hard_constraint: Hard-constraint mode (runs with the hard-constraint config key set,
            files suffixed ``_hard``).
        hard_constraint_key: Config key of the hard-constraint flag.
        overwrite: Rewrite existing files.
        samples: None for the complete history, else the number of sampled rows.
        legacy_lists: Write bare lists of floats with NaNs dropped (the original format).
        default_tag: ``{tag}`` of runs without a requested tag.
        tags_field: Where tags are read: ``tags`` (the run's tags) or ``config.<key>``.
    """

    project: str
    output: Path
    levels: tuple[int, ...]
    seeds: tuple[int, ...]
    envs: tuple[str, ...]
    algos: tuple[str, ...]
    metrics: tuple[MetricSpec, ...]
    wandb_tags: tuple[str, ...] = ()
    states: tuple[str, ...] = ("finished", "crashed", "running")
    forbidden_tags: tuple[str, ...] = ("TEST",)
    include_runs: tuple[str, ...] = ()
    hard_constraint: bool = False
    hard_constraint_key: str = "hard_constraint"
    overwrite: bool = False
    samples: int | None = None
    legacy_lists: bool = False
    default_tag: str = "main"
    tags_field: str = "tags"


@dataclass(frozen=True)
class SkippedRun:
    """A run that produced no files.

    Attributes:
        run_id: Run id.
        run_name: Display name.
        reason: Why.
    """

    run_id: str
    run_name: str
    reason: str


@dataclass(frozen=True)
class DownloadSummary:
    """What a download did.

    Attributes:
        runs_matched: Runs the filters selected.
        written: Files written.
        existing: Files left alone because they existed (no ``--overwrite``).
        skipped: Runs skipped (missing config key, duplicate target).
        failed: Runs whose history download failed.
        empty: ``run: metric`` pairs never logged by the run (no file written).
        unmatched_tags: Requested tags that no selected run carries.
        funnel: When no run matched: the project's runs left after each filter, in order.
    """

    runs_matched: int
    written: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    skipped: tuple[SkippedRun, ...] = ()
    failed: tuple[SkippedRun, ...] = ()
    empty: tuple[str, ...] = ()
    unmatched_tags: tuple[str, ...] = ()
    funnel: tuple[FunnelStep, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "runs_matched": self.runs_matched,
            "written": list(self.written),
            "existing": list(self.existing),
            "skipped": [vars(s) for s in self.skipped],
            "failed": [vars(s) for s in self.failed],
            "empty": list(self.empty),
            "unmatched_tags": list(self.unmatched_tags),
            "funnel": [vars(s) for s in self.funnel],
        }

    def render(self) -> str:
        """A human summary."""
        lines = [f"runs matched: {self.runs_matched}"]
        if self.funnel:
            lines.append("  which filter removed the project's runs:")
            lines += [f"    {step.render()}" for step in self.funnel]
        lines += [
            f"files written: {len(self.written)}",
            f"files already present (use --overwrite): {len(self.existing)}",
            f"runs skipped: {len(self.skipped)}",
        ]
        lines += [f"  {s.run_name} ({s.run_id}): {s.reason}" for s in self.skipped]
        lines.append(f"runs failed: {len(self.failed)}")
        lines += [f"  {s.run_name} ({s.run_id}): {s.reason}" for s in self.failed]
        if self.empty:
            lines.append(f"metrics never logged: {len(self.empty)}")
            lines += [f"  {e}" for e in self.empty]
        if self.unmatched_tags:
            lines.append(f"requested tags with no runs: {list(self.unmatched_tags)}")
        return "\n".join(lines)


def filter_steps(layout: Layout, opts: DownloadOptions) -> list[tuple[str, Filters]]:
    """The server-side (MongoDB-style) filters of a download, each with the flag that set it.

    A selection flag filters only when it has values and the layout reads its placeholder.

    Args:
        layout: The layout (its config keys name the fields filtered on).
        opts: The flags.

    Returns:
        ``(flag, filter)`` pairs, in the order they narrow the selection.
    """
    keys = layout.config_keys
    steps: list[tuple[str, Filters]] = [("--states", {"state": {"$in": list(opts.states)}})]
    for flag, placeholder in SELECTIONS:
        values = list(getattr(opts, flag))
        if values and placeholder in keys:
            steps.append((f"--{flag}", {f"config.{keys[placeholder]}": {"$in": values}}))
    if opts.wandb_tags:
        steps.append(("--wandb-tags", {opts.tags_field: {"$in": list(opts.wandb_tags)}}))
    forbidden = [t for t in opts.forbidden_tags if t not in opts.wandb_tags]
    if forbidden:
        steps.append(("--forbidden-tags", {opts.tags_field: {"$nin": forbidden}}))
    if layout.hard_constraint:
        hard_key = f"config.{opts.hard_constraint_key}"
        hard: Filters = {hard_key: True} if opts.hard_constraint else {hard_key: {"$ne": True}}
        steps.append(("--hard-constraint", hard))
    return steps


def build_filters(layout: Layout, opts: DownloadOptions) -> dict[str, Any]:
    """The server-side (MongoDB-style) filter of a download: every step, or a forced run.

    Args:
        layout: The layout (its config keys name the fields filtered on).
        opts: The flags.

    Returns:
        The filter dictionary.
    """
    selected = and_filters(*(f for _, f in filter_steps(layout, opts)))
    if not opts.include_runs:
        return selected
    forced = list(opts.include_runs)
    return {"$or": [selected, {"display_name": {"$in": forced}}, {"name": {"$in": forced}}]}


def format_value(value: Any) -> str:
    """A config value as a path component (``1.0`` -> ``1``, ``/`` replaced by ``_``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("/", "_").replace(os.sep, "_")


def _run_tags(run: RunInfo, tags_field: str) -> list[str]:
    if tags_field == "tags":
        return list(run.tags)
    key = tags_field.removeprefix("config.")
    try:
        value = run.config_value(key)
    except KeyError:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def target_paths(layout: Layout, opts: DownloadOptions, run: RunInfo) -> dict[str, Path]:
    """Output file of each metric of a run.

    Args:
        layout: The layout.
        opts: The flags.
        run: The run.

    Returns:
        Metric name to path.

    Raises:
        KeyError: With the missing config key when the run lacks one the layout needs.
    """
    fields: dict[str, str] = {}
    for placeholder in layout.placeholders:
        key = layout.config_keys[placeholder]
        try:
            fields[placeholder] = format_value(run.config_value(key))
        except KeyError:
            raise KeyError(key) from None
    tags = _run_tags(run, opts.tags_field)
    fields["tag"] = next((t for t in opts.wandb_tags if t in tags), opts.default_tag)
    fields["suffix"] = "_hard" if opts.hard_constraint and layout.hard_constraint else ""
    return {m.name: opts.output / layout.path.format(**fields, metric=m.stem) for m in opts.metrics}


def series_document(
    series: Series, run: RunInfo, metric: str, samples: int | None
) -> dict[str, Any]:
    """The default file content: steps and values (NaN as null) plus provenance."""
    return {
        "metric": metric,
        "run_id": run.id,
        "run_name": run.name,
        "project": f"{run.entity}/{run.project}" if run.entity else run.project,
        "state": run.state,
        "sampled": series.sampled,
        "samples": samples,
        "steps": series.steps.tolist(),
        "values": [None if math.isnan(v) else v for v in series.values.tolist()],
    }


def legacy_list(series: Series) -> list[float]:
    """The original file content: a bare list of floats, NaNs dropped, steps lost."""
    return [v for v in series.values.tolist() if not math.isnan(v)]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


@dataclass
class _Plan:
    run: RunInfo
    paths: dict[str, Path]
    todo: list[str] = field(default_factory=list)


def download(
    layout: Layout, opts: DownloadOptions, query: RunQuery, *, progress: bool = False
) -> DownloadSummary:
    """Download metrics into a layout.

    Args:
        layout: The layout.
        opts: The flags.
        query: Run-query engine over the source (API or offline).
        progress: Show progress bars.

    Returns:
        The summary.
    """
    runs = query.select(build_filters(layout, opts))
    explained = () if runs else _explain_empty(layout, opts, query)
    skipped: list[SkippedRun] = []
    existing: list[str] = []
    plans: dict[Path, _Plan] = {}
    order = sorted(runs, key=lambda r: _STATE_PREFERENCE.get(r.state, 3))
    for run in order:
        try:
            paths = target_paths(layout, opts, run)
        except KeyError as exc:
            skipped.append(SkippedRun(run.id, run.name, f"config lacks key {exc.args[0]!r}"))
            continue
        first = next(iter(paths.values()))
        if first in plans:
            other = plans[first].run
            skipped.append(
                SkippedRun(
                    run.id, run.name, f"same target as run {other.name} ({other.id}, {other.state})"
                )
            )
            continue
        plan = _Plan(run, paths)
        for metric, path in paths.items():
            if path.exists() and not opts.overwrite:
                existing.append(str(path))
            else:
                plan.todo.append(metric)
        plans[first] = plan
    work = [p for p in plans.values() if p.todo]
    written: list[str] = []
    failed: list[SkippedRun] = []
    empty: list[str] = []
    by_id = {p.run.id: p for p in work}
    metrics = [m.name for m in opts.metrics]
    reports = query.fetch([p.run for p in work], metrics, opts.samples, progress=progress)
    for report in reports:
        plan = by_id[report.run.id]
        if report.history is None:
            failed.append(
                SkippedRun(report.run.id, report.run.name, report.error or "unknown error")
            )
            continue
        for metric in plan.todo:
            series = report.history.series[metric]
            if len(series) == 0:
                empty.append(f"{report.run.name} ({report.run.id}): {metric}")
                continue
            path = plan.paths[metric]
            data: Any = (
                legacy_list(series)
                if opts.legacy_lists
                else series_document(series, report.run, metric, opts.samples)
            )
            _write_json(path, data)
            written.append(str(path))
    carried = {t for r in runs for t in _run_tags(r, opts.tags_field)}
    unmatched = tuple(t for t in opts.wandb_tags if t not in carried)
    return DownloadSummary(
        runs_matched=len(runs),
        written=tuple(sorted(written)),
        existing=tuple(sorted(existing)),
        skipped=tuple(skipped),
        failed=tuple(failed),
        empty=tuple(empty),
        unmatched_tags=unmatched,
        funnel=explained,
    )


def _explain_empty(
    layout: Layout, opts: DownloadOptions, query: RunQuery
) -> tuple[FunnelStep, ...]:
    # Only on an empty selection: list the whole project once and filter it locally.
    every = query.select(None)
    project = FunnelStep(f"--project {opts.project}: every run", len(every), 0)
    return (project, *funnel(every, filter_steps(layout, opts)))


def options_from(layout: Layout, project: str, overrides: Mapping[str, Any]) -> DownloadOptions:
    """Build options from the layout's defaults and explicit values (None = default).

    Args:
        layout: The layout.
        project: ``entity/project``.
        overrides: Flag name to value; None means the layout default.

    Returns:
        The options.

    Raises:
        OptionError: A selection flag the layout cannot filter on, or an empty metric name.
    """
    for flag, placeholder in SELECTIONS:
        if overrides.get(flag) is not None and placeholder not in layout.config_keys:
            raise OptionError(
                f"layout {layout.name!r} reads no {placeholder!r} from the run config, so "
                f"--{flag} does not apply (its config keys: {dict(layout.config_keys)})"
            )

    def pick(name: str) -> Any:
        value = overrides.get(name)
        return layout.default(name) if value is None else value

    metrics: Sequence[str] = pick("metrics")
    return DownloadOptions(
        project=project,
        output=Path(pick("output")),
        levels=tuple(int(v) for v in pick("levels")),
        seeds=tuple(int(v) for v in pick("seeds")),
        envs=tuple(pick("envs")),
        algos=tuple(pick("algos")),
        metrics=tuple(MetricSpec.parse(m) for m in metrics),
        wandb_tags=tuple(pick("wandb_tags")),
        states=tuple(pick("states")),
        forbidden_tags=tuple(pick("forbidden_tags")),
        include_runs=tuple(overrides.get("include_runs") or ()),
        hard_constraint=bool(overrides.get("hard_constraint") or False),
        hard_constraint_key=str(pick("hard_constraint_key")),
        overwrite=bool(overrides.get("overwrite") or False),
        samples=overrides.get("samples"),
        legacy_lists=bool(overrides.get("legacy_lists") or False),
        default_tag=str(pick("default_tag")),
        tags_field=str(overrides.get("tags_field") or "tags"),
    )
