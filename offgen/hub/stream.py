"""Convert a published archive straight from its tar stream into offgen stores.

No member is written to disk: a reader thread streams the archive (``lzma`` releases the GIL while
it decodes) and reads each selected member into memory, within a byte budget; the main thread
parses it there (the zero-copy ``.npy`` walker, or ``zipfile`` on the bytes of an ``.npz``) and
hands the episode to its game's :class:`~offgen.data.writer.StoreWriter` with frames that are
views of those bytes, so the writer's compression threads decode (compiled kernel, GIL released)
and compress while the next members are decompressed. Every member passes the checks of
:func:`~offgen.hub.extract.iter_safe_members` first (no escapes, links, devices).

Episode order is archive order (``legacy_sources.txt`` lists it), not file-name order: sorting
would need every member before the first write. Resuming (``mode="append"``) streams the archive
again, checks that each committed episode matches its member's name (length and level seed) and
skips it without reading it. A bundle (one tar holding every game) converts the requested games
in one pass, one writer per game.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import tarfile
import threading
import time
import warnings
import zlib
from collections import deque
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offgen._allocator import tune_allocator
from offgen._io import atomic_write_bytes
from offgen.data.convert import SOURCES_FILE, ConvertResult, dataset_provenance
from offgen.data.format import EPISODES
from offgen.data.game_look import OpeningCheck
from offgen.data.legacy import LegacyName, open_legacy_episode
from offgen.data.schema import FRAME_SHAPE_HWC
from offgen.data.table import decode_records
from offgen.data.writer import StoreWriter, WriteMode
from offgen.errors import CorruptStoreError, SchemaError, StoreExistsError
from offgen.hub.extract import Member, iter_safe_members
from offgen.registry import DatasetSpec, resolve_dataset, resolve_game

__all__ = ["LOOKAHEAD_BYTES", "convert_archive", "estimate_store_bytes"]

LOOKAHEAD_BYTES = 512 << 20
"""Bytes of members read ahead of the writers (one larger member is still read alone)."""

_MAX_MEMBER = 1 << 31  # 2 GiB: ~40k float32 frames, far above any episode (as for .npz members)
_STORE_FRACTION = 20  # float32 -> uint8 is 4x, and frames compress >= 5x in every store measured


def estimate_store_bytes(unpacked: int, games: int = 1, games_in_archive: int = 1) -> int:
    """Disk a store converted from an archive needs, from the archive's unpacked size.

    Args:
        unpacked: Bytes of the tar stream (:func:`offgen.hub.extract.uncompressed_size`).
        games: Games converted from it.
        games_in_archive: Games it holds (16 for a bundle).
    """
    return unpacked * games // max(1, games_in_archive) // _STORE_FRACTION


@dataclass
class _Item:
    game: str
    member: str
    name: LegacyName
    data: memoryview | None  # None: committed already, skipped without reading


@dataclass
class _Game:
    writer: StoreWriter
    store: Path
    rows: Any  # the committed episode records (resume check)
    committed: int
    names: list[LegacyName] = field(default_factory=list)
    seen: set[tuple[int, int, int, float]] = field(default_factory=set)
    duplicates: list[str] = field(default_factory=list)
    look: OpeningCheck | None = None  # None with force


class _Reader(threading.Thread):
    """Streams the archive's members of the wanted games into a byte-bounded queue."""

    def __init__(self, archive: Path, skip: Mapping[str, int], budget: int) -> None:
        super().__init__(name="offgen-archive", daemon=True)
        self.archive = archive
        self.skip = dict(skip)
        self.budget = budget
        self.items: deque[_Item | BaseException | None] = deque()
        self.held = 0
        self.stop = False
        self.cond = threading.Condition()

    def run(self) -> None:
        try:
            self._stream()
            self._put(None, 0)
        except BaseException as exc:  # handed to the main thread, which raises it
            self._put(exc, 0)

    def _stream(self) -> None:
        seen: dict[str, int] = {}
        members = iter_safe_members(self.archive, select=self._select)
        last = None
        try:
            while (member := self._next(members, last)) is not None:
                last = member.name
                game, base = member.name.split("/", 1)
                try:
                    name = LegacyName.parse(base)
                except SchemaError as exc:
                    raise SchemaError(f"{self.archive}:{member.name}: {exc}") from exc
                seen[game] = seen.get(game, 0) + 1
                data = None
                if seen[game] > self.skip.get(game, 0):
                    data = self._read(member.name, member.size, member.stream)
                if not self._put(_Item(game, member.name, name, data), len(data or b"")):
                    return
        finally:
            members.close()

    def _next(self, members: Generator[Member, None, None], last: str | None) -> Member | None:
        try:
            return next(members, None)
        except CorruptStoreError as exc:
            where = f"after member {last!r}" if last else "before its first episode member"
            raise CorruptStoreError(f"{exc} (it fails {where})") from exc

    def _select(self, rel: str) -> str | None:
        parts = rel.split("/")
        for game in self.skip:
            if game in parts[:-1] and parts[-1].endswith((".npy", ".npz")):
                return f"{game}/{parts[-1]}"
        return None

    def _read(self, member: str, size: int, stream: Any) -> memoryview:
        where = f"{self.archive}: member {member!r}"
        if size > _MAX_MEMBER:
            raise CorruptStoreError(f"{where} claims {size} B, more than any episode file")
        with self.cond:  # wait for room (a member larger than the budget goes alone)
            while self.held and self.held + size > self.budget and not self.stop:
                self.cond.wait()
        # Not zero-filled first, as a bytearray would be (2.2 of the 8.2 s this thread, the one
        # stage that cannot be split, spent per 100k transitions): the read overwrites every byte.
        data = np.empty(size, dtype=np.uint8).data
        try:
            got = stream.readinto(data)
        except (tarfile.TarError, lzma.LZMAError, EOFError, zlib.error, OSError) as exc:
            raise CorruptStoreError(
                f"{where}: the archive is truncated or damaged ({type(exc).__name__}: {exc}). "
                "Delete it and download again."
            ) from exc
        if got != size:
            raise CorruptStoreError(f"{where}: cut short; the archive is truncated")
        return data

    def _put(self, item: _Item | BaseException | None, size: int) -> bool:
        with self.cond:
            if self.stop:
                return False
            self.items.append(item)
            self.held += size
            self.cond.notify_all()
            return True

    def get(self) -> _Item | None:
        """The next member (``None`` at the end); re-raises the reader's error."""
        with self.cond:
            while not self.items:
                self.cond.wait()
            item = self.items.popleft()
            if isinstance(item, _Item) and item.data is not None:
                self.held -= len(item.data)
                self.cond.notify_all()
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self) -> None:
        with self.cond:
            self.stop = True
            self.items.clear()
            self.cond.notify_all()


