"""Run source over local offline WandB runs (``wandb/offline-run-*/run-*.wandb``), no server needed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from offgen_tools._nested import set_nested
from offgen_tools._optional import require
from offgen_tools.errors import OfflineRunsError
from offgen_tools.runs.datastore import RecordReader
from offgen_tools.runs.filters import Filters, match_filters
from offgen_tools.runs.model import RunInfo, Series


def _require_pb() -> Any:
    # The record schema ships with the wandb package (extra "wandb").
    return require("wandb.proto.wandb_internal_pb2", "wandb")


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
        OfflineRunsError: If a path does not exist or holds no run file.
    """
    found: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise OfflineRunsError(
                f"offline run folder {path} does not exist; pass the folder that holds "
                "wandb/offline-run-*/ (or the wandb/ folder, or a run-*.wandb file)"
            )
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
        if not candidates:
            raise OfflineRunsError(
                f"no offline runs in {path}: expected wandb/offline-run-*/run-*.wandb under it "
                "(runs written with WANDB_MODE=offline)"
            )
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


# A history record without parsing it: optional field 1 ``num`` (varint, tag 0x08), then the
# oneof, where ``history`` is field 2 (tag 0x12).
_HISTORY = re.compile(rb"(?:\x08[\x80-\xff]{0,9}[\x00-\x7f])?\x12", re.DOTALL)


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
    pending = pb.SummaryRecord()
    reader = RecordReader(path)
    is_history = _HISTORY.match
    for data in reader:
        if is_history(data) is not None:
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
            # Updates are merged in C and applied once (last value per key wins); removes
            # first flush what is pending so that ordering is kept.
            if record.summary.remove:
                _flush_summary(pending, summary)
                for item in record.summary.remove:
                    summary.pop(_key(item), None)
            pending.MergeFrom(record.summary)
        elif kind == "exit":
            exit_code = int(record.exit.exit_code)
        elif kind == "preempting":
            preempted = True
    _flush_summary(pending, summary)
    step_value = summary.get("_step")
    if isinstance(step_value, int) and not isinstance(step_value, bool):
        last_step = step_value
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


def _flush_summary(pending: Any, summary: dict[str, Any]) -> None:
    latest: dict[str, str] = {}
    for item in reversed(pending.update):
        nested = item.nested_key
        key = (nested[0] if len(nested) == 1 else ".".join(nested)) if nested else item.key
        if key not in latest:
            latest[key] = item.value_json
    for key, raw in reversed(latest.items()):
        if key.split(".", 1)[0] != "_wandb":
            summary[key] = _json(raw)
    pending.Clear()


def _apply_config(config: dict[str, Any], item: Any) -> None:
    keys = list(item.nested_key) or [item.key]
    if keys[0] == "_wandb":
        return
    set_nested(config, keys, _json(item.value_json))


def _needle(key: str) -> bytes | None:
    # A one-part ``nested_key`` (field 2) holding exactly ``key``, then the ``value_json`` tag
    # (field 16): the shape of every history item current WandB writes.
    raw = key.encode()
    return b"\x12" + bytes([len(raw)]) + raw + b"\x82\x01" if len(raw) < 128 else None


def _fast_value(data: bytes, needle: bytes) -> bytes | None:
    """The ``value_json`` bytes of the history item whose only nested key is the needle's.

    Returns None when no item has that key. Raises LookupError when the bytes around a match
    are not exactly ``item tag, item length, needle, value length, value`` with one-byte
    lengths (e.g. the key is the second part of a nested key); the caller then parses the
    record with the protobuf schema.
    """
    at = data.find(needle)
    if at < 0:
        return None
    end = at + len(needle)
    vlen = data[end] if end < len(data) else 0x80
    if vlen >= 0x80 or at < 2 or data[at - 2] != 0x0A or data[at - 1] != len(needle) + 1 + vlen:
        raise LookupError
    return data[end + 1 : end + 1 + vlen]


def read_history(path: str | Path, keys: Sequence[str]) -> dict[str, Series]:
    """Read the complete history of some metrics from an offline run file.

    Rows that did not log a metric are left out of that metric's series; values logged as
    NaN stay NaN; non-numeric values (media, strings) are left out. The step axis is the
    row's ``_step``.

    Records written the way current WandB writes them are decoded on a fast path that reads
    only the wanted items' bytes; any record that does not match that shape exactly (older
    writers, nested keys, long values) is parsed with the protobuf schema instead.

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
    step_needle = _needle("_step")
    needles = [(k, _needle(k)) for k in keys]
    fast_ok = step_needle is not None and all(n is not None and "." not in k for k, n in needles)
    record = pb.Record()
    row_step = 0
    fast = [(k, n, len(n)) for k, n in needles if n is not None]
    sn = step_needle or b""
    sn_len = len(sn)
    is_history = _HISTORY.match
    for data in RecordReader(path):
        if is_history(data) is None:
            continue
        if fast_ok:
            # Fast path (see _fast_value), inlined: this loop runs once per history row.
            at = data.find(sn)
            if at >= 2:
                end = at + sn_len
                vlen = data[end] if end < len(data) else 0x80
                if vlen < 0x80 and data[at - 2] == 0x0A and data[at - 1] == sn_len + 1 + vlen:
                    found = []
                    ok = True
                    for key, needle, n_len in fast:
                        at = data.find(needle)
                        if at < 0:
                            continue
                        end_k = at + n_len
                        klen = data[end_k] if end_k < len(data) else 0x80
                        if (
                            klen >= 0x80
                            or at < 2
                            or data[at - 2] != 0x0A
                            or data[at - 1] != n_len + 1 + klen
                        ):
                            ok = False
                            break
                        raw = data[end_k + 1 : end_k + 1 + klen]
                        try:
                            found.append((key, float(raw)))
                        except ValueError:
                            number = _number(raw.decode(errors="replace"))
                            if number is not None:
                                found.append((key, number))
                    if ok:
                        try:
                            step = int(float(data[end + 1 : end + 1 + vlen]))
                        except ValueError:
                            step = None
                        if step is not None:
                            row_step = step + 1
                            for key, number in found:
                                steps[key].append(step)
                                values[key].append(number)
                            continue
        record.ParseFromString(data)
        history = record.history
        found = []
        parsed_step: int | None = None
        for item in history.item:
            key = item.key or ".".join(item.nested_key)
            if key == "_step":
                parsed_step = int(float(item.value_json))
            elif key in wanted:
                number = _number(item.value_json)
                if number is not None:
                    found.append((key, number))
        if parsed_step is None:
            parsed_step = int(history.step.num) if history.HasField("step") else row_step
        row_step = parsed_step + 1
        for key, number in found:
            steps[key].append(parsed_step)
            values[key].append(number)
    out: dict[str, Series] = {}
    for key in keys:
        out[key] = Series.from_lists(steps[key], values[key])
    return out


__all__ = ["OfflineSource", "find_run_files", "read_history", "read_run_info"]
