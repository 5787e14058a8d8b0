"""Read the published ``.npy`` episodes (a pickled 0-d object array wrapping a dict) safely.

What ``np.save`` writes is read zero-copy by :func:`~offgen.data.legacy.npy_walk.read_pickled_npy`;
anything else goes through :class:`_RestrictedUnpickler`, which rebuilds only plain numpy arrays,
dtypes, dicts and lists, never imports or calls code, and says exactly what is wrong.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from offgen.data.legacy._errors import MALFORMED, corrupt
from offgen.data.legacy.npy_walk import read_pickled_npy, read_pickled_npy_bytes
from offgen.errors import SchemaError, UnsafeFileError

__all__ = ["load_npy"]


def _reconstruct(*args: Any) -> Any:
    from numpy._core.multiarray import _reconstruct as reconstruct

    return reconstruct(*args)


def _scalar(*args: Any) -> Any:
    from numpy._core.multiarray import scalar

    dtype = args[0] if args else None
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refusing a numpy object scalar")
    return scalar(*args)


# Everything a pickled dict of plain ndarrays needs, mapped to offgen's own references so that no
# module is imported by name from the file. numpy 1.x pickles say numpy.core, numpy 2 numpy._core.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds only plain numpy arrays, dtypes, dicts and lists; never imports or calls code."""

    def __init__(self, stream: io.BufferedIOBase, source: str) -> None:
        super().__init__(stream)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f"{self._source}: refusing to load '{module}.{name}' from a pickle; a legacy "
                "episode file may only hold plain arrays and dicts. The file is not a genuine "
                "episode (it could run code); delete it or get the dataset from its source."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeFileError(f"{self._source}: pickle uses persistent ids; refusing to load it")


def load_npy(path: Path, data: bytes | bytearray | memoryview | None = None) -> dict[str, Any]:
    """The dict pickled in a published ``.npy`` episode file (values not yet checked).

    Args:
        path: The file (named in errors).
        data: The file's bytes when already in memory (a member streamed out of an archive);
            ``path`` is then only a name.

    Raises:
        UnsafeFileError: If the pickle asks for anything but plain arrays, dtypes and dicts.
        CorruptStoreError: If the file is truncated or corrupt.
        SchemaError: If the file holds a plain array, or a pickle of something but a dict.
    """
    # Zero-copy views of the mapped file (or of ``data``), for what np.save writes.
    fast = read_pickled_npy(path) if data is None else read_pickled_npy_bytes(data)
    if fast is not None:
        return dict(fast)
    with open(path, "rb") if data is None else io.BytesIO(data) as handle:
        try:
            version = np.lib.format.read_magic(handle)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ValueError(f"unknown .npy format version {version}")
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            header = read_header(handle)
        except MALFORMED as exc:
            detail = " ".join(str(exc).split())
            raise corrupt(path, f"not a readable .npy file ({detail})") from exc
        shape, _fortran, dtype = header
        if not dtype.hasobject:
            raise SchemaError(
                f"{path}: holds a plain {dtype} array of shape {shape}, not the pickled dict of a "
                "legacy episode (keys observations, actions, rewards, dones)"
            )
        try:
            obj = _RestrictedUnpickler(handle, str(path)).load()
        except UnsafeFileError:
            raise
        except Exception as exc:  # pickle raises anything for hostile bytes; never executes them
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise corrupt(path, f"the pickled episode is unreadable ({detail})") from exc
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise SchemaError(f"{path}: expected a pickled dict of arrays, got {type(obj).__name__}")
    return obj
