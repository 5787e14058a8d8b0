"""``offgen-download``: fetch, verify, unpack and convert the published archives.

Layout under the output folder (default ``$OFFGEN_HOME/datasets``), one folder per dataset so
categories never mix::

    <output>/<dataset>/offgen.lock.json          sizes + sha256 of verified archives, hub commits
    <output>/<dataset>/archives/<scheme>/<file>  downloaded archives (``*.part`` while incomplete)
    <output>/<dataset>/<game>/                   the offgen store (``--format offgen``, default)
    <output>/<dataset>/legacy/<game>/            unpacked predecessor files (``--format legacy``)

Per game, under a per-game file lock (a second process waits, then reuses the result):
download (resuming), check against the lockfile, convert straight from the archive stream
(:mod:`offgen.hub.stream`; ``--format legacy`` unpacks safely instead), verify the store, record
the archive in the lockfile (so a truncated or corrupt archive is never pinned), then, with
``clear_archives``, delete the archive. A bundle archive (one ``.tar`` holding all 16 games, the
100k datasets) is deleted only once every game in it is present, whichever run fetched them. Every
step is skipped when its result is already there, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

from offgen._io import atomic_write_json
from offgen._progress import progress_bar
from offgen.errors import ChecksumError, CorruptStoreError, DownloadError, OffgenError
from offgen.hub.extract import check_free_space, safe_extract, uncompressed_size
from offgen.hub.http import RetryPolicy, download_file, remote_size
from offgen.hub.lockfile import Lockfile
from offgen.hub.mirrors import ArchiveSource, archive_sources
from offgen.registry import GAMES, DatasetSpec, resolve_dataset, resolve_game

__all__ = [
    "ArchiveFormat",
    "GameResult",
    "default_output",
    "download_dataset",
    "estimate_size",
    "format_bytes",
    "store_path",
    "verify_archives",
]

ArchiveFormat = Literal["offgen", "legacy"]
_UNPACKED_MARKER = ".offgen-unpacked.json"


def default_output() -> Path:
    """``$OFFGEN_HOME/datasets``: where ``offgen.load`` finds registered datasets."""
    from offgen.paths import datasets_root

    return datasets_root()


def store_path(output: Path, dataset: str, game: str, fmt: ArchiveFormat = "offgen") -> Path:
    """Where ``game`` of ``dataset`` lands under ``output`` in format ``fmt``."""
    root = output / dataset
    return root / game if fmt == "offgen" else root / "legacy" / game


def format_bytes(n: float | None) -> str:
    """Human-readable size (``None`` -> ``"unknown size"``)."""
    if n is None:
        return "unknown size"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@dataclass(frozen=True)
class GameResult:
    """Outcome for one game.

    Attributes:
        game: The game.
        path: The store (offgen format) or the folder of unpacked files (legacy format).
        status: ``"downloaded"`` or ``"present"`` (found complete, nothing fetched).
        archive: The archive used (``None`` when already present).
        url: The mirror that served it.
        bytes: Archive size.
    """

    game: str
    path: Path
    status: str
    archive: Path | None = None
    url: str | None = None
    bytes: int = 0


@dataclass
class _Run:
    spec: DatasetSpec
    root: Path
    fmt: ArchiveFormat
    clear_archives: bool
    base_url: str | Sequence[str] | None
    policy: RetryPolicy
    progress: bool
    log: Callable[[str], None]
    lockfile: Lockfile
    force: bool = False
    overall: Any = None
    on_progress: Callable[[int, int], None] | None = None
    done_bytes: int = 0
    total_bytes: int = 0
    slots: list[int] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def account(self, done: int = 0, total: int = 0) -> None:
        """Add to the overall bytes done / expected (the overall bar and ``on_progress``)."""
        with self.guard:
            self.done_bytes += done
            self.total_bytes += total
            if self.overall is not None:
                if total:
                    self.overall.total = self.total_bytes
                if done:
                    self.overall.update(done)
                elif total:
                    self.overall.refresh()
            if self.on_progress is not None:
                self.on_progress(self.done_bytes, self.total_bytes)


def estimate_size(
    dataset: str, game: str, base_url: str | Sequence[str] | None = None
) -> tuple[str | None, int | None]:
    """The first reachable archive for (``dataset``, ``game``) and its size (HEAD requests)."""
    spec = resolve_dataset(dataset)
    for source in archive_sources(spec, resolve_game(game).name, base_url):
        size = remote_size(source.url, timeout_s=15)
        if size is not None:
            return source.url, size
    return None, None


@contextlib.contextmanager
def _locked(path: Path, what: str, log: Callable[[str], None]) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"waiting for another offgen process working on {what} (lock {path})")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _is_done(run: _Run, game: str, fmt: ArchiveFormat | None = None) -> bool:
    fmt = fmt or run.fmt
    target = store_path(run.root.parent, run.spec.name, game, fmt)
    if fmt == "legacy":
        return _legacy_complete(target)
    from offgen.data.info import read_info  # kept lazy: the hub does not load offgen.data

    if not (target / "info.json").is_file():
        return False
    try:
        return read_info(target).complete
    except OffgenError:  # a damaged store is downloaded again
        return False


def _legacy_complete(folder: Path) -> bool:
    try:
        marker = json.loads((folder / _UNPACKED_MARKER).read_bytes())
    except (OSError, ValueError):
        return False
    files: dict[str, int] = marker.get("files", {})
    for name, size in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def _select_game(game: str) -> Callable[[str], str | None]:
    """Map an archive member to ``<game>/<file>`` if it belongs to ``game``."""

    def select(rel: str) -> str | None:
        parts = rel.split("/")
        if game in parts[:-1]:
            return "/".join(parts[parts.index(game) :])
        return None

    return select


def _obtain_archive(run: _Run, game: str) -> tuple[Path, ArchiveSource, int, str]:
    failures: list[str] = []
    for source in archive_sources(run.spec, game, run.base_url):
        path = run.root / "archives" / source.scheme / source.filename
        with _locked(path.with_name(f".{path.name}.lock"), str(path), run.log):
            if not path.is_file():
                try:
                    _fetch(run, source, path)
                except DownloadError as exc:
                    failures.append(str(exc).split("\n", 1)[1].rsplit("\n", 1)[0])
                    continue
            size, digest = run.lockfile.check(source.key, path)
            return path, source, size, digest
    raise DownloadError(
        f"no mirror delivered {run.spec.name}/{game}:\n"
        + "\n".join(failures)
        + "\nCheck --base-url / OFFGEN_BASE_URL and your connection; rerun to resume."
    )


def _fetch(run: _Run, source: ArchiveSource, path: Path) -> None:
    with run.guard:
        slot = run.slots.pop(0) if run.slots else 1
    bar = progress_bar(
        desc=f"{source.filename}",
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        position=slot,
        leave=False,
        enabled=run.progress,
        dynamic_ncols=True,
    )

    # This file's share of the overall bar. download_file reports the total on every attempt
    # (retries, resumes) and bytes as a running sum of what the .part file holds (negative when
    # it discards bytes), so the share is replaced, never added again, and the bytes a .part
    # from an earlier run already holds count as done from the start.
    share = {"total": 0, "done": 0}

    def on_total(total: int) -> None:
        bar.total = total
        bar.refresh()
        delta, share["total"] = total - share["total"], total
        if delta:
            run.account(total=delta)

    def on_bytes(n: int) -> None:
        bar.update(n)
        share["done"] += n
        run.account(done=n)

    part = path.with_name(path.name + ".part")
    on_disk = part.stat().st_size if part.is_file() else 0
    if on_disk:
        on_bytes(on_disk)
    try:
        result = download_file(
            [source.url], path, policy=run.policy, progress=on_bytes, on_total=on_total
        )
        run.log(f"downloaded {source.filename} ({format_bytes(result.size)}) from {result.url}")
    except BaseException:
        # Not delivered by this mirror: take its share out again (the next mirror brings its own;
        # the .part file stays for a rerun, which counts it then).
        run.account(done=-share["done"], total=-share["total"])
        raise
    finally:
        bar.close()
        with run.guard:
            run.slots.append(slot)


def _unpack(run: _Run, archive: Path, game: str, dest_root: Path) -> None:
    target = dest_root / game
    if target.exists():
        shutil.rmtree(target)  # an earlier run stopped half-way; unpack again from the archive
    try:
        files = safe_extract(archive, dest_root, select=_select_game(game))
    except CorruptStoreError as exc:
        raise CorruptStoreError(
            f"{exc} (archive {archive}: delete it and rerun to download it again)"
        ) from exc
    if not files:
        raise CorruptStoreError(
            f"{archive}: holds no files for game {game!r} (expected '{game}/<episode files>')"
        )
    marker = {
        "archive": archive.name,
        "files": {p.name: p.stat().st_size for p in files},
    }
    atomic_write_json(target / _UNPACKED_MARKER, marker)


def _convert(run: _Run, legacy_folder: Path, store: Path, game: str) -> None:
    from offgen.data.convert import convert_legacy
    from offgen.data.store import OffgenStore

    convert_legacy(
        legacy_folder,
        store,
        game=game,
        dataset=run.spec.name,
        mode="append",
        workers=2,
        progress=run.progress,
    )
    OffgenStore(store).verify()


def _bundle_first(run: _Run, game: str) -> bool:
    """The first mirror of ``game`` is a bundle holding every game (the 100k datasets)."""
    sources = archive_sources(run.spec, game, run.base_url)
    return bool(sources) and sources[0].all_games


def _release_archive(run: _Run, archive: Path, source: ArchiveSource) -> None:
    if not run.clear_archives or source.all_games:
        return  # a bundle serves every game: _clear_bundles decides once the run is over
    archive.unlink(missing_ok=True)
    run.log(f"deleted {archive} (contents unpacked and verified)")


def _game_present(run: _Run, game: str) -> bool:
    """``game`` is unpacked (legacy) or converted (offgen) and verified, in either format."""
    return _is_done(run, game, "offgen") or _is_done(run, game, "legacy")


def _clear_bundles(run: _Run) -> None:
    """With ``clear_archives``: delete each bundle archive (one file holding every game) present
    in the dataset folder once every game the registry says it holds is unpacked or converted and
    verified, in either format; otherwise keep it, saying which games still need it.

    A bundle is the only copy of the games not fetched yet (the 100k datasets publish all 16 in
    one ``.tar``), so deleting it after a subset of games would force a full download again later.
    """
    bundles: dict[Path, ArchiveSource] = {}
    for source in archive_sources(run.spec, next(iter(GAMES)), run.base_url):
        if source.all_games:
            bundles.setdefault(run.root / "archives" / source.scheme / source.filename, source)
    for path in sorted(bundles):
        with _locked(path.with_name(f".{path.name}.lock"), str(path), run.log):
            if not path.is_file():
                continue
            missing = [g for g in GAMES if not _game_present(run, g)]
            if missing:
                run.log(
                    f"kept {path}: it holds all {len(GAMES)} games and {len(missing)} are not "
                    f"unpacked or converted yet ({', '.join(missing)}). It is deleted by the first "
                    "--clear-archives run after which every game is present (e.g. --games "
                    f"{','.join(missing)} --clear-archives); delete it by hand if you do not "
                    "want those games."
                )
                continue
            path.unlink()
            run.log(f"deleted {path} (all {len(GAMES)} games it holds are unpacked and verified)")


def _one_game(run: _Run, game: str) -> GameResult:
    with _locked(
        run.root / ".locks" / f"{game}.{run.fmt}.lock", f"{run.spec.name}/{game}", run.log
    ):
        return _process_game(run, game)


def _process_game(run: _Run, game: str) -> GameResult:
    """Fetch and unpack or convert ``game`` (its lock held)."""
    target = store_path(run.root.parent, run.spec.name, game, run.fmt)
    if _is_done(run, game):
        run.log(f"{run.spec.name}/{game}: already present at {target}")
        return GameResult(game, target, "present")
    archive, source, size, digest = _obtain_archive(run, game)
    if run.fmt == "legacy":
        _unpack(run, archive, game, target.parent)
    else:
        staging = run.root / ".unpacked"
        if _legacy_complete(staging / game):  # unpacked by an earlier offgen version: use it
            _convert(run, staging / game, target, game)
            shutil.rmtree(staging / game)
        else:
            _stream_convert(run, archive, source, [game])
    # Pinned only now: a truncated or damaged archive fails above and is never recorded.
    run.lockfile.record(source.key, size, digest, source.url)
    _release_archive(run, archive, source)
    return GameResult(game, target, "downloaded", archive, source.url, size)


def _stream_convert(run: _Run, archive: Path, source: ArchiveSource, games: list[str]) -> None:
    """Convert ``games`` from ``archive``'s stream in one pass, then verify each store."""
    from offgen.data.store import OffgenStore
    from offgen.hub.stream import convert_archive, estimate_store_bytes

    try:
        needed = estimate_store_bytes(
            uncompressed_size(archive), len(games), len(GAMES) if source.all_games else 1
        )
        check_free_space(run.root, needed, what=f"converting {archive.name}")
        stores = {g: store_path(run.root.parent, run.spec.name, g) for g in games}
        convert_archive(
            archive, stores, dataset=run.spec.name, progress=run.progress, force=run.force
        )
    except CorruptStoreError as exc:
        raise CorruptStoreError(
            f"{exc} (archive {archive}: delete it and rerun to download it again)"
        ) from exc
    for store in stores.values():
        # Every file against the sha256 the writer recorded over the bytes it wrote: what reached
        # the disk is what was written. Decoding every chunk again (``offgen verify`` does) would
        # only re-check the compressor this process just ran, for a third of the conversion time.
        OffgenStore(store).verify(check_frames=False)


