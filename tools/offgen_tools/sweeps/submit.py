"""Submitting sweep commands through ``submitit``: one SLURM array job, optional packing.

``submitit`` transports the job function and its arguments with (cloud)pickle internally;
offgen's own results never use pickle.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from offgen_tools._optional import require
from offgen_tools.errors import SubmitError

EXECUTORS = ("slurm", "local", "debug")


@dataclass(frozen=True)
class Resources:
    """Resources of each array task.

    Attributes:
        partition: SLURM partition (None: the cluster default).
        time_min: Time limit per task, minutes.
        cpus_per_task: CPUs per task.
        mem_gb: Memory per task in GB (None: the cluster default).
        gpus_per_node: GPUs per task.
        array_parallelism: Most array tasks running at once.
        job_name: Job name.
        additional: Extra ``#SBATCH`` options (``{"account": "def-me"}``).
    """

    partition: str | None = None
    time_min: int = 60
    cpus_per_task: int = 1
    mem_gb: float | None = None
    gpus_per_node: int = 0
    array_parallelism: int = 256
    job_name: str = "offgen-sweep"
    additional: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "slurm") -> Resources:
        """Build from a config section (keys are the attribute names).

        Raises:
            SubmitError: Naming the unknown key.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise SubmitError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(config))

    def override(self, **changes: Any) -> Resources:
        """A copy with the non-None changes applied (command-line values win)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def executor_parameters(self) -> dict[str, Any]:
        """Parameters for ``submitit.AutoExecutor.update_parameters``."""
        params: dict[str, Any] = {
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus_per_task,
            "name": self.job_name,
            "slurm_array_parallelism": self.array_parallelism,
        }
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.additional:
            params["slurm_additional_parameters"] = dict(self.additional)
        return params


def pack(items: Sequence[Any], per_task: int) -> list[list[Any]]:
    """Split items into consecutive chunks of ``per_task`` (the last may be shorter).

    Args:
        items: Commands or indices.
        per_task: Items per array task (>= 1).

    Returns:
        The chunks.
    """
    if per_task < 1:
        raise SubmitError(f"per_task must be >= 1, got {per_task}")
    return [list(items[i : i + per_task]) for i in range(0, len(items), per_task)]


def run_chunk(commands: Sequence[str], cwd: str | None = None) -> list[dict[str, Any]]:
    """Run one array task's commands one after another (executed on the compute node).

    Args:
        commands: Command lines.
        cwd: Working directory.

    Returns:
        ``{"command", "returncode"}`` per command.

    Raises:
        RuntimeError: If any command failed (after running all of them), so the job fails.
    """
    outcomes = []
    for command in commands:
        proc = subprocess.run(command, shell=True, cwd=cwd, check=False)
        outcomes.append({"command": command, "returncode": proc.returncode})
    failed = [o for o in outcomes if o["returncode"] != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(outcomes)} commands failed: {failed}")
    return outcomes


@dataclass(frozen=True)
class Submission:
    """A submitted sweep.

    Attributes:
        jobs: The submitit jobs (one per array task).
        chunks: The commands of each job.
        folder: submitit's log folder.
    """

    jobs: Sequence[Any]
    chunks: Sequence[Sequence[str]]
    folder: Path

    @property
    def job_ids(self) -> list[str]:
        """Job ids (``<array>_<task>`` on SLURM)."""
        return [str(j.job_id) for j in self.jobs]

    def wait(self) -> list[list[dict[str, Any]]]:
        """Wait for every job and return their outcomes (raises if one failed)."""
        return [j.result() for j in self.jobs]


def make_executor(executor: str, folder: str | Path, resources: Resources) -> Any:
    """Create a submitit executor.

    Args:
        executor: ``slurm``, ``local`` (subprocesses on this machine) or ``debug``
            (in this process, at ``result()``).
        folder: Log folder.
        resources: Task resources.

    Returns:
        A configured ``submitit.AutoExecutor``.
    """
    if executor not in EXECUTORS:
        raise SubmitError(f"executor must be one of {list(EXECUTORS)}, got {executor!r}")
    ex = require("submitit", "slurm").AutoExecutor(folder=str(folder), cluster=executor)
    params = resources.executor_parameters()
    if executor != "slurm":
        params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
    ex.update_parameters(**params)
    return ex


def submit(
    commands: Sequence[str],
    *,
    executor: str = "slurm",
    folder: str | Path = "submitit_logs",
    resources: Resources | None = None,
    per_task: int = 1,
    cwd: str | Path | None = None,
) -> Submission:
    """Submit commands as ONE array job, ``per_task`` commands per array task.

    Args:
        commands: Command lines (one per index).
        executor: ``slurm``, ``local`` or ``debug``.
        folder: submitit log folder.
        resources: Task resources.
        per_task: Commands packed into each array task.
        cwd: Working directory of the commands (default: the current one).

    Returns:
        The submission.
    """
    if not commands:
        raise SubmitError("nothing to submit: no commands")
    chunks = pack(list(commands), per_task)
    ex = make_executor(executor, folder, resources or Resources())
    workdir = str(Path(cwd).resolve()) if cwd is not None else str(Path.cwd())
    jobs = ex.map_array(run_chunk, chunks, [workdir] * len(chunks))
    return Submission(jobs=jobs, chunks=chunks, folder=Path(folder))
