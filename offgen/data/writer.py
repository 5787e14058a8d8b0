"""Streaming, crash-safe writer of offgen stores.

Memory is a few 512-frame chunk buffers plus one shard's compressed bytes whatever the dataset
size: frames stream into :class:`~offgen.data._shards.ShardStream`, which compresses each complete
chunk at once in two threads and writes the shard file at a commit.

Commit protocol: frames and steps are written to the zarr arrays first (each file replaced
atomically by zarr's local store), then the episodes' records are appended to ``episodes.bin`` and
fsynced. Only that append makes episodes visible, so a writer killed at any point leaves every
previously committed episode readable. A full shard is written by a background thread while frames
keep streaming into the next one, and the episodes it completes are committed as soon as its file
is on disk (checked on each write); episodes are also committed every ``commit_interval_s``
seconds, on :meth:`StoreWriter.flush` and on close, which wait for every shard being written.
Reopening with ``mode="append"`` resumes after the last committed episode (frames written after it
are discarded).

One writer per store: a writer holds the store's :class:`~offgen.data.lock.StoreLock` from before
it looks at the store until it closes; a second writer is refused (or waits, if asked to).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import zarr
from zarr.codecs import ZstdCodec
from zarr.storage import LocalStore

from offgen._io import atomic_write_bytes, atomic_write_json
from offgen._version import __version__
from offgen.data._shards import ShardSink, ShardStream, ZarrShardSink
from offgen.data.format import (
    ACTIONS,
    CHUNK_FRAMES,
    CHUNK_STEPS,
    EPISODES,
    INFO,
    MANIFEST,
    OBSERVATIONS,
    POLICIES,
    REWARDS,
    SHARD_FRAMES,
    ZSTD_LEVEL,
    now_iso,
    write_manifest,
)
from offgen.data.info import (
    Codec,
    Counts,
    EnvOptions,
    ObservationSpec,
    StoreInfo,
    read_info,
    write_info,
)
from offgen.data.lock import StoreLock
from offgen.data.metadata import parse_policies
from offgen.data.schema import FRAME_SHAPE_HWC, Episode, FrameSource
from offgen.data.table import EPISODE_FIELDS, decode_records, encode_records
from offgen.errors import CorruptStoreError, SchemaError, StoreExistsError
from offgen.registry import resolve_game

__all__ = ["StoreWriter", "WriteMode"]

WriteMode = Literal["create", "append", "overwrite"]


def _array(group: zarr.Group, name: str) -> zarr.Array[Any]:
    array = group[name]
    if not isinstance(array, zarr.Array):
        raise TypeError(f"{name} is not a zarr array")
    return array


class StoreWriter:
    """Write episodes into an offgen store, streaming and crash-safe.

    Args:
        path: Store directory.
        game: Procgen game of every episode (any name :func:`~offgen.registry.resolve_game`
            accepts; the canonical one is recorded).
        mode: ``"create"`` fails if a store exists; ``"append"`` creates or resumes an existing
            store of the same game and options (after a crash, or to add episodes to a finished
            one); ``"overwrite"`` deletes an existing store first.
        dataset: Dataset name recorded in ``info.json`` (e.g. ``"expert_1M"``).
        env_options: Procgen options the episodes were collected with (distribution mode, levels).
        provenance: Free-form provenance recorded in ``info.json``.
        final_frame_is_true: ``False`` for data whose last frame is the next level's first frame.
        commit_interval_s: Commit buffered episodes at least this often.
        shard_frames: Frames per shard file (and the writer's buffer size).
        wait_for_lock: If another process is writing the store, wait for it instead of raising
            :class:`~offgen.errors.StoreLockedError`.
        lock: The store's lock, already held by the caller (who then releases it; e.g. the
            collector, which reads its journal in the store before opening the writer).

    Example:
        >>> with StoreWriter("store", game="coinrun") as writer:  # doctest: +SKIP
        ...     writer.write(episode)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        game: str,
        mode: WriteMode = "create",
        dataset: str | None = None,
        env_options: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
        final_frame_is_true: bool = True,
        commit_interval_s: float = 30.0,
        shard_frames: int = SHARD_FRAMES,
        chunk_frames: int = CHUNK_FRAMES,
        wait_for_lock: bool = False,
        lock: StoreLock | None = None,
    ) -> None:
        self.root = Path(path)
        self.game = resolve_game(game).name  # episodes carry the canonical name
        self.commit_interval_s = commit_interval_s
        self._closed = False
        # Taken before the store is looked at: a second writer must not even read a store that
        # is being written (or delete it, with mode="overwrite").
        self._own_lock = lock is None
        self._lock = StoreLock(self.root, wait=wait_for_lock) if lock is None else lock
        if not self._lock.held:
            self._lock.acquire()
        try:
            self._open(
                mode,
                dataset,
                env_options,
                provenance,
                final_frame_is_true,
                shard_frames,
                chunk_frames,
            )
        except BaseException:
            self._release_lock()
            raise

    def _open(
        self,
        mode: WriteMode,
        dataset: str | None,
        env_options: Mapping[str, Any] | None,
        provenance: Mapping[str, Any] | None,
        final_frame_is_true: bool,
        shard_frames: int,
        chunk_frames: int,
    ) -> None:
        exists = (self.root / INFO).exists()
        if exists and mode == "create":
            raise StoreExistsError(
                f"{self.root}: a store already exists here. Use mode='append' (CLI: --resume) to "
                "continue it or mode='overwrite' (CLI: --overwrite) to replace it."
            )
        if exists and mode == "overwrite":
            shutil.rmtree(self.root)
            exists = False
        if not exists and self.root.exists() and any(self.root.iterdir()):
            raise StoreExistsError(
                f"{self.root}: directory is not empty and holds no offgen store; choose an empty "
                "or new directory"
            )
        if exists:
            self._info = self._reopen(env_options)
        else:
            self._info = self._create(
                dataset, env_options, provenance, final_frame_is_true, shard_frames, chunk_frames
            )
        group = zarr.open_group(store=LocalStore(self.root), mode="r+")
        # write_empty_chunks=True: zarr would otherwise compare every chunk with its fill value
        # before writing it, which took ~75% of the write time; all-zero frames are rare anyway.
        self._obs = _array(group, OBSERVATIONS).with_config({"write_empty_chunks": True})
        self._actions = _array(group, ACTIONS).with_config({"write_empty_chunks": True})
        self._rewards = _array(group, REWARDS).with_config({"write_empty_chunks": True})
        self._shard = self._info.codec.shard_frames
        # Frames stream into offgen's own shard encoder when the array is laid out as offgen
        # creates it (always, unless a future zarr changes the metadata): compression overlaps
        # writing and needs no shard-sized buffer. Otherwise zarr writes a buffered shard.
        self._sink: ShardSink = ShardStream.for_array(self._obs) or ZarrShardSink(self._obs)
        self._policies = parse_policies(
            (self.root / POLICIES).read_bytes(), str(self.root / POLICIES)
        )
        self._policy_index = {p["id"]: i for i, p in enumerate(self._policies)}
        self._resume_from_table()
        self._last_commit = time.monotonic()

    def _release_lock(self) -> None:
        if self._own_lock:
            self._lock.release()

    # ------------------------------------------------------------------ setup
    def _create(
        self,
        dataset: str | None,
        env_options: Mapping[str, Any] | None,
        provenance: Mapping[str, Any] | None,
        final_frame_is_true: bool,
        shard_frames: int,
        chunk_frames: int,
    ) -> StoreInfo:
        if shard_frames < 1 or chunk_frames < 1 or shard_frames % chunk_frames:
            raise ValueError("shard_frames must be a multiple of chunk_frames")
        self.root.mkdir(parents=True, exist_ok=True)
        now = now_iso()
        info = StoreInfo(
            game=self.game,
            status="writing",
            observation=ObservationSpec(
                "true" if final_frame_is_true else "next_level_first_frame"
            ),
            codec=Codec(chunk_frames=chunk_frames, shard_frames=shard_frames),
            env=_env_options(env_options, self.root),
            dataset=dataset,
            provenance=_json_object(provenance, "provenance", self.root),
            created=now,
            updated=now,
            offgen_version=__version__,
        )
        group = zarr.create_group(store=LocalStore(self.root), overwrite=True)
        atomic_write_json(self.root / POLICIES, [])
        atomic_write_bytes(self.root / EPISODES, b"")
        zstd = ZstdCodec(level=ZSTD_LEVEL, checksum=True)
        group.create_array(
            OBSERVATIONS,
            shape=(0, *FRAME_SHAPE_HWC),
            chunks=(chunk_frames, *FRAME_SHAPE_HWC),
            shards=(shard_frames, *FRAME_SHAPE_HWC),
            dtype="uint8",
            compressors=zstd,
            fill_value=0,
        )
        for name, dtype in ((ACTIONS, "uint8"), (REWARDS, "float32")):
            group.create_array(
                name, shape=(0,), chunks=(CHUNK_STEPS,), dtype=dtype, compressors=zstd, fill_value=0
            )
        # info.json last: a directory without it is not a store, so a crash above leaves nothing
        # that looks valid.
        write_info(self.root, info)
        return info

    def _reopen(self, env_options: Mapping[str, Any] | None) -> StoreInfo:
        info = read_info(self.root)
        if info.game != self.game:
            raise StoreExistsError(
                f"{self.root}: holds game {info.game!r}, cannot append {self.game!r}"
            )
        if env_options is not None and _env_options(env_options, self.root) != info.env:
            raise StoreExistsError(
                f"{self.root}: was written with options {info.env.to_json()}, not "
                f"{dict(env_options)}; write to a new store"
            )
        for leftover in self.root.rglob("*.partial"):  # zarr temp files of a killed writer
            leftover.unlink(missing_ok=True)
        for leftover in self.root.rglob(".*.tmp-*"):
            leftover.unlink(missing_ok=True)
        info = dataclasses.replace(info, status="writing", updated=now_iso(), manifest_sha256=None)
        # "writing" first: killed in between, the store must not claim a manifest it lacks.
        write_info(self.root, info)
        (self.root / MANIFEST).unlink(missing_ok=True)
        return info

    def _resume_from_table(self) -> None:
        data = (self.root / EPISODES).read_bytes()
        rows = decode_records(data, source=str(self.root / EPISODES), tolerate_torn_tail=True)
        valid_bytes = len(rows) * (EPISODE_FIELDS.itemsize + 4)
        if valid_bytes != len(data):  # drop a torn record left by a killed writer
            with open(self.root / EPISODES, "r+b") as handle:
                handle.truncate(valid_bytes)
                os.fsync(handle.fileno())
        self._num_episodes = len(rows)
        if len(rows):
            last = rows[-1]
            frames = int(last["frame_offset"] + last["length"] + 1)
            steps = int(last["step_offset"] + last["length"])
        else:
            frames = steps = 0
        self._return_sum = float(np.asarray(rows["return"], dtype=np.float64).sum())
        # Drop whatever a killed writer wrote after the last commit.
        self._obs.resize((frames, *FRAME_SHAPE_HWC))
        self._actions.resize((steps,))
        self._rewards.resize((steps,))
        self._shard_start = (frames // self._shard) * self._shard
        self._fill = frames - self._shard_start
        self._no_frames = np.empty((0, *FRAME_SHAPE_HWC), dtype=np.uint8)
        self._sink.start(
            self._shard_start // self._shard, np.asarray(self._obs[self._shard_start : frames])
        )
        self._frames_written = frames  # frames persisted in the zarr array
        self._sealing: deque[tuple[Future[None], int]] = deque()  # full shards being written
        self._steps = steps  # steps appended (persisted + pending)
        self._steps_written = steps
        self._pending_rows: list[npt.NDArray[Any]] = []
        self._pending_actions: list[npt.NDArray[np.uint8]] = []
        self._pending_rewards: list[npt.NDArray[np.float32]] = []

    # ------------------------------------------------------------------ public
    @property
    def num_episodes(self) -> int:
        """Episodes written so far (committed and buffered)."""
        return self._num_episodes + len(self._pending_rows)

    @property
    def num_transitions(self) -> int:
        """Steps written so far (committed and buffered)."""
        return self._steps

    @property
    def info(self) -> StoreInfo:
        """The store's current ``info.json`` content."""
        return self._info

    def add_policy(self, policy_id: str, **metadata: Any) -> int:
        """Register a behaviour policy (idempotent) and return its index in the table."""
        if policy_id in self._policy_index:
            return self._policy_index[policy_id]
        self._policies.append({"id": policy_id, **metadata})
        atomic_write_json(self.root / POLICIES, self._policies)
        self._policy_index[policy_id] = len(self._policies) - 1
        return len(self._policies) - 1

    def update_info(self, **fields: Any) -> None:
        """Set top-level ``info.json`` fields: ``dataset``, ``provenance`` or ``recipe``.

        Values are JSON values or the typed records of :mod:`offgen.data.info` (a
        :class:`~offgen.data.info.RatioRecipe`); they are checked against the schema.

        Raises:
            ValueError: For any other field, or a value that does not match the schema.
        """
        settable = {"dataset", "provenance", "recipe"}
        if fields.keys() - settable:
            raise ValueError(
                f"cannot set {sorted(fields.keys() - settable)} through update_info "
                f"(settable: {sorted(settable)})"
            )
        raw = self._info.to_json()
        for key, value in fields.items():
            raw[key] = value.to_json() if hasattr(value, "to_json") else value
        raw["updated"] = now_iso()
        try:
            self._info = StoreInfo.from_json(json.loads(json.dumps(raw)), str(self.root / INFO))
        except CorruptStoreError as exc:
            raise ValueError(f"update_info: {exc}") from exc
        write_info(self.root, self._info)

    def write(self, episode: Episode, *, frames: FrameSource | None = None) -> int:
        """Buffer one episode; it becomes visible at the next commit.

        Args:
            episode: The episode.
            frames: Where its frames come from instead of ``episode.observations`` (which are then
                not read: pass :func:`~offgen.data.schema.frames_placeholder` frames). A
                compression thread asks it for them once their chunk is complete; an error it
                raises surfaces on a later ``write`` or at the next commit, and nothing after the
                previous commit becomes visible.

        Returns:
            The episode's id.
        """
        self._check_open()
        if episode.game != self.game:
            raise SchemaError(f"episode of game {episode.game!r} written to a {self.game!r} store")
        count = episode.length + 1
        if frames is not None and len(frames) != count:
            raise SchemaError(
                f"episode of {episode.length} steps needs {count} frames, its source has "
                f"{len(frames)}"
            )
        policy = self.add_policy(episode.policy_id)
        row = np.zeros((), dtype=EPISODE_FIELDS)
        episode_id = self.num_episodes
        row["episode_id"] = episode_id
        row["frame_offset"] = self._shard_start + self._fill
        row["step_offset"] = self._steps
        row["length"] = episode.length
        row["return"] = episode.episode_return
        row["level_seed"] = episode.level_seed
        row["terminated"] = episode.terminated
        row["truncated"] = episode.truncated
        row["policy"] = policy
        done = 0
        while done < count:
            take = min(count - done, self._shard - self._fill)
            if frames is None:
                self._sink.push(episode.observations[done : done + take])
            else:
                self._sink.push_from(frames, done, take)
            self._fill += take
            done += take
            if self._fill == self._shard:
                self._seal_shard()
        self._pending_rows.append(row)
        self._pending_actions.append(episode.actions)
        self._pending_rewards.append(episode.rewards)
        self._steps += episode.length
        if time.monotonic() - self._last_commit >= self.commit_interval_s:
            self._commit()
        else:
            self._reap_sealed(wait=False)
        return episode_id

    def flush(self) -> None:
        """Commit every buffered episode now."""
        self._check_open()
        self._commit()

    def close(self, *, finalize: bool = True) -> None:
        """Commit buffered episodes and, if ``finalize``, write the manifest and mark the store
        complete. A store closed with ``finalize=False`` stays resumable with ``mode="append"``."""
        if self._closed:
            return
        try:
            try:
                self._commit()
            finally:
                self._closed = True
                self._sink.close()
            if finalize:
                self._finalize()
        finally:
            self._release_lock()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        # On an error, keep what was committed and leave the store resumable, not finished.
        if exc_type is None:
            self.close(finalize=True)
        else:
            with contextlib.suppress(Exception):
                self.close(finalize=False)

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"writer for {self.root} is closed")

    def _commit(self) -> None:
        self._reap_sealed(wait=True)
        end = self._shard_start + self._fill
        if end > self._frames_written:
            if end > self._obs.shape[0]:
                self._obs.resize((end, *FRAME_SHAPE_HWC))
            # Rewrite the current shard from its start so each shard file is replaced whole.
            self._sink.persist()
            self._frames_written = end
        self._append_records()
        self._last_commit = time.monotonic()

    def _seal_shard(self) -> None:
        """The current shard is full: have it written in the background and start the next."""
        end = self._shard_start + self._shard
        if end > self._obs.shape[0]:
            self._obs.resize((end, *FRAME_SHAPE_HWC))
        self._sealing.append((self._sink.seal(), end))
        self._shard_start = end
        self._fill = 0
        self._sink.start(self._shard_start // self._shard, self._no_frames)

    def _reap_sealed(self, *, wait: bool) -> None:
        """Commit the episodes of sealed shards now on disk (all of them if ``wait``)."""
        reaped = False
        while self._sealing and (wait or self._sealing[0][0].done()):
            future, end = self._sealing[0]
            future.result()  # a failed shard stays first: nothing after it is ever committed
            self._sealing.popleft()
            self._frames_written = end
            reaped = True
        if reaped:
            self._append_records()

    def _append_records(self) -> None:
        """Persist steps and records of the pending episodes whose frames are all on disk."""
        count = 0
        for row in self._pending_rows:
            if int(row["frame_offset"]) + int(row["length"]) + 1 > self._frames_written:
                break
            count += 1
        if not count:
            return
        rows = np.stack(self._pending_rows[:count])
        start = self._steps_written
        stop = start + int(rows["length"].sum())
        self._actions.resize((stop,))
        self._rewards.resize((stop,))
        self._actions[start:stop] = np.concatenate(self._pending_actions[:count])
        self._rewards[start:stop] = np.concatenate(self._pending_rewards[:count])
        self._steps_written = stop
        with open(self.root / EPISODES, "ab") as handle:
            handle.write(encode_records(rows))
            handle.flush()
            os.fsync(handle.fileno())
        self._num_episodes += len(rows)
        self._return_sum += float(np.asarray(rows["return"], dtype=np.float64).sum())
        del self._pending_rows[:count]
        del self._pending_actions[:count]
        del self._pending_rewards[:count]

    def _finalize(self) -> None:
        # Trim frames of an episode that was never finished (none, after _commit) and record counts.
        counts = Counts(
            episodes=self._num_episodes,
            transitions=self._steps_written,
            frames=self._frames_written,
            mean_return=self._return_sum / self._num_episodes if self._num_episodes else None,
        )
        self._info = dataclasses.replace(self._info, counts=counts, updated=now_iso())
        manifest_sha256 = write_manifest(self.root)
        self._info = dataclasses.replace(
            self._info, status="complete", manifest_sha256=manifest_sha256
        )
        write_info(self.root, self._info)


def _env_options(options: Mapping[str, Any] | None, root: Path) -> EnvOptions:
    """Procgen options as recorded, checked like a reader checks them."""
    try:
        return EnvOptions.from_json(_json_object(options, "env_options", root), str(root / INFO))
    except CorruptStoreError as exc:
        raise SchemaError(f"env_options: {exc}") from exc


def _json_object(value: Mapping[str, Any] | None, name: str, root: Path) -> dict[str, Any]:
    """A JSON copy of a free-form mapping (what ``info.json`` will hold)."""
    try:
        copy: dict[str, Any] = json.loads(json.dumps(dict(value or {})))
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{root}: {name} must hold JSON values ({exc})") from exc
    return copy
