"""Small file-system helpers shared across offgen: atomic writes, hashing, JSON."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "fsync_dir",
    "hash_stream",
    "sha256_file",
]


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename) to disk; a no-op where the OS does not support it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temp(target: Path) -> tuple[int, str]:
    """Create a new, uniquely named temporary file next to ``target``.

    Unlike :func:`tempfile.mkstemp` (always 0600), the file gets mode 0666 less the umask, as
    ``open()`` gives, so a replaced file keeps the permissions any other file of the store has
    (0644 under umask 022): a store shared on a group file system stays readable by the group.
    """
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_BINARY", 0)
    )
    for _ in range(100):
        tmp = str(target.parent / f".{target.name}.tmp-{secrets.token_hex(6)}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{target.parent}: cannot create a temporary file for {target.name}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` that replaces ``path`` only if the block succeeds.

    Readers see either the old file or the complete new one, never a partial write; a process
    killed inside the block leaves at most a ``.tmp-*`` file behind, never a damaged ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def hash_stream(digest: Any, handle: IO[bytes], chunk_size: int = 1 << 20) -> int:
    """Feed everything ``handle`` still holds into ``digest`` (a ``hashlib`` object) in chunks.

    Returns:
        The number of bytes read.
    """
    size = 0
    while block := handle.read(chunk_size):
        digest.update(block)
        size += len(block)
    return size


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        hash_stream(digest, handle, chunk_size)
    return digest.hexdigest()
