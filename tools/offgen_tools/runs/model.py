"""Data types shared by every run source: run metadata, metric series and histories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: Run states as the WandB server reports them.
RUN_STATES = ("running", "finished", "crashed", "failed", "killed", "preempted")


@dataclass(frozen=True)
class RunInfo:
    """Metadata of one run, independent of where it came from.

    Attributes:
        id: Run id (``qgc1zi7h``); WandB calls this ``name`` in filters.
        name: Display name.
        project: Project name.
        entity: Entity (user or team); empty for offline runs.
        group: Run group, or None.
        job_type: Job type, or None.
        tags: Run tags.
        state: One of :data:`RUN_STATES`.
        config: Run config (nested dicts for nested keys). Treat as read-only.
        summary: Run summary metrics. Treat as read-only.
        source: Where the run lives (``entity/project/id`` or the offline ``.wandb`` file).
        last_step: Largest history step known from metadata, or None (used as a cache key).
    """

    id: str
    name: str
    project: str
    entity: str = ""
    group: str | None = None
    job_type: str | None = None
    tags: tuple[str, ...] = ()
    state: str = "finished"
    config: Mapping[str, Any] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    last_step: int | None = None

    def document(self) -> dict[str, Any]:
        """The run as the document that WandB's MongoDB-style filters address.

        Field names follow the WandB server: ``name`` is the run id, ``display_name`` the
        human name, ``jobType`` the job type, ``config.<key>`` and ``summary_metrics.<key>``
        the config and summary values.

        Returns:
            A plain dictionary suitable for :func:`offgen_tools.runs.filters.match_filters`.
        """
        return {
            "name": self.id,
            "id": self.id,
            "display_name": self.name,
            "displayName": self.name,
            "project": self.project,
            "entity": self.entity,
            "group": self.group,
            "jobType": self.job_type,
            "job_type": self.job_type,
            "tags": list(self.tags),
            "state": self.state,
            "config": dict(self.config),
            "summary_metrics": dict(self.summary),
        }

    def config_value(self, key: str) -> Any:
        """Look up a config value by a dotted key (``optim.lr``).

        Args:
            key: Dotted config key.

        Returns:
            The value.

        Raises:
            KeyError: If the key is absent.
        """
        return _lookup(self.config, key)


def _lookup(mapping: Mapping[str, Any], key: str) -> Any:
    if key in mapping:
        return mapping[key]
    node: Any = mapping
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


@dataclass(frozen=True)
class Series:
    """One metric of one run: the steps at which it was logged and its values.

    Only rows that logged the metric are kept; a value logged as NaN stays NaN.

    Attributes:
        steps: ``_step`` of each row (int64).
        values: Metric values (float64), same length as ``steps``.
        sampled: True when the history was a server-side sample rather than complete.
    """

    steps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    sampled: bool = False

    def __post_init__(self) -> None:
        if self.steps.shape != self.values.shape or self.steps.ndim != 1:
            raise ValueError(
                f"steps {self.steps.shape} and values {self.values.shape} must be equal 1-D shapes"
            )

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[int, float]], *, sampled: bool = False) -> Series:
        """Build a series from ``(step, value)`` pairs, sorted by step.

        Args:
            pairs: ``(step, value)`` pairs in any order.
            sampled: Whether the rows are a sample of the full history.

        Returns:
            The series.
        """
        ordered = sorted(pairs, key=lambda p: p[0])
        steps = np.fromiter((p[0] for p in ordered), dtype=np.int64, count=len(ordered))
        values = np.fromiter((p[1] for p in ordered), dtype=np.float64, count=len(ordered))
        return cls(steps=steps, values=values, sampled=sampled)

    @classmethod
    def from_lists(
        cls, steps: Sequence[int], values: Sequence[float], *, sampled: bool = False
    ) -> Series:
        """Build a series from parallel lists, sorting by step only when needed.

        Args:
            steps: Steps.
            values: Values, same length.
            sampled: Whether the rows are a sample of the full history.

        Returns:
            The series.
        """
        s = np.asarray(steps, dtype=np.int64)
        v = np.asarray(values, dtype=np.float64)
        if s.size > 1 and bool(np.any(s[1:] < s[:-1])):
            order = np.argsort(s, kind="stable")
            s, v = s[order], v[order]
        return cls(steps=s, values=v, sampled=sampled)

    @classmethod
    def empty(cls, *, sampled: bool = False) -> Series:
        """An empty series."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float64), sampled)


@dataclass(frozen=True)
class History:
    """Histories of several metrics of one run, each on its own step axis.

    Attributes:
        run: The run.
        series: Metric name to series; metrics the run never logged map to empty series.
        sampled: True when any series was sampled.
    """

    run: RunInfo
    series: Mapping[str, Series]

    @property
    def sampled(self) -> bool:
        """Whether any series came from a sampled history."""
        return any(s.sampled for s in self.series.values())
