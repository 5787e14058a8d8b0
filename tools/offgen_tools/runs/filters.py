"""Local evaluation of WandB's MongoDB-style run filters.

The WandB server evaluates filters such as ``{"$and": [{"config.env": "a"},
{"tags": {"$in": ["main"]}}]}``. Offline runs have no server, so this module evaluates the
same dictionary against :meth:`RunInfo.document`, which lets every run source select the
same runs from one filter.

Supported: ``$and``, ``$or``, ``$nor``, ``$not``, ``$eq``, ``$ne``, ``$gt``, ``$gte``,
``$lt``, ``$lte``, ``$in``, ``$nin``, ``$exists``, ``$regex``, ``$all``, ``$size``. As in
MongoDB, a comparison against an array field matches when any element matches, and
``$ne``/``$nin`` match only when no element does. Dotted field names descend into nested
dictionaries; a WandB config stored as ``{"value": x}`` is unwrapped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from offgen_tools.errors import FilterError

_MISSING = object()

Filters = Mapping[str, Any]


def and_filters(*parts: Filters | None) -> dict[str, Any]:
    """Combine filter dictionaries with ``$and``, dropping empty ones.

    Args:
        *parts: Filter dictionaries (None or empty ones are ignored).

    Returns:
        A single filter dictionary (``{}`` matches everything).
    """
    kept = [dict(p) for p in parts if p]
    if not kept:
        return {}
    if len(kept) == 1:
        return kept[0]
    return {"$and": kept}


def match_filters(document: Mapping[str, Any], filters: Filters | None) -> bool:
    """Whether a run document satisfies a MongoDB-style filter.

    Args:
        document: The run as a document (see :meth:`RunInfo.document`).
        filters: The filter dictionary; None or ``{}`` matches everything.

    Returns:
        True if the document matches.

    Raises:
        FilterError: On an unknown operator.
    """
    if not filters:
        return True
    return _match_doc(document, filters)


def _match_doc(document: Mapping[str, Any], filters: Filters) -> bool:
    for key, cond in filters.items():
        if key == "$and":
            if not all(_match_doc(document, sub) for sub in _as_list(key, cond)):
                return False
        elif key == "$or":
            if not any(_match_doc(document, sub) for sub in _as_list(key, cond)):
                return False
        elif key == "$nor":
            if any(_match_doc(document, sub) for sub in _as_list(key, cond)):
                return False
        elif key.startswith("$"):
            raise FilterError(f"unknown top-level filter operator {key!r}")
        elif not _match_field(_resolve(document, key), cond):
            return False
    return True


def _as_list(op: str, cond: Any) -> list[Mapping[str, Any]]:
    if not isinstance(cond, list | tuple):
        raise FilterError(f"{op} takes a list of filters, got {type(cond).__name__}")
    return list(cond)


def _resolve(document: Mapping[str, Any], key: str) -> Any:
    if key in document:
        return _unwrap(document[key])
    node: Any = document
    for part in key.split("."):
        node = _unwrap(node)
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return _MISSING
    return _unwrap(node)


def _unwrap(value: Any) -> Any:
    # The WandB server stores config entries as {"value": x, "desc": ...}.
    if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "desc"}:
        return value["value"]
    return value


def _is_operator_dict(cond: Any) -> bool:
    return isinstance(cond, Mapping) and bool(cond) and all(str(k).startswith("$") for k in cond)


def _match_field(value: Any, cond: Any) -> bool:
    if _is_operator_dict(cond):
        return all(_apply(op, value, arg) for op, arg in cond.items())
    return _equals(value, cond)


def _elements(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [*value, list(value)]
    return [value]


def _equals(value: Any, target: Any) -> bool:
    if value is _MISSING:
        return target is None
    return any(_scalar_eq(v, target) for v in _elements(value))


def _scalar_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    return bool(a == b)


def _compare(value: Any, arg: Any, op: str) -> bool:
    for v in _elements(value):
        if v is _MISSING or v is None or isinstance(v, bool | list):
            continue
        try:
            if op == "$gt" and v > arg:
                return True
            if op == "$gte" and v >= arg:
                return True
            if op == "$lt" and v < arg:
                return True
            if op == "$lte" and v <= arg:
                return True
        except TypeError:
            continue
    return False


def _apply(op: str, value: Any, arg: Any) -> bool:
    if op == "$eq":
        return _equals(value, arg)
    if op == "$ne":
        return not _equals(value, arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _compare(value, arg, op)
    if op == "$in":
        if not isinstance(arg, list | tuple):
            raise FilterError(f"$in takes a list, got {type(arg).__name__}")
        return any(_equals(value, a) for a in arg)
    if op == "$nin":
        if not isinstance(arg, list | tuple):
            raise FilterError(f"$nin takes a list, got {type(arg).__name__}")
        return not any(_equals(value, a) for a in arg)
    if op == "$exists":
        return (value is not _MISSING) == bool(arg)
    if op == "$regex":
        if value is _MISSING or value is None:
            return False
        pattern = re.compile(str(arg))
        return any(isinstance(v, str) and pattern.search(v) for v in _elements(value))
    if op == "$not":
        return not _match_field(value, arg)
    if op == "$all":
        if not isinstance(value, list | tuple):
            return False
        return all(any(_scalar_eq(v, a) for v in value) for a in arg)
    if op == "$size":
        return isinstance(value, list | tuple) and len(value) == int(arg)
    raise FilterError(f"unknown filter operator {op!r}")


def field_value(document: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value a filter on ``key`` compares, or ``default`` when the run lacks it.

    Args:
        document: The run as a document (see :meth:`RunInfo.document`).
        key: Dotted field name (``config.env_name``, ``tags``, ``state``).
        default: Returned when the field is absent.

    Returns:
        The value (a WandB config entry stored as ``{"value": x}`` is unwrapped).
    """
    value = _resolve(document, key)
    return default if value is _MISSING else value
