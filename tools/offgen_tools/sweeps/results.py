"""Per-run result files (JSON or ``.npz``, never pickle) and combining a folder of them.

One result file per run, with the structure of the policy-params results dictionary::

    {
      "format": "offgen-sweep-result/1",
      "experiment": {"environment": {...}, "agent": {...}},   # the experiment config
      "index": 37, "setting": 1, "run": 1, "seed": 1, "num_settings": 36,
      "agent_params": {...},                                  # the setting's parameters
      "run_data": {                                           # per-run data
        "random_seed": 1, "timesteps_at_eval": [...], "eval_episode_rewards": [[...]],
        "train_time": 12.3, "eval_time": 1.2, ...
      }
    }

JSON files keep NaN and infinities as Python's ``json`` writes them (``NaN``). In ``.npz``
files numeric ``run_data`` entries are arrays named ``run_data/<key>`` and everything else
is one JSON document in the ``__meta__`` array; files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offgen_tools.errors import ResultError

RESULT_FORMAT = "offgen-sweep-result/1"
COMBINED_FORMAT = "offgen-sweep-combined/1"
_NAME = re.compile(r"^index_(\d+)\.(json|npz)$")


@dataclass(frozen=True)
class RunResult:
    """The result of one run (one index).

    Attributes:
        experiment: Experiment configuration (environment and agent configs).
        index: The sweep index.
        setting: ``index mod num_settings``.
        run: ``index div num_settings``.
        seed: The run's seed.
        num_settings: Number of settings in the grid.
        agent_params: The setting's parameters.
        run_data: Per-run data (curves, timings...); arrays may be lists or numpy arrays.
    """

    experiment: Mapping[str, Any]
    index: int
    setting: int
    run: int
    seed: int
    num_settings: int
    agent_params: Mapping[str, Any]
    run_data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary (numpy arrays become lists)."""
        return {
            "format": RESULT_FORMAT,
            "experiment": to_jsonable(self.experiment),
            "index": self.index,
            "setting": self.setting,
            "run": self.run,
            "seed": self.seed,
            "num_settings": self.num_settings,
            "agent_params": to_jsonable(self.agent_params),
            "run_data": to_jsonable(self.run_data),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "<result>") -> RunResult:
        """Build from the dictionary :meth:`to_json` produces.

        Raises:
            ResultError: On an unknown format or missing key (naming the file).
        """
        if data.get("format") != RESULT_FORMAT:
            raise ResultError(f"{where}: format {data.get('format')!r}, expected {RESULT_FORMAT!r}")
        try:
            return cls(
                experiment=data["experiment"],
                index=int(data["index"]),
                setting=int(data["setting"]),
                run=int(data["run"]),
                seed=int(data["seed"]),
                num_settings=int(data["num_settings"]),
                agent_params=data["agent_params"],
                run_data=data.get("run_data", {}),
            )
        except KeyError as exc:
            raise ResultError(f"{where}: missing key {exc.args[0]!r}") from exc


def to_jsonable(value: Any) -> Any:
    """Convert numpy arrays and scalars (recursively) to plain Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def result_path(directory: str | Path, index: int, fmt: str = "json") -> Path:
    """Where the result of an index is stored: ``<directory>/index_<index>.<fmt>``."""
    if fmt not in ("json", "npz"):
        raise ResultError(f"result format must be 'json' or 'npz', got {fmt!r}")
    return Path(directory) / f"index_{index}.{fmt}"


def write_result(result: RunResult, directory: str | Path, fmt: str = "json") -> Path:
    """Write a result file atomically.

    Args:
        result: The result.
        directory: Output folder (created).
        fmt: ``json`` or ``npz``.

    Returns:
        The file written.
    """
    path = result_path(directory, result.index, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if fmt == "json":
        tmp.write_text(json.dumps(result.to_json(), indent=1))
    else:
        doc = result.to_json()
        arrays: dict[str, np.ndarray] = {}
        meta_data: dict[str, Any] = {}
        for key, value in result.run_data.items():
            arr = _numeric_array(value)
            if arr is None:
                meta_data[key] = to_jsonable(value)
            else:
                arrays[f"run_data/{key}"] = arr
        doc["run_data"] = meta_data
        doc["array_keys"] = sorted(k.split("/", 1)[1] for k in arrays)
        with tmp.open("wb") as fh:
            arrays["__meta__"] = np.array(json.dumps(doc))
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)
    return path


def _numeric_array(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, list | tuple) and value:
        try:
            arr = np.asarray(value)
        except ValueError:  # ragged
            return None
    else:
        return None
    return arr if arr.dtype.kind in "biuf" else None


def read_result(path: str | Path) -> RunResult:
    """Read a JSON or ``.npz`` result file.

    Args:
        path: The file.

    Returns:
        The result (``.npz`` arrays come back as numpy arrays).
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            doc = json.loads(str(data["__meta__"]))
            run_data = dict(doc.get("run_data", {}))
            for key in doc.get("array_keys", []):
                run_data[key] = data[f"run_data/{key}"]
        doc["run_data"] = run_data
    else:
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ResultError(f"{path}: invalid JSON: {exc}") from exc
    return RunResult.from_json(doc, str(path))


