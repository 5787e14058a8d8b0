"""Publish offgen stores to an HF-compatible hub and fetch them back, with ``huggingface_hub``.

Repository layout (one dataset repository may hold several datasets and games)::

    README.md                   the dataset card (YAML header + prose), every game pushed so far
    card_stats.json             the card's per-game statistics (merged on each push)
    images/<game>_<kind>.png    the card's pictures (returns, lengths, levels, frames)
    preview/<dataset>/<game>.parquet  the dataset viewer's preview (episode table, thumbnails)
    <dataset>/<game>/...        one offgen store per (dataset, game), files as on disk

Pushes are resumable: :func:`push_store` compares the store with the remote folder (sha256 / git
blob sha1) and uploads only what is missing, in commits of bounded size, with ``manifest.json`` and
``info.json`` last. ``huggingface_hub``'s own large-folder upload is not used: ``upload_large_folder``
is gone from huggingface_hub 2.x, and its successor (``upload_folder``'s streamed multi-commit
mode) needs ``hf_xet`` and a Xet storage backend, which LFS-only HF-compatible servers (and the
loopback test hub) lack; it also gives no control over which commit completes the store.

Pulls fetch only ``<dataset>/<game>/**`` with ``snapshot_download(repo_type="dataset",
allow_patterns=..., revision=...)``; the store is opened in place inside the hub cache
(``$HF_HOME``), so it is never copied and a second pull reuses it. The commit the revision resolved
to is recorded in the dataset folder's ``offgen.lock.json``, so later loads pin it and read
byte-identical files. ``HF_ENDPOINT`` selects the hub (a mirror or a lab server).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offgen._io import hash_stream
from offgen._optional import require
from offgen.data.format import INFO
from offgen.errors import DatasetNotFoundError, DownloadError
from offgen.hub.lockfile import HubEntry, Lockfile
from offgen.hub.publish import (
    CARD_STATS,
    HEADERS,
    LocalFile,
    card_files,
    local_files,
    merge_card_stats,
)

if TYPE_CHECKING:
    from offgen.hub.card import WrittenCard

__all__ = [
    "CARD_STATS",
    "PullResult",
    "PushResult",
    "fetch_file",
    "hub_cache",
    "hub_endpoint",
    "is_offline",
    "list_datasets_in_repo",
    "pull_store",
    "push_assets",
    "push_card",
    "push_store",
]


@dataclass(frozen=True)
class PushResult:
    """A finished push: the repository, the commit created and the files' folder in it."""

    repo: str
    commit: str
    path_in_repo: str
    files: int
    uploaded: int = 0  # files committed by this push (the others were already there)
    commits: int = 0


@dataclass(frozen=True)
class PullResult:
    """A pulled store: where it is (inside the hub cache) and the commit it came from."""

    store: Path
    repo: str
    revision: str
    commit: str


