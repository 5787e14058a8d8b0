"""The collector's write-ahead journal: which environment produced each committed episode.

Resuming needs, for every committed episode, the environment it came from and its actions (to
replay that environment up to where it stopped). The collector appends a record here *before*
handing the episode to the store or writing its ``.npz`` file, and syncs the journal to disk
before every store commit, so the journal always covers every committed episode; records past
the committed count (episodes that were never committed) are dropped on resume.

Record: ``<H env><I length><q level_seed><d return><B flags>`` + ``length`` action bytes + CRC-32.
The file name starts with a dot, so store manifests ignore it; it is deleted when a collection
finishes.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from offgen.errors import CorruptStoreError

__all__ = ["JOURNAL_NAME", "Journal", "JournalRecord"]

JOURNAL_NAME = ".offgen-collect.journal"
_HEAD = struct.Struct("<HIqdB")
_CRC = struct.Struct("<I")
_TERMINATED, _TRUNCATED, _CUT = 1, 2, 4


@dataclass(frozen=True)
class JournalRecord:
    """One committed (or about to be committed) episode."""

    env: int
    level_seed: int
    episode_return: float
    terminated: bool
    truncated: bool
    cut: bool
    actions: npt.NDArray[np.uint8]

    def encode(self) -> bytes:
        """Bytes of the record including its CRC."""
        flags = (
            (_TERMINATED if self.terminated else 0)
            | (_TRUNCATED if self.truncated else 0)
            | (_CUT if self.cut else 0)
        )
        body = (
            _HEAD.pack(self.env, len(self.actions), self.level_seed, self.episode_return, flags)
            + np.ascontiguousarray(self.actions, dtype=np.uint8).tobytes()
        )
        return body + _CRC.pack(zlib.crc32(body))


class Journal:
    """Append-only journal file next to the collector's output."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "ab")  # noqa: SIM115 - kept open for the whole collection

    @staticmethod
    def read(path: Path) -> list[JournalRecord]:
        """All intact records (a torn last record from a killed process is ignored)."""
        if not path.exists():
            return []
        data = path.read_bytes()
        records: list[JournalRecord] = []
        pos = 0
        while pos + _HEAD.size <= len(data):
            env, length, seed, ret, flags = _HEAD.unpack_from(data, pos)
            end = pos + _HEAD.size + length
            if end + _CRC.size > len(data):
                break
            (crc,) = _CRC.unpack_from(data, end)
            if crc != zlib.crc32(data[pos:end]):
                if end + _CRC.size < len(data):
                    raise CorruptStoreError(
                        f"{path}: record at byte {pos} fails its checksum; the collection cannot "
                        "be resumed exactly. Start over with --overwrite."
                    )
                break
            actions = np.frombuffer(data, dtype=np.uint8, count=length, offset=pos + _HEAD.size)
            records.append(
                JournalRecord(
                    env=env,
                    level_seed=seed,
                    episode_return=ret,
                    terminated=bool(flags & _TERMINATED),
                    truncated=bool(flags & _TRUNCATED),
                    cut=bool(flags & _CUT),
                    actions=actions.copy(),
                )
            )
            pos = end + _CRC.size
        return records

    @staticmethod
    def truncate(path: Path, records: list[JournalRecord]) -> None:
        """Keep exactly ``records`` (a prefix of the file's records)."""
        size = sum(_HEAD.size + len(r.actions) + _CRC.size for r in records)
        if path.exists():
            with open(path, "r+b") as handle:
                handle.truncate(size)
                os.fsync(handle.fileno())

    def append(self, record: JournalRecord) -> None:
        """Append a record and hand it to the OS (survives a killed process)."""
        self._handle.write(record.encode())
        self._handle.flush()

    def sync(self) -> None:
        """Force the journal to disk (before a store commit, so it survives a power loss too)."""
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Close the file."""
        if not self._handle.closed:
            self._handle.close()
