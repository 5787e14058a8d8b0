"""Where collected episodes go: an offgen store (default) or the predecessor's ``.npz`` files.

Both sinks report how many episodes and steps are already committed (for resume), write episodes
in order, and keep the collector's journal on disk before anything is committed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from offgen._io import atomic_write_json
from offgen.collect.journal import Journal
from offgen.data.collect_sidecar import COLLECT_SIDECAR
from offgen.data.format import INFO
from offgen.data.info import read_info
from offgen.data.legacy import LegacyName, write_npz_episode
from offgen.data.lock import StoreLock
from offgen.data.schema import Episode
from offgen.data.writer import StoreWriter
from offgen.errors import CorruptStoreError

__all__ = [
    "NPZ_STATE",
    "NpzSink",
    "OutputFormat",
    "Sink",
    "StoreSink",
    "existing_collection",
]

OutputFormat = Literal["offgen", "npz"]
NPZ_STATE = COLLECT_SIDECAR  # read back by `offgen convert` (offgen.data.collect_sidecar)


class Sink(Protocol):
    """What the collector writes through."""

    committed_episodes: int
    committed_steps: int

    def write(self, episode: Episode, journal: Journal) -> None:
        """Write one episode (after its journal record was appended)."""
        ...

    def flush(self, journal: Journal) -> None:
        """Commit everything written so far."""
        ...

    def finish(self, info: Mapping[str, Any]) -> None:
        """Commit, record ``info`` (recipe, results) and mark the output complete."""
        ...

    def abort(self) -> None:
        """Commit what was written and leave the output resumable."""
        ...


def existing_collection(output: Path, fmt: OutputFormat) -> tuple[dict[str, Any] | None, bool]:
    """The collection settings recorded in ``output`` (if any) and whether it is complete.

    Raises:
        CorruptStoreError: If the recorded settings cannot be read.
    """
    if fmt == "offgen":
        if not (output / INFO).exists():
            return None, False
        info = read_info(output)
        config = info.provenance.get("collection")
        return (config if isinstance(config, dict) else {}), info.complete
    state = output / NPZ_STATE
    if not state.exists():
        return None, False
    try:
        data = json.loads(state.read_bytes())
    except ValueError as exc:
        raise CorruptStoreError(
            f"{state}: unreadable ({exc}); delete the folder to start over"
        ) from exc
    return data.get("collection", {}), data.get("status") == "complete"


class StoreSink:
    """Write into an offgen store with :class:`~offgen.data.StoreWriter` (resumable)."""

    def __init__(
        self,
        path: Path,
        *,
        game: str,
        env_options: Mapping[str, Any],
        provenance: Mapping[str, Any],
        dataset: str | None,
        policies: list[tuple[str, Mapping[str, Any]]],
        lock: StoreLock,
    ) -> None:
        # The collector commits on its own schedule (after syncing its journal), and holds the
        # store's lock itself (it reads its journal in the store before this writer opens).
        self.writer = StoreWriter(
            path,
            game=game,
            mode="append",
            dataset=dataset,
            env_options=env_options,
            provenance=provenance,
            commit_interval_s=float("inf"),
            lock=lock,
        )
        for policy_id, metadata in policies:
            self.writer.add_policy(policy_id, **metadata)
        self.committed_episodes = self.writer.num_episodes
        self.committed_steps = self.writer.num_transitions
        self._shard = self.writer.info.codec.shard_frames

    def write(self, episode: Episode, journal: Journal) -> None:
        """Buffer the episode; sync the journal first if this write fills a shard (a commit)."""
        frames = self.writer.num_transitions + self.writer.num_episodes
        if frames % self._shard + episode.length + 1 >= self._shard:
            journal.sync()
        self.writer.write(episode)

    def flush(self, journal: Journal) -> None:
        """Sync the journal, then commit buffered episodes."""
        journal.sync()
        self.writer.flush()

    def finish(self, info: Mapping[str, Any]) -> None:
        """Record ``info`` fields (e.g. ``recipe``) and finalize the store."""
        if info:
            self.writer.update_info(**dict(info))
        self.writer.close(finalize=True)

    def abort(self) -> None:
        """Commit and leave the store resumable."""
        self.writer.close(finalize=False)


class NpzSink:
    """One ``np.savez_compressed`` file per episode, in the predecessor's naming and layout."""

    def __init__(self, directory: Path, *, collection: Mapping[str, Any]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._collection = dict(collection)
        # A run killed inside an atomic write leaves its temp file (a partial episode, hidden and
        # never counted); drop it as the store writer drops its own, so the resumed folder holds
        # only the episode files.
        for pattern in (".*.npz.tmp-*", f".{NPZ_STATE}.tmp-*"):
            for leftover in directory.glob(pattern):
                leftover.unlink(missing_ok=True)
        names = sorted(
            (LegacyName.parse(p.name) for p in directory.glob("*.npz")), key=lambda n: n.index
        )
        if [n.index for n in names] != list(range(len(names))):
            raise CorruptStoreError(
                f"{directory}: episode files are not numbered 0..{len(names) - 1}; the folder was "
                "changed by hand. Collect into a new folder."
            )
        self.committed_episodes = len(names)
        self.committed_steps = sum(n.length for n in names)
        self._next = len(names)
        state = directory / NPZ_STATE
        if not state.exists():
            atomic_write_json(state, {"status": "writing", "collection": self._collection})

    def write(self, episode: Episode, journal: Journal) -> None:
        """Sync the journal, then write the episode's file atomically."""
        journal.sync()
        write_npz_episode(self.directory, episode, self._next)
        self._next += 1

    def flush(self, journal: Journal) -> None:
        """Files are complete when written; only the journal needs syncing."""
        journal.sync()

    def finish(self, info: Mapping[str, Any]) -> None:
        """Mark the folder complete and record ``info`` in ``offgen-collect.json``."""
        atomic_write_json(
            self.directory / NPZ_STATE,
            {"status": "complete", "collection": self._collection, **dict(info)},
        )

    def abort(self) -> None:
        """Nothing is buffered."""
