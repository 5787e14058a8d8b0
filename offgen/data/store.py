"""Read-only access to an offgen store on a local path or any fsspec URL.

Only what is asked for is read: opening reads ``info.json``, ``policies.json`` and ``episodes.bin``
(54 bytes per episode); frames are read chunk by chunk through zarr when needed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from offgen._io import hash_stream
from offgen.data.format import (
    ACTIONS,
    EPISODES,
    INFO,
    MANIFEST,
    OBSERVATIONS,
    POLICIES,
    REWARDS,
    check_manifest_entry,
    parse_manifest,
    verify_manifest,
)
from offgen.data.info import StoreInfo, check_info_seal
from offgen.data.metadata import (
    ZARR_METADATA,
    ArrayMeta,
    parse_array_meta,
    parse_group_meta,
    parse_policies,
)
from offgen.data.remote import open_sequential, remote_error, url_filesystem, url_zarr_store
from offgen.data.schema import Episode
from offgen.data.table import EpisodeTable, decode_records
from offgen.errors import (
    ChecksumError,
    CorruptStoreError,
    DatasetNotFoundError,
    IncompleteStoreError,
)

__all__ = ["OffgenStore", "is_url"]

_ZARR_FILES = (
    ZARR_METADATA,
    *(f"{name}/{ZARR_METADATA}" for name in (OBSERVATIONS, ACTIONS, REWARDS)),
)


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


class OffgenStore:
    """A finished (or, on request, partially written) offgen store.

    Args:
        location: Store directory, or a URL fsspec understands (``s3://``, ``http://``, ...).
        allow_incomplete: Open a store that is still being written (or whose writer was killed)
            and expose only its committed episodes.
        storage_options: Passed to fsspec for URLs (credentials, endpoints).

    Raises:
        DatasetNotFoundError: If there is no store at ``location``.
        IncompleteStoreError: If the store is unfinished and ``allow_incomplete`` is false.
        CorruptStoreError: If its metadata or episode table is damaged.
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        allow_incomplete: bool = False,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.location = str(location)
        self._storage_options = dict(storage_options or {})
        self._present_chunks: dict[str, set[int]] = {}
        self._arrays: dict[str, zarr.Array[Any]] = {}
        if is_url(location):
            self._fs, self._path = url_filesystem(self.location, self._storage_options)
        else:
            self._fs = None
            self._path = str(Path(str(location).removeprefix("file://")).expanduser())
        #: The location in one spelling per store: local paths absolute with symlinks resolved
        #: (``./s``, ``s/`` and ``/abs/s`` are one store), URLs as given. Keys caches.
        self.canonical_location = (
            str(Path(self._path).resolve()) if self._fs is None else self.location
        )
        info_bytes = self._read(INFO, missing_hint=True)
        #: The checked, typed ``info.json``.
        self.info: StoreInfo = StoreInfo.from_bytes(info_bytes, self._name(INFO))
        self.complete = self.info.complete
        if not self.complete and not allow_incomplete:
            raise IncompleteStoreError(
                f"{self.location}: the store is still being written or its writer was interrupted. "
                "Resume the writer (offgen collect/convert with --resume), or open it with "
                "allow_incomplete=True to read the episodes committed so far."
            )
        self._table_bytes = self._read(EPISODES)
        rows = decode_records(
            self._table_bytes, source=self._name(EPISODES), tolerate_torn_tail=not self.complete
        )
        referenced = int(rows["policy"].max()) + 1 if len(rows) else 0
        policy_bytes = self._read(POLICIES)
        policies = parse_policies(policy_bytes, self._name(POLICIES), referenced)
        self.table = EpisodeTable(rows=rows, policies=tuple(p["id"] for p in policies))
        self.policies: list[dict[str, Any]] = policies
        self._check_consistency()
        zarr_meta = {rel: self._read(rel) for rel in _ZARR_FILES}
        self._array_meta = self._parse_zarr_metadata(zarr_meta)
        #: Whether ``info.json`` carries its own checksum and (finished stores) the manifest's;
        #: ``False`` for stores written before offgen sealed its metadata.
        self.sealed = check_info_seal(info_bytes, self._name(INFO))
        if self.sealed and self.complete:
            self._check_metadata_against_manifest({POLICIES: policy_bytes, **zarr_meta})

    # ------------------------------------------------------------------ io
    def _name(self, rel: str) -> str:
        return f"{self.location.rstrip('/')}/{rel}"

    def _read(self, rel: str, missing_hint: bool = False) -> bytes:
        try:
            if self._fs is None:
                return (Path(self._path) / rel).read_bytes()
            data = self._fs.cat_file(f"{self._path.rstrip('/')}/{rel}")
            assert isinstance(data, bytes)
            return data
        except (NotADirectoryError, IsADirectoryError) as exc:
            raise DatasetNotFoundError(
                f"{self.location}: not an offgen store ({exc.strerror} at {exc.filename}). Give "
                "the store's folder (the one holding info.json)."
            ) from exc
        except (FileNotFoundError, PermissionError) as exc:
            remote = remote_error(exc, self.location) if self._fs is not None else None
            if remote is not None:
                raise remote from exc
            if isinstance(exc, PermissionError):
                raise
            if missing_hint:
                raise DatasetNotFoundError(
                    f"{self.location}: no offgen store here ({INFO} missing). Check the path, or "
                    "create one with `offgen convert` / `offgen collect`."
                ) from exc
            raise CorruptStoreError(
                f"{self._name(rel)}: missing; the store is incomplete. Re-download or rebuild it."
            ) from exc

    @cached_property
    def _group(self) -> zarr.Group:
        if self._fs is None:
            store: Any = zarr.storage.LocalStore(self._path, read_only=True)
        else:
            store = url_zarr_store(self.location, self._storage_options)
        try:
            return zarr.open_group(store=store, mode="r")
        except Exception as exc:
            raise CorruptStoreError(
                f"{self.location}: cannot open the zarr arrays ({exc}). Run `offgen verify`."
            ) from exc

    def _parse_zarr_metadata(self, files: Mapping[str, bytes]) -> dict[str, ArrayMeta]:
        """Check the group's and each array's ``zarr.json`` (zarr would fail on first use)."""
        parse_group_meta(files[ZARR_METADATA], self._name(ZARR_METADATA))
        metas = {}
        for name in (OBSERVATIONS, ACTIONS, REWARDS):
            rel = f"{name}/{ZARR_METADATA}"
            metas[name] = parse_array_meta(files[rel], self._name(rel), name)
        return metas

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        """The manifest's file table, checked against the sha256 ``info.json`` records."""
        data = self._read(MANIFEST)
        recorded = self.info.manifest_sha256
        if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
            raise ChecksumError(
                f"{self._name(MANIFEST)}: sha256 differs from the one {INFO} records; the "
                "manifest was edited or is corrupt. Re-download or restore the store."
            )
        return parse_manifest(data, self._name(MANIFEST))

    def _check_metadata_against_manifest(self, files: Mapping[str, bytes]) -> None:
        """The cheap part of verification, on every open of a sealed store: the small metadata
        files a reader trusts (policies, zarr metadata) must be the ones the manifest lists."""
        listed = self._read_manifest()
        for rel, data in files.items():
            entry = listed.get(rel)
            if entry is None:
                raise CorruptStoreError(
                    f"{self._name(rel)}: not listed in {MANIFEST}; the store is damaged. "
                    "Re-download or restore it."
                )
            check_manifest_entry(
                self._name(rel), entry, len(data), hashlib.sha256(data).hexdigest()
            )

    def _array(self, name: str) -> zarr.Array[Any]:
        cached = self._arrays.get(name)
        if cached is not None:
            return cached
        try:
            arr = self._group[name]
        except KeyError as exc:
            raise CorruptStoreError(f"{self._name(name)}: array missing from the store") from exc
        except Exception as exc:  # metadata that passed our schema but not zarr's
            raise CorruptStoreError(
                f"{self._name(name)}/{ZARR_METADATA}: unreadable array metadata "
                f"({type(exc).__name__}: {exc}); re-download or restore the store"
            ) from exc
        if not isinstance(arr, zarr.Array):
            raise CorruptStoreError(f"{self._name(name)}: not an array; the store is damaged")
        if self.complete:
            # A finished store's arrays never change: opening one reads its zarr.json, one
            # request per frame read on an object store. An unfinished one may still grow.
            self._arrays[name] = arr
        return arr

    @property
    def observations(self) -> zarr.Array[Any]:
        """The zarr array of all frames, ``(frames, 64, 64, 3)`` uint8."""
        return self._array(OBSERVATIONS)

    @cached_property
    def actions(self) -> npt.NDArray[np.uint8]:
        """All actions, loaded once (1 byte per step)."""
        return self._read_small(ACTIONS, self.num_steps_stored).astype(np.uint8, copy=False)

    @cached_property
    def rewards(self) -> npt.NDArray[np.float32]:
        """All rewards, loaded once (4 bytes per step)."""
        return self._read_small(REWARDS, self.num_steps_stored).astype(np.float32, copy=False)

    def _exists(self, rel: str) -> bool:
        if self._fs is None:
            return (Path(self._path) / rel).is_file()
        return bool(self._fs.exists(f"{self._path.rstrip('/')}/{rel}"))

    def _require_chunks(self, name: str, start: int, stop: int) -> None:
        """Raise if a shard (or chunk) file holding items ``[start, stop)`` of ``name`` is missing.

        zarr reads a missing chunk as its fill value, which would silently turn lost frames into
        black ones; each file is checked once per opened store.
        """
        if stop <= start:
            return
        arr = self._array(name)
        size = int((arr.shards or arr.chunks)[0])
        present = self._present_chunks.setdefault(name, set())
        for index in range(start // size, (stop - 1) // size + 1):
            if index in present:
                continue
            coords = (index,) + (0,) * (arr.ndim - 1)
            key = f"{name}/{arr.metadata.encode_chunk_key(coords)}"
            if not self._exists(key):
                raise CorruptStoreError(
                    f"{self._name(key)}: missing (items {index * size}-{(index + 1) * size - 1} of "
                    f"{name}); the store is damaged. Re-download or rebuild it; `offgen verify` "
                    "lists every damaged file."
                )
            present.add(index)

    def _short_array(self, name: str, held: int, needed: int, what: str) -> CorruptStoreError:
        return CorruptStoreError(
            f"{self._name(name)}: holds {held} {what} but the episode table ({EPISODES}, "
            f"{len(self.table)} episodes) needs {needed}; the store is damaged (arrays shorter "
            "than its table). Re-download or rebuild it; `offgen verify` checks every file."
        )

    def _read_small(self, name: str, count: int) -> npt.NDArray[Any]:
        arr = self._array(name)
        if int(arr.shape[0]) < count:
            raise self._short_array(name, int(arr.shape[0]), count, "steps")
        self._require_chunks(name, 0, count)
        try:
            out = np.asarray(arr[:count])
        except CorruptStoreError:
            raise
        except Exception as exc:
            raise CorruptStoreError(
                f"{self._name(name)}: unreadable ({type(exc).__name__}: {exc}). The store is "
                "damaged; run `offgen verify` and re-download or rebuild it."
            ) from exc
        if out.shape[0] != count:
            raise self._short_array(name, int(out.shape[0]), count, "steps")
        return out

    def read_frames(self, start: int, stop: int) -> npt.NDArray[np.uint8]:
        """Frames ``[start, stop)`` of the observation array.

        Raises:
            CorruptStoreError: If a chunk is missing, truncated or fails its checksum.
        """
        arr = self.observations
        if int(arr.shape[0]) < stop:
            needed = max(stop, self.num_frames_stored)
            raise self._short_array(OBSERVATIONS, int(arr.shape[0]), needed, "frames")
        self._require_chunks(OBSERVATIONS, start, stop)
        try:
            out = np.asarray(arr[start:stop])
        except Exception as exc:
            raise CorruptStoreError(
                f"{self._name(OBSERVATIONS)}: frames {start}-{stop} unreadable "
                f"({type(exc).__name__}: {exc}). The store is damaged; run `offgen verify` and "
                "re-download or rebuild it."
            ) from exc
        if out.shape[0] != stop - start:
            needed = max(stop, self.num_frames_stored)
            raise self._short_array(OBSERVATIONS, start + int(out.shape[0]), needed, "frames")
        return out

    # ------------------------------------------------------------------ facts
    @property
    def game(self) -> str:
        """Procgen game of the store."""
        return self.info.game

    @property
    def num_frames_stored(self) -> int:
        """Frames owned by committed episodes."""
        rows = self.table.rows
        return int(rows["frame_offset"][-1] + rows["length"][-1] + 1) if len(rows) else 0

    @property
    def num_steps_stored(self) -> int:
        """Steps owned by committed episodes."""
        rows = self.table.rows
        return int(rows["step_offset"][-1] + rows["length"][-1]) if len(rows) else 0

    @property
    def final_frame_is_true(self) -> bool:
        """Whether row T of each episode is its true final frame (False for legacy data)."""
        return self.info.final_frame_is_true

    @property
    def fingerprint(self) -> str:
        """Changes whenever the store's committed content changes (used to invalidate caches).

        Covers the episode table, the counts and :attr:`canonical_location`, so a relative and an
        absolute path to the same local store share one fingerprint (and one frame cache).
        """
        digest = hashlib.sha256(self._table_bytes)
        counts = self.info.counts.to_json(finished=self.complete)
        digest.update(json.dumps(counts, sort_keys=True).encode())
        digest.update(self.canonical_location.encode())
        return digest.hexdigest()[:32]

    def _check_consistency(self) -> None:
        rows = self.table.rows
        lengths = rows["length"].astype(np.int64)
        if (lengths < 1).any():
            raise CorruptStoreError(f"{self._name(EPISODES)}: an episode has length < 1")
        expect_steps = np.cumsum(lengths) - lengths
        expect_frames = expect_steps + np.arange(len(rows))
        if not (
            np.array_equal(rows["step_offset"], expect_steps)
            and np.array_equal(rows["frame_offset"], expect_frames)
        ):
            raise CorruptStoreError(
                f"{self._name(EPISODES)}: episode offsets are not contiguous; the table is damaged"
            )
        if self.complete:
            counts = self.info.counts
            if (counts.episodes, counts.transitions) != (len(rows), int(lengths.sum())):
                raise CorruptStoreError(
                    f"{self._name(INFO)}: counts {counts.to_json(finished=True)} disagree with "
                    f"the episode table {self._name(EPISODES)} ({len(rows)} episodes, "
                    f"{int(lengths.sum())} steps); one of them is damaged. Re-download or "
                    "restore the store"
                )

    # ------------------------------------------------------------------ episodes
    def episode(self, index: int) -> Episode:
        """Episode at table position ``index``, read and validated."""
        row = self.table.rows[index]
        f0, s0, length = int(row["frame_offset"]), int(row["step_offset"]), int(row["length"])
        policy = int(row["policy"])
        return Episode(
            observations=self.read_frames(f0, f0 + length + 1),
            actions=np.ascontiguousarray(self.actions[s0 : s0 + length]),
            rewards=np.ascontiguousarray(self.rewards[s0 : s0 + length]),
            terminated=bool(row["terminated"]),
            truncated=bool(row["truncated"]),
            level_seed=int(row["level_seed"]),
            game=self.game,
            policy_id=self.table.policies[policy] if policy < len(self.table.policies) else "?",
            final_frame_is_true=self.final_frame_is_true,
            provenance={"store": self.location, "episode_id": int(row["episode_id"])},
        )

    def iter_episodes(self, indices: Sequence[int] | None = None) -> Iterator[Episode]:
        """Yield episodes in table order (or the given positions)."""
        for i in range(len(self.table)) if indices is None else indices:
            yield self.episode(int(i))

    def verify(self, *, check_hashes: bool = True, check_frames: bool = True) -> list[str]:
        """Check the manifest and decode every chunk; return the files checked.

        A local store is also checked for files the manifest does not list; a remote one cannot
        be listed (plain HTTP has no listing), so only the manifest's files are checked there,
        each streamed once for its sha256 (or only its size with ``check_hashes=False``).
        ``info.json`` is checked against its own checksum and the manifest against the sha256
        ``info.json`` records (a store written before offgen sealed its metadata, see
        :attr:`sealed`, has neither: its ``info.json`` is checked against the schema only).

        Raises:
            CorruptStoreError: On any missing, truncated or corrupt file.
            IncompleteStoreError: If the store is not finished (it has no manifest yet).
        """
        if not self.complete:
            raise IncompleteStoreError(f"{self.location}: unfinished store; nothing to verify yet")
        checked: list[str] = []
        if self._fs is None:
            self._read_manifest()
            checked = verify_manifest(Path(self._path), check_hashes=check_hashes)
        else:
            checked = self._verify_remote_manifest(check_hashes)
        if check_frames:
            step = self.info.codec.shard_frames
            for start in range(0, self.num_frames_stored, step):
                self.read_frames(start, min(start + step, self.num_frames_stored))
            _ = self.actions, self.rewards
        return checked

    def _verify_remote_manifest(self, check_hashes: bool) -> list[str]:
        assert self._fs is not None
        files = self._read_manifest()
        for rel, entry in files.items():
            path = f"{self._path.rstrip('/')}/{rel}"
            digest: str | None = None
            try:
                if check_hashes:
                    hasher = hashlib.sha256()
                    with open_sequential(self._fs, path) as handle:
                        size = hash_stream(hasher, handle, 1 << 22)
                    digest = hasher.hexdigest()
                else:
                    size = int(self._fs.size(path))
            except FileNotFoundError as exc:
                raise CorruptStoreError(
                    f"{self._name(rel)}: listed in the manifest but missing"
                ) from exc
            check_manifest_entry(self._name(rel), entry, size, digest)
        return sorted(files)