def _provenance(
    archive: Path, names: list[LegacyName] | None, spec: DatasetSpec | None, game: str
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "format": "predecessor per-episode files (.npz / pickled .npy), streamed from the archive",
        "source": str(archive.resolve()),
        "file_list": SOURCES_FILE,
        "order": "archive order",
    }
    if names is not None:
        source.update(
            files=len(names),
            first_file=names[0].format() if names else None,
            last_file=names[-1].format() if names else None,
        )
    prov: dict[str, Any] = {
        "converted_from": source,
        "final_frame": "row T is the next level's first frame (Procgen auto-reset)",
        "end_flags": "inferred: truncated when length == the game's max episode steps",
    }
    if spec is not None:
        prov["dataset"] = dataset_provenance(spec, game)
    return prov


def convert_archive(
    archive: str | os.PathLike[str],
    stores: Mapping[str, str | os.PathLike[str]],
    *,
    dataset: str | None = None,
    mode: WriteMode = "append",
    progress: bool = True,
    force: bool = False,
    lookahead_bytes: int = LOOKAHEAD_BYTES,
) -> dict[str, ConvertResult]:
    """Convert the episodes of ``archive`` into one store per game, without unpacking it.

    Args:
        archive: A published ``.tar.xz`` (one game) or ``.tar`` (a bundle of every game), holding
            ``[<prefix>/]<game>/<episode file>`` members.
        stores: Store directory for each game to convert (other games are skipped).
        dataset: Registered dataset name or alias (recorded, and gives the Procgen options).
        mode: ``"append"`` (default: create, or resume an interrupted conversion), ``"create"``
            or ``"overwrite"``.
        progress: Show a tqdm progress bar on stderr.
        force: Convert episodes longer than their game's time limit, or whose first frames look
            like another game (:mod:`offgen.data.game_look`), instead of refusing them.
        lookahead_bytes: Bound on the members read ahead of the writers.

    Returns:
        A summary per game.

    Raises:
        UnsafeFileError: A member is unsafe (escaping path, link, device) or pickles code.
        CorruptStoreError: The archive is truncated or damaged, or a member is malformed (the
            message names the archive and the member). Committed episodes stay; the store is
            not marked complete.
        SchemaError: A member is not a valid episode, or (without ``force``) is longer than its
            game allows, or the first frames of the first 16 episodes look like another game
            (the episodes before the refusal stay in the unfinished store).
        StoreExistsError: A resumed store holds episodes of other files.
    """
    started = time.perf_counter()
    tune_allocator()
    path = Path(archive)
    spec = resolve_dataset(dataset) if dataset is not None else None
    policy_id = f"legacy:{spec.name}" if spec is not None else "legacy"
    with contextlib.ExitStack() as stack:
        games: dict[str, _Game] = {}
        for game, store in stores.items():
            name = resolve_game(game).name
            state = _open(stack, path, Path(store), name, spec, mode, policy_id)
            state.look = None if force else OpeningCheck(name, str(path))
            games[name] = state
        _stream(path, games, policy_id, force, progress, lookahead_bytes)
        results: dict[str, ConvertResult] = {}
        for game, state in games.items():
            results[game] = _finish(path, game, state, spec, started)
    return results


