"""The errors every reader of the package raises for a damaged legacy file."""

from __future__ import annotations

import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from offgen.errors import CorruptStoreError, OffgenError

__all__ = ["MALFORMED", "corrupt", "reading"]

MALFORMED: tuple[type[Exception], ...] = (
    ValueError,  # numpy's header parser, np.frombuffer / reshape, UnicodeDecodeError
    SyntaxError,  # numpy's header parser (ast.literal_eval)
    tokenize.TokenError,  # numpy's header parser, on an unterminated header dict
    SystemError,  # numpy's header parser on some damaged headers ("error return without ...")
    EOFError,
    OverflowError,
    MemoryError,  # a header claiming an enormous array
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    NotImplementedError,  # zipfile: an unknown compression method
    RuntimeError,  # zipfile: a member flagged as encrypted
)
"""What the standard library and numpy raise for malformed bytes instead of an error of their own.
isal's inflate error (``igzip_lib.IsalError``) is added where isal is used."""


def corrupt(path: Path, what: str) -> CorruptStoreError:
    """A :class:`~offgen.errors.CorruptStoreError` naming ``path``, saying ``what`` is wrong."""
    return CorruptStoreError(
        f"{path}: {what}; the file is truncated or corrupt. Re-extract it from the dataset archive."
    )


@contextmanager
def reading(path: Path, what: str, also: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn every failure while reading ``path`` into a one-line offgen error naming it.

    Offgen's own errors pass through; a missing file, a read error or malformed bytes
    (:data:`MALFORMED` and ``also``) become a :class:`~offgen.errors.CorruptStoreError`.
    """
    failures: tuple[type[Exception], ...] = (*MALFORMED, *also, OSError)
    try:
        yield
    except OffgenError:
        raise
    except FileNotFoundError as exc:
        raise CorruptStoreError(f"{path}: file missing") from exc
    except failures as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise corrupt(path, f"{what} ({detail})") from exc
