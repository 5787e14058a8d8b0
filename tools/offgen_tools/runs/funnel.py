"""Why a selection matched no run: the runs left after each of its filters, in order."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offgen_tools.runs.filters import Filters, field_value, match_filters
from offgen_tools.runs.model import RunInfo

__all__ = ["FunnelStep", "describe_filter", "funnel"]

_MAX_VALUES = 8
_OPERATORS = {"$in": "in", "$nin": "not in", "$ne": "!=", "$eq": "=", "$gt": ">", "$gte": ">=",
              "$lt": "<", "$lte": "<="}  # fmt: skip


@dataclass(frozen=True)
class FunnelStep:
    """One filter of a selection and the runs it left.

    Attributes:
        label: The filter as the user set it (``--envs: config.env_name in [bigfish]``).
        left: Runs that pass this filter and every one before it.
        removed: Runs this filter removed.
        removed_values: The filtered field's distinct values among the removed runs
            (``(missing)`` for runs without it), at most eight.
    """

    label: str
    left: int
    removed: int
    removed_values: tuple[str, ...] = ()

    def render(self) -> str:
        """One line: the filter, the runs left and what the removed runs had instead."""
        line = f"{self.label}: {self.left} left"
        if self.removed and self.removed_values:
            line += f" (removed {self.removed}, which have: {', '.join(self.removed_values)})"
        elif self.removed:
            line += f" (removed {self.removed})"
        return line


def funnel(runs: Sequence[RunInfo], steps: Sequence[tuple[str, Filters]]) -> list[FunnelStep]:
    """Apply filters one after another and count the runs each leaves.

    Args:
        runs: The runs before any filter (every run of the project).
        steps: ``(flag, filter)`` pairs in the order they narrow the selection.

    Returns:
        One step per filter.
    """
    docs = [r.document() for r in runs]
    out: list[FunnelStep] = []
    for flag, filters in steps:
        kept = [d for d in docs if match_filters(d, filters)]
        removed = [d for d in docs if not match_filters(d, filters)]
        label = f"{flag}: {describe_filter(filters)}"
        out.append(FunnelStep(label, len(kept), len(removed), _values(removed, filters)))
        docs = kept
    return out


def describe_filter(filters: Filters) -> str:
    """A single-field filter as ``field in [a, b]``; anything else as JSON."""
    if len(filters) == 1:
        ((key, cond),) = filters.items()
        if not key.startswith("$"):
            if isinstance(cond, Mapping) and len(cond) == 1:
                ((op, arg),) = cond.items()
                if op in _OPERATORS:
                    return f"{key} {_OPERATORS[op]} {_show(arg)}"
            elif not isinstance(cond, Mapping):
                return f"{key} = {_show(cond)}"
    return json.dumps(filters, default=str)


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def _values(removed: Sequence[Mapping[str, Any]], filters: Filters) -> tuple[str, ...]:
    if len(filters) != 1:
        return ()
    key = next(iter(filters))
    if key.startswith("$"):
        return ()
    seen: set[str] = set()
    for doc in removed:
        value = field_value(doc, key, "(missing)")
        for item in value if isinstance(value, list | tuple) else [value]:
            seen.add(_show(item))
    shown = sorted(seen)
    return tuple(shown[:_MAX_VALUES]) + (
        (f"... {len(shown) - _MAX_VALUES} more",) if len(shown) > _MAX_VALUES else ()
    )