@dataclass(frozen=True)
class Duplicate:
    """Two or more result files for the same setting and seed.

    Attributes:
        setting: The setting.
        seed: The seed.
        files: The files; the first one is kept.
    """

    setting: int
    seed: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class Combined:
    """A folder of results combined into one structure.

    Attributes:
        experiment: Experiment configuration (from the first result).
        num_settings: Number of settings.
        runs: Number of runs expected per setting.
        experiment_data: Setting number to ``{"agent_params": ..., "runs": [run_data, ...]}``
            with runs sorted by run number; each run's data has ``run_number``,
            ``random_seed`` and ``index``.
        missing_indices: Indices in ``0 .. num_settings * runs - 1`` without a result.
        duplicates: Results sharing a setting and seed.
    """

    experiment: Mapping[str, Any]
    num_settings: int
    runs: int
    experiment_data: Mapping[int, Mapping[str, Any]]
    missing_indices: tuple[int, ...]
    duplicates: tuple[Duplicate, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "format": COMBINED_FORMAT,
            "experiment": to_jsonable(self.experiment),
            "num_settings": self.num_settings,
            "runs": self.runs,
            "experiment_data": {
                str(k): to_jsonable(v) for k, v in sorted(self.experiment_data.items())
            },
            "missing_indices": list(self.missing_indices),
            "duplicates": [
                {"setting": d.setting, "seed": d.seed, "files": list(d.files)}
                for d in self.duplicates
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "<combined>") -> Combined:
        """Build from :meth:`to_json` output."""
        if data.get("format") != COMBINED_FORMAT:
            raise ResultError(
                f"{where}: format {data.get('format')!r}, expected {COMBINED_FORMAT!r}"
            )
        return cls(
            experiment=data["experiment"],
            num_settings=int(data["num_settings"]),
            runs=int(data["runs"]),
            experiment_data={int(k): v for k, v in data["experiment_data"].items()},
            missing_indices=tuple(data.get("missing_indices", [])),
            duplicates=tuple(
                Duplicate(int(d["setting"]), int(d["seed"]), tuple(d["files"]))
                for d in data.get("duplicates", [])
            ),
        )

    def save(self, path: str | Path) -> Path:
        """Write as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json()))
        return path


def load_combined(path: str | Path) -> Combined:
    """Read a combined file written by :meth:`Combined.save`."""
    return Combined.from_json(json.loads(Path(path).read_text()), str(path))


def find_result_files(directory: str | Path) -> list[Path]:
    """Result files (``index_<i>.json`` / ``.npz``) under a folder, recursively, sorted."""
    return sorted(
        (p for p in Path(directory).rglob("index_*") if _NAME.match(p.name)),
        key=lambda p: (int(_NAME.match(p.name).group(1)), str(p)),  # type: ignore[union-attr]
    )


def combine(directory: str | Path, *, runs: int | None = None) -> Combined:
    """Combine a folder of per-run results.

    Missing indices are listed (never silently skipped); results with the same setting and
    seed are reported as duplicates and only the first (lowest index, then path) is kept.
    A folder without result files but with evaluated offline baseline runs (``evaluate.json``)
    is read through :func:`offgen_tools.sweeps.offline.combine_offline_runs`.

    Args:
        directory: Folder with ``index_<i>.json``/``.npz`` files (searched recursively).
        runs: Runs expected per setting; default: the largest run number found plus one.

    Returns:
        The combined results.

    Raises:
        ResultError: If there are no results or they disagree on the number of settings.
    """
    files = find_result_files(directory)
    if not files:
        # Imported here: offline.py builds on this module.
        from offgen_tools.sweeps.offline import combine_offline_runs, find_offline_runs

        if find_offline_runs(directory):
            return combine_offline_runs(directory)
        raise ResultError(
            f"no result files (index_<i>.json or .npz) or offline runs (evaluate.json) under {directory}"
        )
    results = [(p, read_result(p)) for p in files]
    sizes = {r.num_settings for _, r in results}
    if len(sizes) != 1:
        raise ResultError(f"{directory}: results disagree on num_settings: {sorted(sizes)}")
    num_settings = sizes.pop()
    seen: dict[tuple[int, int], list[str]] = {}
    kept: dict[int, dict[str, Any]] = {}
    present: set[int] = set()
    for path, result in results:
        key = (result.setting, result.seed)
        seen.setdefault(key, []).append(str(path))
        if len(seen[key]) > 1:
            continue
        present.add(result.index)
        entry = kept.setdefault(
            result.setting, {"agent_params": to_jsonable(result.agent_params), "runs": []}
        )
        data = dict(result.run_data)
        data.update(run_number=result.run, random_seed=result.seed, index=result.index)
        entry["runs"].append(data)
    for entry in kept.values():
        entry["runs"].sort(key=lambda d: d["run_number"])
    total_runs = runs if runs is not None else max(r.run for _, r in results) + 1
    expected = range(num_settings * total_runs)
    missing = tuple(i for i in expected if i not in present)
    duplicates = tuple(
        Duplicate(setting, seed, tuple(paths))
        for (setting, seed), paths in sorted(seen.items())
        if len(paths) > 1
    )
    return Combined(
        experiment=results[0][1].experiment,
        num_settings=num_settings,
        runs=total_runs,
        experiment_data=kept,
        missing_indices=missing,
        duplicates=duplicates,
    )
