"""A small Parquet preview of a store, for the HF dataset viewer.

The viewer cannot read zarr, so a pushed repository also holds
``preview/<dataset>/<game>.parquet``: one row per sampled episode (its table columns and a
thumbnail of its first, middle and last frame as PNG bytes), declared in the card's YAML header.
The store stays the data; the preview only lets people look before they download. Image columns
follow the ``datasets`` convention (a ``{bytes, path}`` struct, the feature types in the schema's
``huggingface`` metadata), so the viewer shows the thumbnails as pictures.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from offgen._io import atomic_write_bytes
from offgen._optional import require

if TYPE_CHECKING:
    from offgen.data.store import OffgenStore

__all__ = ["PREVIEW_EPISODES", "preview_rows", "write_preview"]

PREVIEW_EPISODES = 256
"""Most episodes a preview holds, evenly spaced through the episode table."""

_VALUE_TYPES = {
    "episode": "int64", "episode_id": "int64", "length": "int32", "return": "float64",
    "level_seed": "int64", "terminated": "bool", "truncated": "bool", "policy": "string",
}  # fmt: skip


def preview_rows(count: int, limit: int = PREVIEW_EPISODES) -> npt.NDArray[np.int64]:
    """Table positions of the episodes a preview of ``count`` episodes shows."""
    if count <= limit:
        return np.arange(count, dtype=np.int64)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64))


def _thumbnail(store: OffgenStore, row: Any) -> bytes:
    """PNG of the episode's first, middle and last frame side by side (64 x 192)."""
    image = require("matplotlib.image", "hub")
    start, length = int(row["frame_offset"]), int(row["length"])
    frames = [store.read_frames(start + t, start + t + 1)[0] for t in (0, length // 2, length)]
    buffer = io.BytesIO()
    image.imsave(buffer, np.concatenate(frames, axis=1), format="png")
    return buffer.getvalue()


def write_preview(
    store: OffgenStore, out: str | os.PathLike[str], *, limit: int = PREVIEW_EPISODES
) -> Path:
    """Write the Parquet preview of ``store`` to ``out`` (atomically).

    Args:
        store: An opened store.
        out: The ``.parquet`` file to write.
        limit: Most episodes in the preview (evenly spaced through the table).

    Returns:
        ``out``.

    Raises:
        MissingDependencyError: If pyarrow or matplotlib (the ``hub`` extra) is missing.
    """
    pa = require("pyarrow", "hub")
    pq = require("pyarrow.parquet", "hub")
    rows = store.table.rows
    picks = preview_rows(len(rows), limit)
    names = store.table.policies
    policy = [names[int(p)] if int(p) < len(names) else "?" for p in rows["policy"][picks]]
    columns: dict[str, Any] = {
        "episode": picks,
        "episode_id": rows["episode_id"][picks],
        "length": rows["length"][picks],
        "return": rows["return"][picks],
        "level_seed": rows["level_seed"][picks],
        "terminated": rows["terminated"][picks],
        "truncated": rows["truncated"][picks],
        "policy": policy,
        "thumbnail": [{"bytes": _thumbnail(store, rows[i]), "path": None} for i in picks],
    }
    features = {k: {"dtype": v, "_type": "Value"} for k, v in _VALUE_TYPES.items()}
    features["thumbnail"] = {"_type": "Image"}
    thumb = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {k: pa.array(v, type=thumb if k == "thumbnail" else None) for k, v in columns.items()}
    )
    table = table.replace_schema_metadata(
        {"huggingface": json.dumps({"info": {"features": features}})}
    )
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue().to_pybytes())
    return path