def _open(
    stack: contextlib.ExitStack,
    archive: Path,
    store: Path,
    game: str,
    spec: DatasetSpec | None,
    mode: WriteMode,
    policy_id: str,
) -> _Game:
    writer = stack.enter_context(
        StoreWriter(
            store,
            game=game,
            mode=mode,
            dataset=spec.name if spec is not None else None,
            env_options=spec.env_options if spec is not None else {"distribution_mode": "easy"},
            provenance=_provenance(archive, None, spec, game),
            final_frame_is_true=False,
        )
    )
    writer.add_policy(
        policy_id,
        source="predecessor dataset",
        behaviour=spec.behaviour if spec is not None else "unknown",
    )
    committed = writer.num_episodes
    rows = None
    if committed:
        rows = decode_records(
            (store / EPISODES).read_bytes(), source=str(store / EPISODES), tolerate_torn_tail=True
        )
    return _Game(writer, store, rows, committed)


def _stream(
    archive: Path,
    games: dict[str, _Game],
    policy_id: str,
    force: bool,
    progress: bool,
    lookahead: int,
) -> None:
    from tqdm import tqdm

    reader = _Reader(archive, {g: s.committed for g, s in games.items()}, lookahead)
    bar = tqdm(
        unit="ep",
        desc=f"convert {','.join(games)}",
        disable=not progress,
        dynamic_ncols=True,
        total=None,
    )
    reader.start()
    try:
        while (item := reader.get()) is not None:
            _one(archive, games[item.game], item, policy_id, force)
            bar.update(1)
    finally:
        reader.cancel()
        reader.join()
        bar.close()


def _one(archive: Path, state: _Game, item: _Item, policy_id: str, force: bool) -> None:
    name = item.name
    key = (name.index, name.length, name.level_seed, name.episode_return)
    where = f"{archive}:{item.member}"
    if key in state.seen:
        state.duplicates.append(item.member)
        return
    state.seen.add(key)
    position = len(state.names)
    state.names.append(name)
    if position < state.committed:
        row = state.rows[position]
        if int(row["length"]) != name.length or int(row["level_seed"]) != name.level_seed:
            raise StoreExistsError(
                f"{state.store}: episode {position} (length {int(row['length'])}, level seed "
                f"{int(row['level_seed'])}) does not match {where}; the store was converted from "
                "other files. Use --overwrite to start over."
            )
        return
    assert item.data is not None
    limit = resolve_game(state.writer.game).max_episode_steps
    if not force and name.length > limit:
        raise SchemaError(
            f"{where}: {name.length} steps, longer than {state.writer.game}'s limit of {limit}, so "
            "not its data. Check the game, or pass force=True to convert it anyway."
        )
    episode, frames = open_legacy_episode(
        where, state.writer.game, policy_id=policy_id, data=item.data
    )
    if state.look is not None:
        first = np.empty((1, *FRAME_SHAPE_HWC), dtype=np.uint8)
        frames.fill(0, first)
        state.look.add(first[0], item.member)
    state.writer.write(episode, frames=frames)


def _finish(
    archive: Path, game: str, state: _Game, spec: DatasetSpec | None, started: float
) -> ConvertResult:
    if len(state.names) < state.committed:
        raise StoreExistsError(
            f"{state.store}: holds {state.committed} episodes but {archive} has only "
            f"{len(state.names)} for {game}; it was converted from other files. Use --overwrite "
            "(mode='overwrite') to start over."
        )
    if state.look is not None:
        state.look.finish()
    if not state.names:
        raise CorruptStoreError(
            f"{archive}: holds no episode files for game {game!r} (expected '{game}/<files>')"
        )
    if state.duplicates:
        warnings.warn(
            f"{archive}: {len(state.duplicates)} member(s) of {game} repeat an episode seen "
            f"earlier in the archive (same index, length, level seed and return), e.g. "
            f"{state.duplicates[0]}; converting the first copy of each",
            stacklevel=3,
        )
    writer = state.writer
    writer.flush()
    atomic_write_bytes(
        state.store / SOURCES_FILE, "".join(f"{n.format()}\n" for n in state.names).encode()
    )
    writer.update_info(provenance=_provenance(archive, state.names, spec, game))
    return ConvertResult(
        store=state.store,
        episodes=writer.num_episodes,
        transitions=writer.num_transitions,
        converted=writer.num_episodes - state.committed,
        skipped=state.committed,
        seconds=time.perf_counter() - started,
        duplicates=tuple(state.duplicates),
    )
