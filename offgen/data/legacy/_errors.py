"""The error every reader of the package raises for a damaged legacy file."""

from __future__ import annotations

from pathlib import Path

from offgen.errors import CorruptStoreError

__all__ = ["corrupt"]


def corrupt(path: Path, what: str) -> CorruptStoreError:
    """A :class:`~offgen.errors.CorruptStoreError` naming ``path``, saying ``what`` is wrong."""
    return CorruptStoreError(
        f"{path}: {what}; the file is truncated or corrupt. Re-extract it from the dataset archive."
    )
