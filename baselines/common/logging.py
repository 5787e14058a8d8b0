"""Run logs: a CSV file always, WandB when asked (online or ``WANDB_MODE=offline``).

``progress.csv`` in the run folder has one row per logged update with fixed columns (a value not
measured at that update is empty). On resume, rows after the resumed update are dropped, so the
file lists every update at most once whatever point the previous process was killed at.

Run metadata (``metadata.json`` and WandB's config) holds the run's settings and package versions
only: never environment variables, paths of credential files or anything read from them (the
predecessor dumped ``os.environ``, WandB API key included).
"""

from __future__ import annotations

import csv
import io
import math
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from baselines.common.errors import ConfigError
from offgen._io import atomic_write_bytes, atomic_write_json
from offgen._optional import require

__all__ = ["CSV_NAME", "METADATA_NAME", "RunLogger", "run_metadata", "write_evaluation"]

CSV_NAME = "progress.csv"
METADATA_NAME = "metadata.json"
WANDB_PROJECT = "offgen-baselines"


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def run_metadata(algo: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Settings, versions and start time of a run (no environment variables, no secrets)."""
    return {
        "algo": algo,
        "config": dict(config),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "versions": {
            name: _package_version(name) for name in ("offgen", "torch", "envpool", "numpy")
        },
    }


def _keep_rows(path: Path, columns: Sequence[str], up_to_update: int) -> bytes:
    """The CSV text of ``path`` without rows after ``up_to_update`` (or incomplete rows)."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows[1:]:
        if len(row) == len(columns) and row[0].isdigit() and int(row[0]) <= up_to_update:
            writer.writerow(row)
    return out.getvalue().encode()


class RunLogger:
    """Write metrics to ``<run_dir>/progress.csv`` and optionally to WandB.

    Args:
        run_dir: The run folder.
        columns: CSV columns; the first must be ``update``.
        algo: Algorithm name (``config["algo"]`` in the metadata).
        config: The run's settings (plain values); logged as WandB config.
        run_name: Display name (the xpid).
        resume_update: Resume after this update (drop later CSV rows); ``None`` for a new run.
        use_wandb: Also log to WandB (files under ``<run_dir>/wandb``).
    """

    def __init__(
        self,
        run_dir: Path,
        columns: Sequence[str],
        *,
        algo: str,
        config: Mapping[str, Any],
        run_name: str,
        resume_update: int | None = None,
        use_wandb: bool = False,
    ) -> None:
        if not columns or columns[0] != "update":
            raise ValueError("the first CSV column must be 'update'")
        self.columns = list(columns)
        self.path = run_dir / CSV_NAME
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume_update is not None and self.path.exists():
            atomic_write_bytes(self.path, _keep_rows(self.path, self.columns, resume_update))
        else:
            atomic_write_bytes(self.path, (",".join(self.columns) + "\r\n").encode())
        atomic_write_json(run_dir / METADATA_NAME, run_metadata(algo, config))
        self._handle = self.path.open("a", newline="")
        self._csv = csv.writer(self._handle)
        self._wandb: Any = None
        if use_wandb:
            self._wandb = self._start_wandb(run_dir, algo, config, run_name)

    @staticmethod
    def _start_wandb(run_dir: Path, algo: str, config: Mapping[str, Any], name: str) -> Any:
        wandb = require("wandb", "wandb")
        run_id = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:120]
        try:
            return wandb.init(
                project=WANDB_PROJECT,
                name=name,
                id=run_id,
                resume="allow",
                dir=str(run_dir),
                config={"algo": algo, **dict(config)},
            )
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"--log_wandb: WandB could not start ({first}); run `wandb login`, or set "
                "WANDB_MODE=offline to keep the logs under the run folder and sync them later"
            ) from exc

    def log(self, metrics: Mapping[str, Any], *, step: int) -> None:
        """Append one CSV row (``metrics`` must include ``update``) and send it to WandB.

        Raises:
            ValueError: If ``metrics`` names a column the logger was not created with.
        """
        unknown = set(metrics) - set(self.columns)
        if unknown:
            raise ValueError(f"unknown log columns {sorted(unknown)}; declare them up front")
        self._csv.writerow([_cell(metrics.get(c)) for c in self.columns])
        self._handle.flush()
        if self._wandb is not None:
            numbers = {
                k: v
                for k, v in metrics.items()
                if isinstance(v, int | float) and math.isfinite(float(v))
            }
            self._wandb.log(numbers, step=step)

    def summary(self, metrics: Mapping[str, float]) -> None:
        """Final values (WandB run summary; the CSV keeps per-update rows only)."""
        if self._wandb is not None:
            self._wandb.summary.update(dict(metrics))

    def close(self) -> None:
        """Close the CSV file and finish the WandB run."""
        self._handle.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def write_evaluation(
    run_dir: Path, columns: Mapping[str, float], details: Mapping[str, Any]
) -> None:
    """Write ``evaluate.csv`` (one row of plain floats, e.g. the predecessor's
    ``final_test_ret,final_train_ret,final_val_ret``) and ``evaluate.json`` (with ``details``)."""
    names = list(columns)
    text = ",".join(names) + "\r\n" + ",".join(_cell(float(columns[n])) for n in names) + "\r\n"
    atomic_write_bytes(run_dir / "evaluate.csv", text.encode())
    atomic_write_json(run_dir / "evaluate.json", {**dict(columns), **dict(details)})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)
