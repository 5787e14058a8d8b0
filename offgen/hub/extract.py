"""Safe, streaming extraction of the published ``.tar`` / ``.tar.xz`` archives.

Every member is checked before anything is written, and refused (:class:`UnsafeFileError` naming
the archive and the member) if it has an absolute path, a ``..`` component, is a symbolic or hard
link whose target is outside the destination, or is a device file or FIFO. Members are unpacked
into a staging folder inside the destination and moved into place only when the whole archive was
read without error, so a refused or truncated archive leaves nothing half-extracted, and nothing is
ever written outside the destination.

Free space is checked first against the archive's uncompressed size, which for ``.tar.xz`` is read
from the xz index at the end of the file (no decompression pass).
"""

from __future__ import annotations

import contextlib
import io
import lzma
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offgen.errors import CorruptStoreError, DiskSpaceError, UnsafeFileError
from offgen.hub._xzstream import XzReader

__all__ = [
    "DiskSpaceError",
    "Member",
    "check_free_space",
    "iter_safe_members",
    "min_free_bytes",
    "safe_extract",
    "uncompressed_size",
]

_MIN_FREE_ENV = "OFFGEN_MIN_FREE_BYTES"
_DEFAULT_MIN_FREE = 1 << 30  # keep 1 GiB for the rest of the system


def min_free_bytes() -> int:
    """Bytes that must stay free after an extraction (``OFFGEN_MIN_FREE_BYTES``, default 1 GiB)."""
    return int(os.environ.get(_MIN_FREE_ENV, _DEFAULT_MIN_FREE))


def _fmt(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def check_free_space(target: Path, needed: int, *, reserve: int | None = None, what: str) -> None:
    """Raise :class:`DiskSpaceError` unless ``needed`` bytes fit in ``target`` keeping ``reserve``.

    Args:
        target: A directory on the file system to check (created if missing).
        needed: Bytes about to be written.
        reserve: Bytes to leave free (default :func:`min_free_bytes`).
        what: What is being written, for the message.
    """
    reserve = min_free_bytes() if reserve is None else reserve
    target.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target).free
    if free - needed < reserve:
        raise DiskSpaceError(
            f"{target}: not enough disk space for {what}: needs {_fmt(needed)} plus "
            f"{_fmt(reserve)} kept free ({_MIN_FREE_ENV}), only {_fmt(free)} available. Free "
            f"{_fmt(needed + reserve - free)} or choose another --output."
        )


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint in xz index")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _xz_uncompressed_size(path: Path) -> int:
    """Sum of the uncompressed sizes recorded in the xz index of every stream of ``path``."""
    total = 0
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            # Skip stream padding (zero bytes in multiples of four).
            handle.seek(end - 4)
            if handle.read(4) == b"\0\0\0\0":
                end -= 4
                continue
            handle.seek(end - 12)
            footer = handle.read(12)
            if footer[10:12] != b"YZ":
                raise ValueError("no xz stream footer")
            index_size = (int.from_bytes(footer[4:8], "little") + 1) * 4
            handle.seek(end - 12 - index_size)
            index = handle.read(index_size)
            if not index or index[0] != 0:
                raise ValueError("bad xz index")
            count, pos = _read_varint(index, 1)
            blocks = 0
            for _ in range(count):
                unpadded, pos = _read_varint(index, pos)
                size, pos = _read_varint(index, pos)
                blocks += (unpadded + 3) // 4 * 4
                total += size
            end -= 12 + index_size + blocks + 12  # footer, index, blocks, stream header
    return total


def uncompressed_size(archive: str | os.PathLike[str]) -> int:
    """Bytes of the tar stream inside ``archive`` (an upper bound of the extracted size).

    Raises:
        CorruptStoreError: If a ``.xz`` file has no readable index (truncated or not xz).
    """
    path = Path(archive)
    if path.name.endswith(".xz"):
        try:
            return _xz_uncompressed_size(path)
        except (ValueError, OSError) as exc:
            raise CorruptStoreError(
                f"{path}: not a complete .xz file ({exc}); the download is truncated or damaged. "
                "Delete it and download again."
            ) from exc
    return path.stat().st_size


def _member_error(archive: Path, member: tarfile.TarInfo, why: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"{archive}: refusing member {member.name!r}: {why}. The archive is unsafe; nothing was "
        "extracted from it. Get it from a trusted mirror."
    )


def _check_member(archive: Path, member: tarfile.TarInfo) -> str | None:
    """The member's safe relative path, ``None`` for entries to skip, or raise if unsafe."""
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise _member_error(archive, member, "absolute path")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise _member_error(archive, member, "path with '..'")
    rel = posixpath.normpath(name.replace("\\", "/"))
    if rel in (".", ""):
        return None
    if member.ischr() or member.isblk():
        raise _member_error(archive, member, "device file")
    if member.issparse():
        raise _member_error(archive, member, "sparse file")
    if member.isfifo():
        raise _member_error(archive, member, "FIFO")
    if member.issym() or member.islnk():
        link = member.linkname.replace("\\", "/")
        if link.startswith("/"):
            raise _member_error(archive, member, f"link to absolute path {member.linkname!r}")
        base = posixpath.dirname(rel) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, link))
        if resolved == ".." or resolved.startswith("../"):
            raise _member_error(archive, member, f"link pointing outside ({member.linkname!r})")
        # Links inside are not needed by any published archive; refusing them keeps extraction
        # simple and immune to link-then-write tricks.
        raise _member_error(archive, member, "links are not allowed in dataset archives")
    if not (member.isfile() or member.isdir()):
        raise _member_error(archive, member, f"unsupported member type {member.type!r}")
    return rel


