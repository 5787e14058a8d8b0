"""``offgen.lock.json``: sizes, sha256 and hub commits recorded next to downloaded data.

No checksums are published for the predecessor's archives, so offgen records them itself: the first
complete, verified download of an archive writes its size and sha256 here; every later download
(and ``offgen verify``) must match, and a mismatch is a :class:`~offgen.errors.ChecksumError` naming
the file. Hub pulls record the resolved commit, so a later load of the same revision is
byte-identical.

The file is small JSON, updated read-modify-write under a :mod:`filelock` lock and replaced
atomically, so parallel workers and processes never lose each other's entries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from offgen._io import atomic_write_json, sha256_file
from offgen.data.format import now_iso
from offgen.errors import ChecksumError, CorruptStoreError

__all__ = [
    "LOCKFILE_NAME",
    "ArchiveEntry",
    "HubEntry",
    "Lockfile",
]

LOCKFILE_NAME = "offgen.lock.json"
_VERSION = 1


@dataclass(frozen=True)
class ArchiveEntry:
    """A verified archive: where it came from, its size and sha256."""

    size: int
    sha256: str
    url: str
    recorded: str


@dataclass(frozen=True)
class HubEntry:
    """A store pulled from a hub repository, pinned to the commit it resolved to."""

    repo: str
    revision: str
    commit: str
    endpoint: str
    recorded: str


class Lockfile:
    """The lockfile of one dataset folder (``<folder>/offgen.lock.json``).

    Args:
        folder: The dataset folder (one per dataset, holding one subfolder per game).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCKFILE_NAME
        self._lock = FileLock(str(self.folder / f".{LOCKFILE_NAME}.lock"))

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {"version": _VERSION, "archives": {}, "hub": {}}
        except ValueError as exc:
            raise CorruptStoreError(
                f"{self.path}: unreadable lockfile ({exc}). Delete it to re-record checksums on "
                "the next download (only if you trust the files now present)."
            ) from exc
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise CorruptStoreError(
                f"{self.path}: unknown lockfile version {data.get('version')!r}"
            )
        data.setdefault("archives", {})
        data.setdefault("hub", {})
        return data

    @contextmanager
    def _edit(self) -> Iterator[dict[str, Any]]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            data = self._read()
            yield data
            atomic_write_json(self.path, data)

    # ------------------------------------------------------------------ archives
    def archive(self, name: str) -> ArchiveEntry | None:
        """The recorded entry of archive ``name`` (e.g. ``"coinrun.tar.xz"``), if any."""
        entry = self._read()["archives"].get(name)
        return ArchiveEntry(**entry) if entry else None

    def archives(self) -> dict[str, ArchiveEntry]:
        """Every recorded archive, by name."""
        return {k: ArchiveEntry(**v) for k, v in self._read()["archives"].items()}

    def check(self, name: str, path: Path) -> tuple[int, str]:
        """Size and sha256 of ``path``, checked against the entry of ``name`` if there is one.

        Raises:
            ChecksumError: If the size or sha256 differs from the recorded entry.
        """
        size = path.stat().st_size
        known = self._read()["archives"].get(name)
        if known is not None and size != known["size"]:
            _compare(path, self.path, known, size, "")
        digest = sha256_file(path)
        if known is not None:
            _compare(path, self.path, known, size, digest)
        return size, digest

    def record(self, name: str, size: int, sha256: str, url: str) -> ArchiveEntry:
        """Record a verified archive (kept if an identical entry exists).

        Raises:
            ChecksumError: If a different entry was recorded meanwhile.
        """
        with self._edit() as data:
            known = data["archives"].get(name)
            if known is not None:
                _compare(Path(name), self.path, known, size, sha256)
                return ArchiveEntry(**known)
            entry = ArchiveEntry(size=size, sha256=sha256, url=url, recorded=now_iso())
            data["archives"][name] = asdict(entry)
            return entry

    def verify_file(self, name: str, path: Path, *, check_hash: bool = True) -> ArchiveEntry:
        """Check a file against its recorded entry.

        Args:
            name: Lockfile key (``"<scheme>/<file>"``).
            path: The file to check.
            check_hash: Also compare the sha256 (``False``: the size only, no read of the file).

        Raises:
            CorruptStoreError: If nothing is recorded for ``name``.
            ChecksumError: If the size or sha256 differs.
        """
        known = self._read()["archives"].get(name)
        if known is None:
            raise CorruptStoreError(
                f"{path}: no entry {name!r} in {self.path}, so this archive was never verified (a "
                "download that stopped before its game was unpacked and checked, or a file put "
                "there by hand). Delete it; offgen-download fetches and verifies it again when a "
                "game needs it."
            )
        size = path.stat().st_size
        if size != known["size"] or not check_hash:
            _compare(path, self.path, known, size, known["sha256"])
        else:
            _compare(path, self.path, known, size, sha256_file(path))
        return ArchiveEntry(**known)

    # ------------------------------------------------------------------ hub
    def hub(self, key: str) -> HubEntry | None:
        """The pinned hub pull recorded under ``key`` (``"<game>"``), if any."""
        entry = self._read()["hub"].get(key)
        return HubEntry(**entry) if entry else None

    def hub_keys(self) -> list[str]:
        """The keys of every pinned hub pull (``"<repo>:<dataset>/<game>"``)."""
        return sorted(self._read()["hub"])

    def record_hub(self, key: str, entry: HubEntry) -> None:
        """Record (or replace) the hub pull of ``key``."""
        with self._edit() as data:
            data["hub"][key] = asdict(entry)


def _compare(path: Path, lock: Path, known: dict[str, Any], size: int, digest: str) -> None:
    if size != known["size"]:
        raise ChecksumError(
            f"{path}: size {size} bytes, but {lock} recorded {known['size']} from the first "
            "verified download; the file is truncated or the mirror serves a different file. "
            "Delete it and download again (or delete its lockfile entry if the mirror changed it "
            "on purpose)."
        )
    if digest != known["sha256"]:
        raise ChecksumError(
            f"{path}: sha256 {digest[:16]}... differs from {known['sha256'][:16]}... recorded in "
            f"{lock}; the file is corrupt or was changed. Delete it and download again."
        )