def _bundle_games(run: _Run, games: list[str]) -> list[GameResult]:
    """``games`` of a dataset published as one bundle: converted from a single pass over it."""
    with contextlib.ExitStack() as stack:
        for game in sorted(games):  # a fixed order: two processes never wait on each other
            stack.enter_context(
                _locked(
                    run.root / ".locks" / f"{game}.{run.fmt}.lock",
                    f"{run.spec.name}/{game}",
                    run.log,
                )
            )
        results: dict[str, GameResult] = {}
        todo = []
        for game in games:
            target = store_path(run.root.parent, run.spec.name, game, run.fmt)
            if _is_done(run, game):
                run.log(f"{run.spec.name}/{game}: already present at {target}")
                results[game] = GameResult(game, target, "present")
            else:
                todo.append(game)
        if todo:
            archive, source, size, digest = _obtain_archive(run, todo[0])
            if not source.all_games:  # no mirror had the bundle: one archive per game
                return [results.get(g) or _process_game(run, g) for g in games]
            _stream_convert(run, archive, source, todo)
            run.lockfile.record(source.key, size, digest, source.url)
            for game in todo:
                target = store_path(run.root.parent, run.spec.name, game, run.fmt)
                results[game] = GameResult(game, target, "downloaded", archive, source.url, size)
        return [results[g] for g in games]