@contextlib.contextmanager
def _open_tar(archive: Path) -> Iterator[tuple[tarfile.TarFile, XzReader | io.BufferedReader]]:
    """``archive`` as a tar file read front to back (through :class:`XzReader` for ``.xz``).

    On exit without an error, checks that the tar data ends with its end-of-archive block (and
    the xz data with its end marker): ``tarfile`` ends its iteration silently at a truncated or
    invalid header after the first, which would look like a shorter archive.
    """
    with contextlib.ExitStack() as stack:
        try:
            raw = stack.enter_context(open(archive, "rb"))
            data: XzReader | io.BufferedReader = (
                XzReader(raw) if archive.name.endswith(".xz") else raw
            )
            tar = stack.enter_context(tarfile.open(fileobj=data, mode="r:"))
        except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as exc:
            raise CorruptStoreError(
                f"{archive}: not a readable tar archive ({exc}); delete it and download again."
            ) from exc
        yield tar, data
        data.seek(tar.offset)
        if data.read(tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE):
            raise CorruptStoreError(
                f"{archive}: the tar data ends at byte {tar.offset} without its end-of-archive "
                "block; the archive is truncated or damaged. Delete it and download again."
            )
        while data.read(1 << 20):  # the rest is padding; reaching the xz end marker proves it
            pass


class _MemberStream(io.RawIOBase):
    """One member's bytes, read from the tar data at its offset (``readinto`` fills a caller's
    buffer directly: no intermediate copy of a large member)."""

    def __init__(self, data: XzReader | io.BufferedReader, offset: int, size: int) -> None:
        super().__init__()
        self._data, self._offset, self._size, self._pos = data, offset, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self._size - self._pos)
        if count <= 0:
            return 0
        self._data.seek(self._offset + self._pos)
        got = self._data.readinto(view[:count])
        if got != count:
            raise EOFError("unexpected end of data in a member")
        self._pos += got
        return int(got)


@dataclass(frozen=True)
class Member:
    """One regular file streamed out of an archive (valid only inside the iteration step).

    ``stream.readinto(bytearray(size))`` reads the whole member with a single copy."""

    name: str
    size: int
    stream: io.RawIOBase


@contextlib.contextmanager
def _corrupt_on_error(archive: Path) -> Iterator[None]:
    try:
        yield
    except (tarfile.TarError, lzma.LZMAError, EOFError, zlib.error) as exc:
        raise CorruptStoreError(
            f"{archive}: archive is truncated or damaged ({type(exc).__name__}: {exc}). Delete it "
            "and download again."
        ) from exc


def iter_safe_members(
    archive: str | os.PathLike[str], *, select: Callable[[str], str | None] | None = None
) -> Generator[Member, None, None]:
    """Stream the regular files of ``archive`` in order, checking every member first.

    Args:
        archive: A ``.tar`` or ``.tar.xz`` file.
        select: Maps a member's safe relative path to the path to use, or ``None`` to skip it.

    Yields:
        Each selected regular file; read ``member.stream`` before advancing.

    Raises:
        UnsafeFileError: On an unsafe member (checked even if not selected).
        CorruptStoreError: If the archive is truncated or damaged.
    """
    path = Path(archive)
    with _corrupt_on_error(path), _open_tar(path) as (tar, data):
        for member in tar:
            rel = _check_member(path, member)
            if rel is None or not member.isfile():
                continue
            if select is not None:
                rel = select(rel)
                if rel is None:
                    continue
                rel = _check_member(path, tarfile.TarInfo(rel)) or ""
                if not rel:
                    continue
            yield Member(rel, member.size, _MemberStream(data, member.offset_data, member.size))


def safe_extract(
    archive: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    select: Callable[[str], str | None] | None = None,
    reserve: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Extract ``archive`` under ``target`` safely (see the module docstring).

    Args:
        archive: ``.tar`` or ``.tar.xz`` file.
        target: Destination folder; created if needed.
        select: Maps a member's relative path to where it goes under ``target`` (``None``: skip).
        reserve: Bytes to keep free (default :func:`min_free_bytes`).
        progress: Called with the bytes written for each member.

    Returns:
        The extracted files, in archive order.

    Raises:
        UnsafeFileError: If any member is unsafe (nothing is extracted).
        DiskSpaceError: If the extracted data would not fit.
        CorruptStoreError: If the archive is truncated or damaged (nothing is extracted).
    """
    path = Path(archive)
    dest = Path(target)
    check_free_space(dest, uncompressed_size(path), reserve=reserve, what=f"unpacking {path.name}")
    dest.mkdir(parents=True, exist_ok=True)
    # A staging folder of its own: several games of one bundle archive may be unpacked at once
    # into the same target (one worker per game), and none may remove another's files.
    staging = Path(tempfile.mkdtemp(prefix=f".extracting-{path.name}-", dir=dest))
    written: list[str] = []
    try:
        for member in iter_safe_members(path, select=select):
            out = staging / member.name
            out.parent.mkdir(parents=True, exist_ok=True)
            with _corrupt_on_error(path), open(out, "wb") as handle:
                shutil.copyfileobj(member.stream, handle, 1 << 20)
            written.append(member.name)
            if progress:
                progress(member.size)
        results = []
        for rel in written:
            final = dest / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, final)
            results.append(final)
        return results
    finally:
        shutil.rmtree(staging, ignore_errors=True)
