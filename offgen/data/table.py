"""The episode table: one fixed-size record per committed episode, filterable without frames.

On disk (``episodes.bin``) the table is an append-only sequence of little-endian records of
:data:`EPISODE_RECORD` (54 bytes), each ending with the CRC-32 of its other bytes. Appending a record
is the commit point of an episode: a writer appends it only after the episode's frames and steps are
on disk. A record torn by a killed writer (a short tail or a CRC mismatch on the last record) is
ignored while the store is still being written and is an error in a finished store.

Episode ``i`` owns frames ``[frame_offset, frame_offset + length + 1)`` of the observation array and
steps ``[step_offset, step_offset + length)`` of the action / reward arrays, so every observation is
stored once and ``next_obs`` of step ``t`` is frame ``t + 1`` of the same episode.
"""

from __future__ import annotations

import difflib
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.errors import CorruptStoreError, UnknownNameError

__all__ = ["EPISODE_FIELDS", "EPISODE_RECORD", "EpisodeTable", "decode_records", "encode_records"]

EPISODE_FIELDS = np.dtype(
    [
        ("episode_id", "<i8"),
        ("frame_offset", "<i8"),
        ("step_offset", "<i8"),
        ("length", "<i4"),
        ("return", "<f8"),
        ("level_seed", "<i8"),
        ("terminated", "?"),
        ("truncated", "?"),
        ("policy", "<i4"),
    ]
)
"""Columns of the table as held in memory."""

EPISODE_RECORD = np.dtype([*EPISODE_FIELDS.descr, ("crc32", "<u4")])
"""On-disk record: the columns followed by a CRC-32 of the column bytes."""

_BODY_SIZE = EPISODE_FIELDS.itemsize


def encode_records(rows: npt.NDArray[Any]) -> bytes:
    """Serialise table rows (dtype :data:`EPISODE_FIELDS`) into checksummed on-disk records."""
    out = np.zeros(len(rows), dtype=EPISODE_RECORD)
    for name in EPISODE_FIELDS.names or ():
        out[name] = rows[name]
    raw = out.tobytes()
    crcs = [
        zlib.crc32(raw[i * out.itemsize : i * out.itemsize + _BODY_SIZE]) for i in range(len(out))
    ]
    out["crc32"] = np.asarray(crcs, dtype=np.uint32)
    return out.tobytes()


def decode_records(data: bytes, *, source: str, tolerate_torn_tail: bool) -> npt.NDArray[Any]:
    """Parse on-disk records, checking every CRC.

    Args:
        data: The bytes of ``episodes.bin``.
        source: The file name, used in error messages.
        tolerate_torn_tail: Drop a partial or corrupt *last* record instead of raising (a writer that
            was killed while appending); every earlier record must still be intact.

    Raises:
        CorruptStoreError: On a corrupt record, or a torn tail when it is not tolerated.
    """
    size = EPISODE_RECORD.itemsize
    whole, rest = divmod(len(data), size)
    if rest and not tolerate_torn_tail:
        raise CorruptStoreError(
            f"{source}: {rest} trailing bytes after {whole} records; the episode table is truncated. "
            "Run `offgen verify` and restore the store from its source."
        )
    recs = np.frombuffer(data[: whole * size], dtype=EPISODE_RECORD)
    raw = memoryview(data)
    bad = [
        i
        for i in range(whole)
        if zlib.crc32(raw[i * size : i * size + _BODY_SIZE]) != int(recs["crc32"][i])
    ]
    if bad:
        if tolerate_torn_tail and bad == [whole - 1]:
            whole -= 1
        else:
            raise CorruptStoreError(
                f"{source}: episode record {bad[0]} fails its checksum ({len(bad)} bad records). "
                "The episode table is damaged; restore the store from its source."
            )
    rows = np.zeros(whole, dtype=EPISODE_FIELDS)
    for name in EPISODE_FIELDS.names or ():
        rows[name] = recs[name][:whole]
    return rows