def download_dataset(
    dataset: str,
    games: Sequence[str] | None = None,
    *,
    output: str | os.PathLike[str] | None = None,
    fmt: ArchiveFormat = "offgen",
    clear_archives: bool = False,
    workers: int = 4,
    base_url: str | Sequence[str] | None = None,
    policy: RetryPolicy | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> list[GameResult]:
    """Download, verify and unpack (and by default convert) a published dataset.

    Args:
        dataset: Dataset name or alias (``expert_1M``, ``1M_E``, ...).
        games: Games to fetch (default: all 16).
        output: Parent folder of the dataset folder (default ``$OFFGEN_HOME/datasets``).
        fmt: ``"offgen"`` converts into an offgen store per game; ``"legacy"`` keeps the unpacked
            predecessor files.
        clear_archives: Delete each archive once its contents are unpacked (and converted) and
            verified. A bundle archive holding every game (the 100k datasets) is deleted only
            once all games it holds are present (unpacked or converted, either format, this run
            or an earlier one); until then it is kept and the log says which games are missing.
        workers: Games processed in parallel.
        base_url: Mirror base(s) replacing the published base (default ``$OFFGEN_BASE_URL``).
        policy: HTTP retry policy.
        progress: Show progress bars on stderr (see :mod:`offgen._progress`: live on a terminal, one line per step in a log).
        log: Where to send one-line status messages (default: stderr).
        on_progress: Called with ``(bytes done, bytes expected)`` of the whole run whenever either
            changes (what the overall bar shows; bytes of a resumed ``.part`` count as done).
        force: Convert (``fmt="offgen"``) episodes longer than their game's time limit, or whose
            first frames look like another game (:mod:`offgen.data.game_look`), instead of
            refusing the archive: for mirrors you trust that hold data outside the published
            rules.

    Returns:
        One result per game, in the order given.

    Raises:
        DownloadError: No mirror delivered an archive.
        ChecksumError: An archive differs from the size / sha256 recorded in the lockfile.
        UnsafeFileError, CorruptStoreError: An archive is unsafe, truncated or damaged.
        DiskSpaceError: Not enough free space to unpack.
    """
    spec = resolve_dataset(dataset)
    names = [resolve_game(g).name for g in (games or list(GAMES))]
    root = Path(output) if output is not None else default_output()
    run = _Run(
        spec=spec,
        root=root / spec.name,
        fmt=fmt,
        clear_archives=clear_archives,
        base_url=base_url,
        policy=policy or RetryPolicy.from_env(),
        progress=progress,
        log=log or (lambda msg: print(msg, file=sys.stderr, flush=True)),
        lockfile=Lockfile(root / spec.name),
        slots=list(range(1, max(1, workers) + 1)),
        on_progress=on_progress,
        force=force,
    )
    run.overall = progress_bar(
        desc=f"{spec.name} ({len(names)} games)",
        total=0,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        position=0,
        enabled=progress,
        dynamic_ncols=True,
    )
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="offgen-dl"
        ) as pool:
            bundled = [n for n in names if fmt == "offgen" and _bundle_first(run, n)]
            tasks: list[Future[GameResult] | Future[list[GameResult]]] = [
                pool.submit(_one_game, run, n) for n in names if n not in bundled
            ]
            if bundled:
                tasks.append(pool.submit(_bundle_games, run, bundled))
            by_game: dict[str, GameResult] = {}
            errors: list[Exception] = []
            for future in tasks:
                try:
                    got = future.result()
                except Exception as exc:
                    errors.append(exc)
                    continue
                for result in got if isinstance(got, list) else [got]:
                    by_game[result.game] = result
            results = [by_game[n] for n in names if n in by_game]
    finally:
        run.overall.close()
    if errors:
        for extra in errors[1:]:
            run.log(f"error: {extra}")
        raise errors[0]
    if clear_archives:
        _clear_bundles(run)
    return results


