"""Schemas of a store's small metadata files besides ``info.json``: ``policies.json`` and the zarr
metadata (``zarr.json`` of the group and of each array).

Each is parsed into typed values when the store is opened; anything else is a
:class:`~offgen.errors.CorruptStoreError` naming the file, never a ``JSONDecodeError`` or
``TypeError`` from wherever the value is first used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offgen.data._fields import Fields, corrupt, load_json
from offgen.data.format import ACTIONS, OBSERVATIONS, REWARDS
from offgen.data.schema import FRAME_SHAPE_HWC

__all__ = ["ZARR_METADATA", "ArrayMeta", "parse_array_meta", "parse_group_meta", "parse_policies"]

ZARR_METADATA = "zarr.json"

_ARRAYS: dict[str, tuple[str, tuple[int, ...]]] = {
    OBSERVATIONS: ("uint8", FRAME_SHAPE_HWC),
    ACTIONS: ("uint8", ()),
    REWARDS: ("float32", ()),
}


def parse_policies(data: bytes, source: str, num_referenced: int = 0) -> list[dict[str, Any]]:
    """The behaviour policies of ``policies.json``: objects with a unique string ``id``.

    Args:
        data: The file's bytes.
        source: The file, for messages.
        num_referenced: How many policies the episode table refers to (its largest ``policy``
            index plus one); the file must list at least that many.

    Raises:
        CorruptStoreError: If the file does not match this schema.
    """
    value = load_json(data, source)
    if not isinstance(value, list):
        corrupt(source, f"must be a JSON array of policy objects, got {type(value).__name__}")
    policies = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        entry = Fields(item, source, f"policy {i}")
        policy_id = entry.text("id")
        if policy_id in seen:
            corrupt(source, f"policy id {policy_id!r} is listed twice")
        seen.add(policy_id)
        policies.append(entry.raw)
    if len(policies) < num_referenced:
        corrupt(
            source,
            f"lists {len(policies)} policies but the episode table refers to {num_referenced}",
        )
    return policies


@dataclass(frozen=True)
class ArrayMeta:
    """What a reader relies on in an array's ``zarr.json``: its shape and element type."""

    shape: tuple[int, ...]
    data_type: str


def parse_group_meta(data: bytes, source: str) -> None:
    """Check the store's root ``zarr.json`` (a zarr v3 group).

    Raises:
        CorruptStoreError: If it is not one.
    """
    meta = Fields(load_json(data, source), source)
    meta.integer("zarr_format", minimum=3)
    meta.text("node_type", choices=("group",))


def parse_array_meta(data: bytes, source: str, name: str) -> ArrayMeta:
    """Check the ``zarr.json`` of array ``name`` (observations, actions or rewards).

    Raises:
        CorruptStoreError: If it is not a zarr v3 array of the expected type and item shape.
    """
    meta = Fields(load_json(data, source), source)
    meta.integer("zarr_format", minimum=3)
    meta.text("node_type", choices=("array",))
    dtype, item_shape = _ARRAYS[name]
    meta.text("data_type", choices=(dtype,))
    shape = meta.array("shape")
    if (
        not all(type(n) is int and n >= 0 for n in shape)
        or tuple(shape[1:]) != item_shape
        or not shape
    ):
        expected = "".join(f", {n}" for n in item_shape)
        corrupt(source, f"shape {shape} is not (n{expected})")
    meta.obj("chunk_grid")
    meta.array("codecs")
    return ArrayMeta(tuple(shape), dtype)
