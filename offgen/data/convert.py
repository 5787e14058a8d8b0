"""Convert a folder of the predecessor's episode files into an offgen store.

Files are opened in episode-index order (see :func:`offgen.data.legacy.find_legacy_files`) by a
small thread pool (``.npz`` inflation releases the GIL; a ``.npy`` file is only memory-mapped) while
the main thread hands the episodes to :class:`~offgen.data.writer.StoreWriter`. Frames are not decoded
there: each episode goes in with its :class:`~offgen.data.legacy.LegacyFrames`, and the writer's
compression threads decode them (cast to uint8, exactness check, CHW -> HWC) straight into the chunk
buffer they then compress, while the data is still in cache. Compared with decoding each episode into
its own array and copying it into the writer, this saves a copy of every frame and ~13% of the CPU
time. Episodes of at most ~8k frames wait for the writer (at most ~400 MB of inflated ``.npz``
floats; mapped ``.npy`` pages are page cache), so memory does not grow with the dataset.

Checks before anything is written (each skipped with ``force``): no episode may be longer than
the game's time limit, and the first frames of up to 16 files spread over the folder must not look
like another game (:mod:`offgen.data.game_look`; at least half of them must, to refuse).

Resuming: the writer commits episodes as it goes; rerunning with ``mode="append"`` (CLI
``--resume``) checks that the committed episodes match the first files (length and level seed from
their names) and continues with the next file.

Provenance: ``info.json`` records the source folder, the file count and first / last names, and the
store holds ``legacy_sources.txt``: the source file name of every episode, one per line, in episode
order.

offgen's own ``.npz`` output (``offgen-collect --format npz``) has a sidecar,
``offgen-collect.json`` (:mod:`offgen.data.collect_sidecar`): its Procgen options (level range
included) become the store's ``env``, its policy ids the episodes' policy, and the store is marked
as holding true final frames, as the collector's files do.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offgen._allocator import tune_allocator
from offgen._io import atomic_write_bytes
from offgen._progress import progress_bar
from offgen.data.collect_sidecar import CollectSidecar, read_collect_sidecar
from offgen.data.format import EPISODES, INFO
from offgen.data.game_look import check_game_look
from offgen.data.info import read_info
from offgen.data.labels import DataFacts, check_label
from offgen.data.legacy import LegacyFrames, LegacyName, find_legacy_files, open_legacy_episode
from offgen.data.legacy.frames import decode_into
from offgen.data.legacy.names import split_duplicates
from offgen.data.legacy.npz import load_npz_first_frame
from offgen.data.lock import StoreLock
from offgen.data.schema import FRAME_SHAPE_HWC, Episode
from offgen.data.table import decode_records
from offgen.data.writer import StoreWriter, WriteMode
from offgen.errors import OffgenError, SchemaError, StoreExistsError
from offgen.registry import DatasetSpec, resolve_dataset, resolve_game

__all__ = ["SOURCES_FILE", "ConvertResult", "convert_legacy"]

_LOOKAHEAD_FRAMES = 8192  # frames of opened files waiting for the writer
_FRAMES_CHECKED = 16  # files whose first frame is checked against the game (half must disagree)

SOURCES_FILE = "legacy_sources.txt"
"""File in a converted store listing each episode's source file name, in episode order."""


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert_legacy` did.

    Attributes:
        store: The store directory.
        episodes: Episodes in the store after the conversion.
        transitions: Steps in the store after the conversion.
        converted: Episodes converted by this call.
        skipped: Episodes already present (resumed conversion).
        seconds: Wall time of this call.
        duplicates: Source files not converted because another file holds the same episode
            (see :func:`offgen.data.legacy.names.split_duplicates`).
    """

    store: Path
    episodes: int
    transitions: int
    converted: int
    skipped: int
    seconds: float
    duplicates: tuple[str, ...] = ()


def _check_resume(store: Path, names: list[LegacyName], committed: int) -> None:
    if committed > len(names):
        raise StoreExistsError(
            f"{store}: holds {committed} episodes but the source has only {len(names)} files; it "
            "was converted from other files. Use --overwrite (mode='overwrite') to start over."
        )
    rows = decode_records(
        (store / EPISODES).read_bytes(), source=str(store / EPISODES), tolerate_torn_tail=True
    )
    for i in range(min(committed, len(rows))):
        row, name = rows[i], names[i]
        if int(row["length"]) != name.length or int(row["level_seed"]) != name.level_seed:
            raise StoreExistsError(
                f"{store}: episode {i} (length {int(row['length'])}, level seed "
                f"{int(row['level_seed'])}) does not match source file {name.format()}; the store "
                "was converted from other files. Use --overwrite to start over."
            )


def _provenance(
    source: Path,
    names: list[LegacyName],
    spec: DatasetSpec | None,
    game: str,
    sidecar: CollectSidecar | None,
) -> dict[str, Any]:
    prov: dict[str, Any] = {
        "converted_from": {
            "format": "predecessor per-episode files (.npz / pickled .npy)",
            "source": str(source.resolve()),
            "files": len(names),
            "first_file": names[0].format() if names else None,
            "last_file": names[-1].format() if names else None,
            "file_list": SOURCES_FILE,
            "order": "file-name index, then timestamp",
        },
        "final_frame": "row T is the next level's first frame (Procgen auto-reset)",
        "end_flags": "inferred: truncated when length == the game's max episode steps",
    }
    if sidecar is not None:
        prov["converted_from"]["format"] = "offgen-collect --format npz (.npz per episode)"
        prov["converted_from"]["sidecar"] = str(sidecar.path.resolve())
        prov["collection"] = sidecar.collection
        prov["final_frame"] = "row T is the true final frame (collected by offgen)"
    if spec is not None:
        prov["dataset"] = dataset_provenance(spec, game)
    return prov


def dataset_provenance(spec: DatasetSpec, game: str) -> dict[str, Any]:
    """What a converted store records about the registered dataset it was converted from."""
    return {
        "name": spec.name,
        "legacy_category": spec.legacy_category,
        "behaviour": spec.behaviour,
        "urls": [s.url for s in spec.sources(game)],
    }


def _check_label(
    spec: DatasetSpec | None, names: list[LegacyName], game: str, source: Path, force: bool
) -> list[str]:
    """Refuse (unless ``force``) to label files ``spec`` when their names contradict it."""
    if spec is None:
        return []
    facts = DataFacts(
        game=game,
        transitions=sum(n.length for n in names),
        level_seeds=sorted({n.level_seed for n in names}),
        final_frame_is_true=False,  # the predecessor's files end with the next level's frame
    )
    return check_label(spec, facts, where=str(source), force=force)


def convert_legacy(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    game: str,
    dataset: str | None = None,
    mode: WriteMode = "create",
    workers: int = 2,
    progress: bool = True,
    on_episode: Callable[[int], None] | None = None,
    force: bool = False,
    wait_for_lock: bool = False,
) -> ConvertResult:
    """Stream a folder of legacy episode files into an offgen store.

    Args:
        source: Folder of ``.npz`` / ``.npy`` files, or an extracted archive holding ``<game>/``.
        destination: Store directory to create (or resume with ``mode="append"``).
        game: The game of the files.
        dataset: Registered dataset name or alias the files belong to (recorded in the store and
            used for its Procgen options); ``None`` for other data.
        mode: ``"create"``, ``"append"`` (resume an interrupted conversion) or ``"overwrite"``.
        workers: Threads opening (and, for ``.npz``, inflating) files ahead of the writer.
        progress: Show a progress bar on stderr (live on a terminal, one line in a log).
        on_episode: Called with the episode count after each written episode (tests, UIs).
        force: Convert episodes longer than ``game``'s time limit, or whose first frames look like
            another game (:mod:`offgen.data.game_look`), instead of refusing them, and
            label the files ``dataset`` even though their level seeds or size contradict it
            (recorded in the store's provenance as ``label_forced``; cards flag it).
        wait_for_lock: If another process is writing ``destination``, wait for it to finish
            instead of raising :class:`~offgen.errors.StoreLockedError`.

    Returns:
        A summary of the conversion.

    Raises:
        DatasetLabelError: The files cannot be ``dataset`` (level seeds outside its levels, more
            transitions than it has) and ``force`` is false; nothing is written.
        StoreExistsError: ``destination`` holds a store and ``mode`` is ``"create"``, or a resumed
            store does not match the source files.
        StoreLockedError: Another process is writing ``destination`` (and not ``wait_for_lock``).
        UnsafeFileError, CorruptStoreError, SchemaError: A source file is unsafe, damaged or
            malformed (the message names it). Committed episodes stay; fix or remove the file and
            rerun with ``mode="append"``. A store left without any episode by a refused run is
            replaced by the next ``mode="create"`` run (it holds nothing to keep).
        SchemaError: A file name says an episode is longer than ``game`` allows, or at least
            half of the checked first frames (up to 16 files) look like another game (the files
            are another game's; nothing is written), unless ``force``.

    Files that repeat an episode already present under another name are skipped with a warning
    (:class:`UserWarning`) and listed in :attr:`ConvertResult.duplicates`.
    """
    started = time.perf_counter()
    tune_allocator()  # decoded episodes reuse heap memory instead of faulting in fresh pages
    game_spec = resolve_game(game)
    spec = resolve_dataset(dataset) if dataset is not None else None
    src = Path(source)
    files, duplicates = split_duplicates(find_legacy_files(src, game_spec.name))
    if duplicates:
        dropped, kept = duplicates[0]
        warnings.warn(
            f"{src}: {len(duplicates)} file(s) repeat an episode present under another name (same "
            f"index, length, level seed and return), e.g. {dropped.name} repeats {kept.name}; "
            "converting one copy of each (the .npz, else the earliest)",
            stacklevel=2,
        )
    if not force:
        _check_lengths(src, files, game_spec.name, game_spec.max_episode_steps)
        _check_frames(src, files, game_spec.name)
    forced = _check_label(spec, [name for name, _ in files], game_spec.name, src, force)
    store = Path(destination)
    with StoreLock(store, wait=wait_for_lock) as lock:
        if mode == "create" and _empty_unfinished(store):
            mode = "overwrite"  # a refused run's empty store holds nothing to keep or resume
        return _convert(
            store, lock, files, duplicates, game_spec.name, spec, forced, src, mode, workers,
            progress, on_episode, started,
        )  # fmt: skip


def _convert(
    store: Path,
    lock: StoreLock,
    files: list[tuple[LegacyName, Path]],
    duplicates: Sequence[tuple[Path, Path]],
    game: str,
    spec: DatasetSpec | None,
    forced: list[str],
    src: Path,
    mode: WriteMode,
    workers: int,
    progress: bool,
    on_episode: Callable[[int], None] | None,
    started: float,
) -> ConvertResult:
    """Write the files' episodes into ``store`` (whose lock the caller holds); ``forced`` lists
    the contradictions of a label given with ``force`` (recorded in the provenance)."""
    names = [name for name, _ in files]
    game_spec = resolve_game(game)
    sidecar = read_collect_sidecar(files[0][1].parent, game_spec.name)
    policy_id, policy_meta = _policy(spec, sidecar)
    env_options = spec.env_options if spec is not None else {"distribution_mode": "easy"}
    with StoreWriter(
        store,
        game=game_spec.name,
        mode=mode,
        dataset=spec.name if spec is not None else None,
        env_options=sidecar.env if sidecar is not None else env_options,
        provenance=_provenance(src, names, spec, game_spec.name, sidecar),
        final_frame_is_true=sidecar is not None,
        lock=lock,
    ) as writer:
        skipped = writer.num_episodes
        _check_resume(store, names, skipped)
        writer.add_policy(policy_id, **policy_meta)
        todo = [(path, name.length + 1) for name, path in files[skipped:]]
        _run(writer, todo, game_spec.name, policy_id, workers, progress, skipped, on_episode)
        atomic_write_bytes(store / SOURCES_FILE, "".join(f"{n.format()}\n" for n in names).encode())
        provenance = _provenance(src, names, spec, game_spec.name, sidecar)
        if forced:
            provenance["label_forced"] = forced
        writer.update_info(provenance=provenance)
        episodes, transitions = writer.num_episodes, writer.num_transitions
    return ConvertResult(
        store=store,
        episodes=episodes,
        transitions=transitions,
        converted=episodes - skipped,
        skipped=skipped,
        seconds=time.perf_counter() - started,
        duplicates=tuple(path.name for path, _kept in duplicates),
    )


def _check_lengths(
    source: Path, files: list[tuple[LegacyName, Path]], game: str, limit: int
) -> None:
    too_long = [(name, path) for name, path in files if name.length > limit]
    if too_long:
        name, path = max(too_long, key=lambda item: item[0].length)
        raise SchemaError(
            f"{source}: {len(too_long)} of {len(files)} episodes are longer than {game}'s limit of "
            f"{limit} steps (e.g. {path.name}: {name.length} steps), so they are not {game} data. "
            "Check --game, or pass --force (force=True) to convert them anyway."
        )


def _check_frames(source: Path, files: list[tuple[LegacyName, Path]], game: str) -> None:
    """Refuse files whose first frames look like another game (:mod:`offgen.data.game_look`).

    Only the first frame of up to :data:`_FRAMES_CHECKED` files, spread over the folder, is read:
    a ``.npy`` file's frame is one ``pread``; of a ``.npz`` file only the start of its
    ``observations`` member is inflated (:func:`~offgen.data.legacy.npz.load_npz_first_frame`).
    """
    step = max(1, len(files) // _FRAMES_CHECKED)
    sample = [path for _name, path in files[::step][:_FRAMES_CHECKED]]
    first = np.empty((len(sample), *FRAME_SHAPE_HWC), dtype=np.uint8)
    checked: list[str] = []
    for path in sample:
        out = first[len(checked) : len(checked) + 1]
        try:
            if path.suffix == ".npz":
                decode_into(load_npz_first_frame(path), out, path)
            else:
                _episode, frames = open_legacy_episode(path, game)
                frames.fill(0, out)
        except OffgenError:
            continue  # an unreadable file is named by the conversion, in order, as before
        checked.append(path.name)
    check_game_look(first[: len(checked)], checked, game, where=str(source))


def _empty_unfinished(store: Path) -> bool:
    """Whether ``store`` is an unfinished store without a committed episode (what a run refused
    before its first episode leaves; kept so that it reads as unfinished, not as nothing)."""
    table = store / EPISODES
    if not ((store / INFO).is_file() and table.is_file() and table.stat().st_size == 0):
        return False
    return read_info(store).status == "writing"


def _policy(spec: DatasetSpec | None, sidecar: CollectSidecar | None) -> tuple[str, dict[str, Any]]:
    """The policy id of the converted episodes and its ``policies.json`` metadata."""
    if sidecar is None:
        policy_id = f"legacy:{spec.name}" if spec is not None else "legacy"
        behaviour = spec.behaviour if spec is not None else "unknown"
        return policy_id, {"source": "predecessor dataset", "behaviour": behaviour}
    meta: dict[str, Any] = {"source": f"offgen-collect ({sidecar.path.name})"}
    if len(sidecar.policy_ids) > 1:
        meta["policies"] = list(sidecar.policy_ids)
        meta["behaviour"] = (
            "episodes of these policies; the .npz files do not record which policy played which "
            "(collect into an offgen store to keep it per episode)"
        )
    return sidecar.policy_id, meta


def _run(
    writer: StoreWriter,
    todo: list[tuple[Path, int]],
    game: str,
    policy_id: str,
    workers: int,
    progress: bool,
    skipped: int,
    on_episode: Callable[[int], None] | None,
) -> None:
    def read(path: Path) -> tuple[Episode, LegacyFrames]:
        return open_legacy_episode(path, game, policy_id=policy_id)

    bar = progress_bar(
        total=len(todo) + skipped,
        initial=skipped,
        unit="ep",
        desc=f"convert {game}",
        enabled=progress,
        dynamic_ncols=True,
    )
    threads = max(1, workers)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="offgen-open") as pool:
        pending: deque[tuple[Future[tuple[Episode, LegacyFrames]], int]] = deque()
        waiting_frames = 0
        try:
            for path, frames in todo:
                pending.append((pool.submit(read, path), frames))
                waiting_frames += frames
                # Decode ahead while the writer compresses, within a bounded number of frames.
                while len(pending) > threads and waiting_frames > _LOOKAHEAD_FRAMES:
                    waiting_frames -= _write_next(writer, pending, bar, on_episode)
            while pending:
                _write_next(writer, pending, bar, on_episode)
        finally:
            for future, _ in pending:
                future.cancel()
            bar.close()


def _write_next(
    writer: StoreWriter,
    pending: deque[tuple[Future[tuple[Episode, LegacyFrames]], int]],
    bar: Any,
    on_episode: Callable[[int], None] | None,
) -> int:
    future, count = pending.popleft()
    episode, frames = future.result()
    writer.write(episode, frames=frames)
    bar.update(1)
    # A string: tqdm prints round numbers as "3e+4".
    bar.set_postfix(transitions=f"{writer.num_transitions:,}", refresh=False)
    if on_episode is not None:
        on_episode(writer.num_episodes)
    return count
