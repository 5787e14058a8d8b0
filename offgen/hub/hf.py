"""Publish offgen stores to an HF-compatible hub and fetch them back, with ``huggingface_hub``.

Repository layout (one dataset repository may hold several datasets and games)::

    README.md                   the dataset card (YAML header + prose)
    <dataset>/<game>/...        one offgen store per (dataset, game), files as on disk

Pulls fetch only ``<dataset>/<game>/**`` with ``snapshot_download(repo_type="dataset",
allow_patterns=..., revision=...)``; the store is opened in place inside the hub cache
(``$HF_HOME``), so it is never copied and a second pull reuses it. The commit the revision resolved
to is recorded in the dataset folder's ``offgen.lock.json``, so later loads pin it and read
byte-identical files. ``HF_ENDPOINT`` selects the hub (a mirror or a lab server).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offgen._optional import require
from offgen.data.format import INFO
from offgen.errors import DatasetNotFoundError, DownloadError
from offgen.hub.lockfile import HubEntry, Lockfile

__all__ = [
    "PullResult",
    "PushResult",
    "hub_cache",
    "hub_endpoint",
    "is_offline",
    "pull_store",
    "push_assets",
    "push_store",
]


@dataclass(frozen=True)
class PushResult:
    """A finished push: the repository, the commit created and the files' folder in it."""

    repo: str
    commit: str
    path_in_repo: str
    files: int


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


def push_store(
    store: str | os.PathLike[str],
    repo: str,
    *,
    dataset: str,
    game: str,
    revision: str | None = None,
    private: bool = False,
    message: str | None = None,
) -> PushResult:
    """Upload a finished store into ``<dataset>/<game>/`` of ``repo`` (cards: :func:`push_assets`).

    Creates the dataset repository if needed. Files go in one commit through ``upload_folder``
    (re-running after an interruption uploads the same files again; the hub deduplicates).

    Args:
        store: The store directory (must be complete: its manifest is uploaded with it).
        repo: ``ORG/NAME`` of the dataset repository.
        dataset: Dataset name (the repository folder).
        game: Game name (the sub-folder).
        revision: Branch to commit to (default ``main``).
        private: Create the repository private.
        message: Commit message.

    Raises:
        DatasetNotFoundError, IncompleteStoreError: If ``store`` is not a finished store.
        DownloadError: If the hub refuses the upload.
    """
    from offgen.data.store import OffgenStore

    root = Path(store)
    OffgenStore(root).verify(check_frames=False)  # never publish a damaged or unfinished store
    api = _api()
    hub_errors = require("huggingface_hub.errors", "hub")
    path_in_repo = f"{dataset}/{game}"
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=str(root),
            path_in_repo=path_in_repo,
            repo_id=repo,
            repo_type="dataset",
            revision=revision,
            commit_message=message or f"offgen: upload {path_in_repo}",
            ignore_patterns=[".*", "*.partial", "**/.*"],
            delete_patterns=["*"],  # a re-push replaces the folder exactly
        )
        commit = info.oid
    except hub_errors.HfHubHTTPError as exc:
        raise DownloadError(f"{hub_endpoint()}: pushing {root} to {repo} failed: {exc}") from exc
    files = sum(1 for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    return PushResult(repo=repo, commit=str(commit), path_in_repo=path_in_repo, files=files)


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
