"""Run source over local offline WandB runs (``wandb/offline-run-*/run-*.wandb``), no server needed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from offgen_tools.runs.datastore import RecordReader
from offgen_tools.runs.filters import Filters, match_filters
from offgen_tools.runs.model import RunInfo, Series

_pb: Any
try:  # The protobuf schema ships with the wandb package (extra "wandb").
    from wandb.proto import wandb_internal_pb2 as _pb
except ImportError:  # pragma: no cover - exercised only without the extra
    _pb = None


def _require_pb() -> Any:
    if _pb is None:  # pragma: no cover
        raise RuntimeError(
            "reading .wandb files needs the wandb package: pip install 'offgen[wandb]'"
        )
    return _pb


def find_run_files(paths: Iterable[str | Path]) -> list[Path]:
    """Find offline run files under the given paths.

    A path may be a ``.wandb`` file, an ``offline-run-*`` directory, a ``wandb`` directory or a
    directory containing ``wandb/``. The ``latest-run`` symlink (and any symlinked run
    directory) is ignored so no run is read twice.

    Args:
        paths: Files or directories.

    Returns:
        Sorted, de-duplicated ``.wandb`` files.

    Raises:
        FileNotFoundError: If a path does not exist.
    """
    found: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"offline run path {path} does not exist")
        if path.is_file():
            candidates = [path]
        else:
            candidates = []
            for base in (path, path / "wandb"):
                if not base.is_dir():
                    continue
                for run_dir in sorted(base.glob("*run-*")):
                    if run_dir.is_symlink() or not run_dir.is_dir():
                        continue
                    candidates.extend(sorted(run_dir.glob("run-*.wandb")))
                candidates.extend(sorted(base.glob("run-*.wandb")))
        for candidate in candidates:
            found.setdefault(candidate.resolve(), candidate)
    return sorted(found.values())


def _key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _set_nested(target: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    node = target
    for part in keys[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[keys[-1]] = value


def _is_history(data: bytes) -> bool:
    # Record: field 1 ``num`` (varint, tag 0x08) then the oneof; ``history`` is field 2 (tag 0x12).
    i = 0
    if data[:1] == b"\x08":
        i = 1
        while i < len(data) and data[i] & 0x80:
            i += 1
        i += 1
    return data[i : i + 1] == b"\x12"


class OfflineSource:
    """Runs stored as offline ``.wandb`` files.

    The same MongoDB-style filters as the public API are evaluated locally. Run state:
    an exit record with code 0 is ``finished``, another code ``failed``, a preemption record
    without exit ``preempted``, and no exit record ``crashed`` (a run still being written also
    has no exit record; offline files cannot tell it apart).

    Example:
        >>> source = OfflineSource(["experiments/wandb"])     # doctest: +SKIP
        >>> runs = list(source.runs({"config.algo": "PPO"}))  # doctest: +SKIP
    """

    cacheable = False

    def __init__(self, paths: Iterable[str | Path], *, project: str | None = None) -> None:
        """Create a source.

        Args:
            paths: Files or directories to search (see :func:`find_run_files`).
            project: Keep only runs of this project (``entity/project`` or ``project``;
                offline runs have no entity, so only the project name is compared).
        """
        self.paths = [Path(p) for p in paths]
        self.project = project.split("/")[-1] if project else None

    def runs(self, filters: Filters | None = None) -> Iterator[RunInfo]:
        """Yield the runs that match the filters.

        Args:
            filters: MongoDB-style filters (as for ``wandb.Api().runs``).

        Yields:
            Matching runs, in file order.
        """
        for path in find_run_files(self.paths):
            run = read_run_info(path)
            if self.project is not None and run.project != self.project:
                continue
            if match_filters(run.document(), filters):
                yield run

    def history(
        self, run: RunInfo, keys: Sequence[str], samples: int | None = None
    ) -> dict[str, Series]:
        """Read the complete history of some metrics of a run.

        Args:
            run: A run yielded by :meth:`runs`.
            keys: Metric names.
            samples: Ignored: offline files always give the complete history.

        Returns:
            Metric name to series (empty when never logged).
        """
        return read_history(Path(run.source), keys)


def read_run_info(path: str | Path) -> RunInfo:
    """Read the metadata of one offline run (run record, config, summary, exit state).

    Args:
        path: The ``.wandb`` file.

    Returns:
        The run.

    Raises:
        WandbFileError: On an unknown header version or corrupt file.
    """
    pb = _require_pb()
    record = pb.Record()
    run_id = ""
    name = ""
    project = ""
    entity = ""
    group: str | None = None
    job_type: str | None = None
    tags: tuple[str, ...] = ()
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    exit_code: int | None = None
    preempted = False
    last_step: int | None = None
    reader = RecordReader(path)
    for data in reader:
        if _is_history(data):
            continue
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run_id = r.run_id or run_id
            name = r.display_name or name
            project = r.project or project
            entity = r.entity or entity
            group = r.run_group or group
            job_type = r.job_type or job_type
            if r.tags:
                tags = tuple(r.tags)
            for item in r.config.update:
                _apply_config(config, item)
        elif kind == "config":
            for item in record.config.update:
                _apply_config(config, item)
            for item in record.config.remove:
                config.pop(_key(item), None)
        elif kind == "summary":
            for item in record.summary.update:
                keys = list(item.nested_key) or [item.key]
                if keys[0] == "_wandb":
                    continue
                value = _json(item.value_json)
                summary[".".join(keys)] = value
                if keys == ["_step"] and isinstance(value, int):
                    last_step = value if last_step is None else max(last_step, value)
            for item in record.summary.remove:
                summary.pop(_key(item), None)
        elif kind == "exit":
            exit_code = int(record.exit.exit_code)
        elif kind == "preempting":
            preempted = True
    if exit_code is not None:
        state = "finished" if exit_code == 0 else "failed"
    else:
        state = "preempted" if preempted else "crashed"
    path = Path(path)
    if not run_id:
        run_id = path.stem.removeprefix("run-")
    return RunInfo(
        id=run_id,
        name=name or run_id,
        project=project,
        entity=entity,
        group=group,
        job_type=job_type,
        tags=tags,
        state=state,
        config=config,
        summary=summary,
        source=str(path),
        last_step=last_step,
    )


def _apply_config(config: dict[str, Any], item: Any) -> None:
    keys = list(item.nested_key) or [item.key]
    if keys[0] == "_wandb":
        return
    _set_nested(config, keys, _json(item.value_json))


def read_history(path: str | Path, keys: Sequence[str]) -> dict[str, Series]:
    """Read the complete history of some metrics from an offline run file.

    Rows that did not log a metric are left out of that metric's series; values logged as
    NaN stay NaN; non-numeric values (media, strings) are left out. The step axis is the
    row's ``_step``.

    Args:
        path: The ``.wandb`` file.
        keys: Metric names (``reward/reward``; nested metrics as ``a.b``).

    Returns:
        Metric name to series.
    """
    pb = _require_pb()
    wanted = set(keys)
    steps: dict[str, list[int]] = {k: [] for k in keys}
    values: dict[str, list[float]] = {k: [] for k in keys}
    record = pb.Record()
    row_step = 0
    for data in RecordReader(path):
        if not _is_history(data):
            continue
        record.ParseFromString(data)
        history = record.history
        found: list[tuple[str, float]] = []
        step: int | None = None
        for item in history.item:
            key = item.key or ".".join(item.nested_key)
            if key == "_step":
                step = int(float(item.value_json))
            elif key in wanted:
                number = _number(item.value_json)
                if number is not None:
                    found.append((key, number))
        if step is None:
            step = int(history.step.num) if history.HasField("step") else row_step
        row_step = step + 1
        for key, number in found:
            steps[key].append(step)
            values[key].append(number)
    out: dict[str, Series] = {}
    for key in keys:
        out[key] = Series.from_lists(steps[key], values[key])
    return out


__all__ = ["OfflineSource", "find_run_files", "read_history", "read_run_info"]