def hub_endpoint() -> str:
    """The hub endpoint in use (``HF_ENDPOINT``, else huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def is_offline() -> bool:
    """Whether offline mode is on (``OFFGEN_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    truthy = {"1", "true", "yes", "on"}
    return any(
        os.environ.get(v, "").strip().lower() in truthy
        for v in ("OFFGEN_OFFLINE", "HF_HUB_OFFLINE")
    )


def hub_cache() -> Path:
    """The hub cache folder, read at call time (``huggingface_hub`` reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def _api() -> Any:
    hub = require("huggingface_hub", "hub")
    return hub.HfApi(endpoint=hub_endpoint())


_HEADERS = HEADERS  # committed last: a store on the hub is complete once info.json is there
_DEFAULT_COMMIT_FILES = 256
_DEFAULT_COMMIT_BYTES = 1 << 30


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r}: expected a positive integer") from exc
    if value < 1:
        raise ValueError(f"{name}={raw!r}: expected a positive integer")
    return value


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as handle:
        hash_stream(digest, handle)
    return digest.hexdigest()


def _same(remote: Any, local: LocalFile) -> bool:
    """Whether a remote tree entry already holds ``local``'s bytes (LFS / xet files carry the
    sha256, regular git files the git blob sha1)."""
    if int(remote.size) != local.size:
        return False
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        sha = lfs["sha256"] if isinstance(lfs, dict) else lfs.sha256
        return bool(sha == local.sha256)
    return bool(remote.blob_id == _git_blob_sha1(local.path))


def _batches(
    names: list[str], files: dict[str, LocalFile], max_files: int, max_bytes: int
) -> list[list[str]]:
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for name in names:
        if current and (len(current) >= max_files or size + files[name].size > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(name)
        size += files[name].size
    if current:
        out.append(current)
    return out


def push_store(
    store: str | os.PathLike[str],
    repo: str,
    *,
    dataset: str,
    game: str,
    revision: str | None = None,
    private: bool = False,
    message: str | None = None,
    commit_files: int | None = None,
    commit_bytes: int | None = None,
    on_commit: Callable[[int, int], None] | None = None,
) -> PushResult:
    """Upload a finished store into ``<dataset>/<game>/`` of ``repo`` (cards: :func:`push_card`).

    Resumable and bounded: the remote folder is listed first and only files whose bytes the hub
    does not already hold there (compared by sha256 for LFS / xet files, by git blob sha1 for
    regular ones) are uploaded, in several commits of at most ``commit_files`` files and
    ``commit_bytes`` bytes. An interrupted push (killed process, dropped connection, refused
    commit) is resumed by pushing again: committed files are not uploaded a second time. The
    resume state is the repository itself; nothing is written into the store folder.

    ``manifest.json`` and ``info.json`` go in the last commit; when a push needs several commits,
    the first one removes the old ones, so no intermediate commit looks like a finished store
    (a pull of it says the store is missing instead of reading a mix of two versions). Remote
    files under the folder that the store does not have are deleted (a re-push replaces the
    folder exactly). Nothing to upload: no commit.

    Args:
        store: The store directory (must be complete: its manifest is uploaded with it).
        repo: ``ORG/NAME`` of the dataset repository.
        dataset: Dataset name (the repository folder).
        game: Game name (the sub-folder).
        revision: Branch to commit to (default ``main``).
        private: Create the repository private.
        message: Commit message (later commits of one push add ``(part i/n)``).
        commit_files: Most files per commit (default ``OFFGEN_PUSH_COMMIT_FILES``, else 256).
        commit_bytes: Most bytes per commit, a larger file goes alone (default
            ``OFFGEN_PUSH_COMMIT_BYTES``, else 1 GiB).
        on_commit: Called after each commit with (files committed so far, files to commit).

    Raises:
        DatasetNotFoundError, IncompleteStoreError: If ``store`` is not a finished store.
        DownloadError: If the hub refuses the upload (push again to resume).
    """
    from offgen.data.store import OffgenStore

    root = Path(store)
    OffgenStore(root).verify(check_frames=False)  # never publish a damaged or unfinished store
    max_files = commit_files or _env_int("OFFGEN_PUSH_COMMIT_FILES", _DEFAULT_COMMIT_FILES)
    max_bytes = commit_bytes or _env_int("OFFGEN_PUSH_COMMIT_BYTES", _DEFAULT_COMMIT_BYTES)
    hub = require("huggingface_hub", "hub")
    hub_errors = require("huggingface_hub.errors", "hub")
    api = _api()
    path_in_repo = f"{dataset}/{game}"
    prefix = f"{path_in_repo}/"
    local = local_files(root)
    title = message or f"offgen: upload {path_in_repo}"
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        head = str(api.repo_info(repo, repo_type="dataset", revision=revision).sha)
        try:
            tree = api.list_repo_tree(
                repo, path_in_repo, recursive=True, revision=head, repo_type="dataset"
            )
            remote = {
                str(e.path)[len(prefix) :]: e
                for e in tree
                if str(e.path).startswith(prefix) and hasattr(e, "blob_id")
            }
        except hub_errors.EntryNotFoundError:
            remote = {}  # the folder does not exist yet
        changed = [r for r, f in local.items() if r not in remote or not _same(remote[r], f)]
        stale = sorted(r for r in remote if r not in local)
        batches = _batches([r for r in changed if r not in _HEADERS], local, max_files, max_bytes)
        if len(batches) > 1:
            # Drop the old headers first and add the new ones with the last batch.
            stale += [r for r in _HEADERS if r in remote]
            headers = list(_HEADERS)
        else:
            headers = [r for r in _HEADERS if r in changed]
        if headers:
            if batches:
                batches[-1] += headers
            else:
                batches.append(headers)
        if stale and not batches:
            batches.append([])  # a commit that only deletes
        total = sum(len(b) for b in batches)
        done = 0
        for i, batch in enumerate(batches):
            operations: list[Any] = []
            if i == 0:
                operations += [
                    hub.CommitOperationDelete(path_in_repo=prefix + r, is_folder=False)
                    for r in stale
                ]
            operations += [
                hub.CommitOperationAdd(path_in_repo=prefix + r, path_or_fileobj=str(local[r].path))
                for r in batch
            ]
            info = api.create_commit(
                repo,
                operations,
                repo_type="dataset",
                revision=revision,
                commit_message=title
                if len(batches) == 1
                else f"{title} (part {i + 1}/{len(batches)})",
                parent_commit=head if i == 0 else None,
            )
            head = str(info.oid)
            done += len(batch)
            if on_commit is not None:
                on_commit(done, total)
    except hub_errors.HfHubHTTPError as exc:
        raise DownloadError(
            f"{hub_endpoint()}: pushing {root} to {repo} failed: {exc}. Run the push again to "
            "resume: files already committed are not uploaded again."
        ) from exc
    return PushResult(
        repo=repo,
        commit=head,
        path_in_repo=path_in_repo,
        files=len(local),
        uploaded=total,
        commits=len(batches),
    )


def push_assets(
    repo: str,
    files: dict[str, Path],
    *,
    revision: str | None = None,
    message: str = "offgen: update card",
) -> str:
    """Commit local ``files`` (path in repo -> local path) to ``repo`` in one commit.

    Raises:
        DownloadError: If the hub refuses the commit.
    """
    hub = require("huggingface_hub", "hub")
    hub_errors = require("huggingface_hub.errors", "hub")
    operations = [
        hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path))
        for name, path in files.items()
    ]
    try:
        info = _api().create_commit(
            repo, operations, repo_type="dataset", revision=revision, commit_message=message
        )
    except hub_errors.HfHubHTTPError as exc:
        raise DownloadError(f"{hub_endpoint()}: committing to {repo} failed: {exc}") from exc
    return str(info.oid)


def fetch_file(repo: str, path: str, *, revision: str | None = None) -> bytes | None:
    """The bytes of ``path`` in ``repo`` at ``revision`` (default ``main``), or None if the
    repository, revision or file does not exist.

    Raises:
        DownloadError: The hub could not be reached or refused the request.
    """
    hub = require("huggingface_hub", "hub")
    hub_errors = require("huggingface_hub.errors", "hub")
    try:
        local = hub.hf_hub_download(
            repo_id=repo,
            filename=path,
            repo_type="dataset",
            revision=revision,
            endpoint=hub_endpoint(),
            cache_dir=str(hub_cache()),
        )
    except (
        hub_errors.EntryNotFoundError,
        hub_errors.RepositoryNotFoundError,
        hub_errors.RevisionNotFoundError,
    ):
        return None
    except hub_errors.HfHubHTTPError as exc:
        raise DownloadError(f"{hub_endpoint()}: reading {repo}/{path} failed: {exc}") from exc
    return Path(local).read_bytes()


def _remote_card_stats(repo: str, dataset: str, revision: str | None) -> dict[str, Any]:
    """The per-game card statistics already in ``repo`` for ``dataset`` (``card_stats.json``)."""
    raw = fetch_file(repo, CARD_STATS, revision=revision)
    return merge_card_stats(raw, dataset, f"{repo}/{CARD_STATS}")


def push_card(
    repo: str,
    *,
    dataset: str,
    store: str | os.PathLike[str],
    revision: str | None = None,
    force: bool = False,
) -> tuple[str, WrittenCard]:
    """Measure ``store`` and commit the card of every game pushed so far to ``repo``.

    The repository's ``card_stats.json`` (statistics of the games pushed earlier) is fetched
    first and merged with the new game's, so ``README.md`` keeps every game's config and
    statistics; ``README.md``, ``card_stats.json``, the game's pictures (``images/<game>_*.png``)
    and its Parquet preview (``preview/<dataset>/<game>.parquet``, declared in the card so the
    HF dataset viewer shows it) are committed (the other games' files are already there).

    Args:
        repo: ``ORG/NAME`` of the dataset repository.
        dataset: Registered dataset name the card is for.
        store: The pushed store of one game.
        revision: Branch to commit to (default ``main``).
        force: Card a store that contradicts ``dataset`` anyway, with a warning in the card.

    Returns:
        The commit created and the card files written.

    Raises:
        DatasetLabelError: If the store cannot be ``dataset`` and ``force`` is false.
        DownloadError: If the hub refuses the commit.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        earlier = _remote_card_stats(repo, dataset, revision)
        files, written = card_files(dataset, store, Path(tmp), earlier, force=force)
        commit = push_assets(
            repo, files, revision=revision, message=f"offgen: card for {dataset}/{written.game}"
        )
        return commit, written


def list_datasets_in_repo(repo: str, game: str, *, revision: str | None = None) -> list[str]:
    """The datasets of ``repo`` holding a ``<dataset>/<game>/`` store, namespaced ones included.

    Directory listings, one per folder down to ``<namespace>/<dataset>``, not the whole tree: a
    repository's stores hold many shard files.

    Raises:
        DatasetNotFoundError: The repository or revision does not exist.
        DownloadError: The hub could not be reached.
    """
    from offgen.registry import GAMES

    hub = require("huggingface_hub", "hub")
    hub_errors = require("huggingface_hub.errors", "hub")
    api, wanted = _api(), revision or "main"

    def folders(path: str | None) -> list[str]:
        entries = api.list_repo_tree(
            repo, path_in_repo=path, revision=wanted, repo_type="dataset", recursive=False
        )
        return [e.path for e in entries if isinstance(e, hub.RepoFolder)]

    found: list[str] = []
    try:
        for top in folders(None):
            if top in ("images", "preview"):  # pictures and viewer previews, not stores
                continue
            inner = folders(top)
            if f"{top}/{game}" in inner:
                found.append(top)
                continue
            for name in inner:
                if name.rsplit("/", 1)[-1] not in GAMES and f"{name}/{game}" in folders(name):
                    found.append(name)
    except (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError) as exc:
        raise DatasetNotFoundError(f"{hub_endpoint()}: {repo}@{wanted}: {exc}") from exc
    except hub_errors.HfHubHTTPError as exc:
        raise DownloadError(f"{hub_endpoint()}: listing {repo}@{wanted} failed: {exc}") from exc
    return found


def pull_store(
    repo: str,
    *,
    dataset: str,
    game: str,
    revision: str | None = None,
    lock_folder: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> PullResult:
    """Fetch ``<dataset>/<game>/`` of ``repo`` at ``revision`` into the hub cache.

    With ``lock_folder`` (the dataset folder) the resolved commit is recorded there, and a later
    pull without ``revision`` uses that commit, so loads stay byte-identical until re-pinned.
    ``local_files_only`` (default: :func:`is_offline`) only looks in the hub cache.

    Raises:
        DatasetNotFoundError: Offline and not cached, or the repository lacks that store.
        DownloadError: The hub could not be reached.
    """
    hub = require("huggingface_hub", "hub")
    hub_errors = require("huggingface_hub.errors", "hub")
    lock = Lockfile(lock_folder) if lock_folder is not None else None
    key = f"{repo}:{dataset}/{game}"
    pinned = lock.hub(key) if lock is not None else None
    wanted = revision or (pinned.commit if pinned is not None else "main")
    pattern = f"{dataset}/{game}/**"
    try:
        folder = hub.snapshot_download(
            repo_id=repo,
            repo_type="dataset",
            revision=wanted,
            allow_patterns=[pattern],
            endpoint=hub_endpoint(),
            cache_dir=str(hub_cache()),
            local_files_only=is_offline() if local_files_only is None else local_files_only,
        )
    except hub_errors.LocalEntryNotFoundError as exc:
        raise DatasetNotFoundError(
            f"{repo}@{wanted}: {dataset}/{game} is not in the hub cache ({hub_cache()}) "
            "and offline mode is on or the hub is unreachable. Unset OFFGEN_OFFLINE / HF_HUB_OFFLINE "
            "or check HF_ENDPOINT."
        ) from exc
    except (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError) as exc:
        raise DatasetNotFoundError(f"{hub_endpoint()}: {repo}@{wanted}: {exc}") from exc
    except hub_errors.HfHubHTTPError as exc:
        raise DownloadError(f"{hub_endpoint()}: pulling {repo}@{wanted} failed: {exc}") from exc
    commit = Path(folder).name  # snapshots/<commit>
    store = Path(folder) / dataset / game
    if not (store / INFO).is_file():
        raise DatasetNotFoundError(
            f"{repo}@{wanted} ({commit[:12]}): holds no offgen store at {dataset}/{game}/; push one "
            f"with `offgen push {dataset} --game {game} --repo {repo}`."
        )
    if lock is not None and (pinned is None or pinned.commit != commit):
        from offgen.data.format import now_iso

        lock.record_hub(
            key,
            HubEntry(
                repo=repo,
                revision=revision or "main",
                commit=commit,
                endpoint=hub_endpoint(),
                recorded=now_iso(),
            ),
        )
    return PullResult(store=store, repo=repo, revision=wanted, commit=commit)