@dataclass(frozen=True)
class EpisodeTable:
    """An immutable view of episode rows with vectorised filters.

    Attributes:
        rows: Structured array of dtype :data:`EPISODE_FIELDS`, one row per episode.
        policies: Policy ids; ``rows["policy"]`` indexes this list.
    """

    rows: npt.NDArray[Any]
    policies: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        """Steps per episode."""
        return self.rows["length"].astype(np.int64)

    @property
    def returns(self) -> npt.NDArray[np.float64]:
        """Undiscounted return per episode."""
        return np.asarray(self.rows["return"], dtype=np.float64)

    @property
    def level_seeds(self) -> npt.NDArray[np.int64]:
        """Level seed per episode (-1 where unknown)."""
        return np.asarray(self.rows["level_seed"], dtype=np.int64)

    @property
    def num_transitions(self) -> int:
        """Total steps over all episodes."""
        return int(self.lengths.sum())

    def policy_names(self) -> list[str]:
        """Policy id of every row."""
        return [
            self.policies[i] if 0 <= i < len(self.policies) else "?" for i in self.rows["policy"]
        ]

    def take(self, index: npt.ArrayLike) -> EpisodeTable:
        """Rows at positional ``index`` (a boolean mask or integer positions)."""
        return EpisodeTable(rows=self.rows[np.asarray(index)], policies=self.policies)

    def top_return_positions(self, max_transitions: int) -> npt.NDArray[np.int64]:
        """Positions of the highest-return episodes holding ``max_transitions`` steps, table order.

        Episodes are taken best return first (ties: earlier row first) until their steps reach
        ``max_transitions``; the episode that reaches it is kept, so the selection holds at least
        ``max_transitions`` steps when the table has that many (the predecessor's
        ``--dataset_size`` x ``--percentile`` loading, done on the table instead of the files).

        Raises:
            ValueError: If ``max_transitions`` is not positive.
        """
        if max_transitions < 1:
            raise ValueError(f"max_transitions must be >= 1, got {max_transitions}")
        order = np.argsort(-self.returns, kind="stable")
        before = np.cumsum(self.lengths[order]) - self.lengths[order]
        return np.sort(order[before < max_transitions]).astype(np.int64)

    def mask(
        self,
        *,
        min_return: float | None = None,
        max_return: float | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        level_seeds: Iterable[int] | None = None,
        policies: Sequence[str] | None = None,
        terminated: bool | None = None,
        truncated: bool | None = None,
    ) -> npt.NDArray[np.bool_]:
        """Boolean mask of rows matching every given condition (bounds are inclusive).

        Raises:
            UnknownNameError: If ``policies`` names a policy id the store does not have (a filter
                that silently kept no episode would hide the typo).
        """
        keep = np.ones(len(self.rows), dtype=bool)
        ret, length = self.returns, self.lengths
        if min_return is not None:
            keep &= ret >= min_return
        if max_return is not None:
            keep &= ret <= max_return
        if min_length is not None:
            keep &= length >= min_length
        if max_length is not None:
            keep &= length <= max_length
        if level_seeds is not None:
            keep &= np.isin(self.level_seeds, np.fromiter(level_seeds, dtype=np.int64))
        if policies is not None:
            if isinstance(policies, str):  # a bare string would be read as its characters
                policies = [policies]
            self._check_policies(policies)
            wanted = [i for i, name in enumerate(self.policies) if name in set(policies)]
            keep &= np.isin(self.rows["policy"], np.asarray(wanted, dtype=np.int32))
        if terminated is not None:
            keep &= self.rows["terminated"] == terminated
        if truncated is not None:
            keep &= self.rows["truncated"] == truncated
        return keep

    def _check_policies(self, names: Sequence[str]) -> None:
        known = list(self.policies)
        for name in names:
            if name in known:
                continue
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
            suggestion = f" Did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(repr(k) for k in known) if known else "none recorded"
            raise UnknownNameError(
                f"unknown policy id {name!r}.{suggestion} This store's policy ids: {listed} "
                "(see `offgen info` or ds.table.policies)"
            )