def verify_archives(
    folder: str | os.PathLike[str], *, game: str | None = None, check_hashes: bool = True
) -> list[Path]:
    """Check the archives kept in a dataset folder against its lockfile (``offgen.lock.json``).

    ``offgen verify NAME --game G`` runs this for the archives of ``G`` after checking the store
    against its own manifest. Every archive is checked; the error lists each one that fails.

    Args:
        folder: The dataset folder (``<output>/<dataset>``, holding ``archives/``).
        game: Only the archives that hold this game (its own archive of each URL scheme and a
            bundle holding every game); the folder must be named after a registered dataset.
            Default: every archive in the folder.
        check_hashes: Compare sha256 too (``False``: sizes only, no file is read).

    Returns:
        The archives checked (none when no archive is kept, e.g. after ``--clear-archives``).

    Raises:
        ChecksumError: If an archive's size or sha256 differs from the lockfile.
        CorruptStoreError: If an archive has no lockfile entry (never verified).
    """
    root = Path(folder)
    lock = Lockfile(root)
    if game is None:
        candidates = [
            path
            for path in sorted((root / "archives").glob("*/*"))
            if not path.name.startswith(".")
            and not path.name.endswith((".part", ".part.json", ".lock"))
        ]
    else:
        spec = resolve_dataset(root.name)
        candidates = sorted(
            {
                root / "archives" / s.scheme / s.url.rsplit("/", 1)[-1]
                for s in spec.sources(resolve_game(game).name)
            }
        )
    checked: list[Path] = []
    problems: list[OffgenError] = []
    for path in candidates:
        if not path.is_file():
            continue
        try:
            lock.verify_file(f"{path.parent.name}/{path.name}", path, check_hash=check_hashes)
        except FileNotFoundError:
            continue  # deleted meanwhile (a concurrent --clear-archives run)
        except (ChecksumError, CorruptStoreError) as exc:
            problems.append(exc)
        else:
            checked.append(path)
    if problems:
        kind = (
            ChecksumError
            if any(isinstance(e, ChecksumError) for e in problems)
            else CorruptStoreError
        )
        raise kind("\n".join(str(e) for e in problems))
    return checked
