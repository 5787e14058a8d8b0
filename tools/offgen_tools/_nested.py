"""Writing into nested dictionaries by a key path (dotted config keys, nested sweep parameters)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["set_nested"]


def set_nested(target: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    """Set ``target[k0][k1]...[kn] = value``, creating (or replacing non-dict) levels on the way.

    Args:
        target: The outer dictionary, changed in place.
        keys: The key path, at least one key.
        value: The value stored at the last key.
    """
    node = target
    for part in keys[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[keys[-1]] = value
