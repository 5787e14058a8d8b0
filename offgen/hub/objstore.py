"""Push offgen stores to an object store (``s3://bucket/prefix``, any fsspec URL) and pull them back.

The layout under the URL is a hub repository's, one folder per dataset::

    <dataset>/README.md, card_stats.json, images/*.png, preview/<dataset>/<game>.parquet   card
    <dataset>/<game>/...                                                         one offgen store

so ``offgen.load("s3://bucket/prefix/<dataset>/<game>")`` reads a pushed store in place, chunk by
chunk. A push is what :func:`offgen.hub.hf.push_store` does, with object uploads for commits:
only files whose bytes the bucket does not already hold (same size and MD5 ETag) are uploaded;
when anything changes, ``info.json`` and ``manifest.json`` are removed first and uploaded last, so
an interrupted push leaves a folder that is refused as unfinished, never read as a store, and
pushing again resumes it. A pull copies ``<dataset>/<game>/`` into
``$OFFGEN_HOME/datasets/<dataset>/<game>`` (where ``offgen.load(<dataset>, game=...)`` finds it),
each file checked against the manifest's sha256, through a staging folder.

Credentials and endpoint: ``storage_options`` (Python), else what s3fs reads from the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offgen._io import hash_stream, sha256_file
from offgen.data.format import INFO, MANIFEST, check_manifest_entry, parse_manifest
from offgen.data.remote import remote_error, url_filesystem
from offgen.errors import DatasetNotFoundError, StoreExistsError
from offgen.hub.hf import PushResult
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

__all__ = ["is_object_store", "pull_store_url", "push_card_url", "push_store_url"]


def is_object_store(target: str) -> bool:
    """Whether a push / pull target is an object-store URL (``s3://...``) rather than a hub
    repository (``ORG/NAME`` or ``hf://ORG/NAME``)."""
    return "://" in target and not target.startswith("hf://")


@contextmanager
def _errors(url: str) -> Iterator[None]:
    """Refused credentials and a missing bucket as one-line offgen errors."""
    try:
        yield
    except (PermissionError, FileNotFoundError) as exc:
        mapped = remote_error(exc, url)
        if mapped is None:
            raise
        raise mapped from exc


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        hash_stream(digest, handle)
    return digest.hexdigest()


def _same(remote: Mapping[str, Any] | None, local: LocalFile) -> bool:
    """Whether the object already holds ``local``'s bytes: same size and, for a single-part
    upload (whose ETag is the MD5 of the bytes), same MD5. A multipart ETag is uploaded again."""
    if remote is None or int(remote.get("size", -1)) != local.size:
        return False
    etag = str(remote.get("ETag") or remote.get("etag") or "").strip('"')
    return bool(etag) and "-" not in etag and etag == _md5(local.path)


def _listing(fs: Any, folder: str) -> dict[str, dict[str, Any]]:
    """Files under ``folder`` (relative path -> info); a missing bucket raises."""
    found = fs.find(folder, detail=True)
    prefix = folder.rstrip("/") + "/"
    return {name[len(prefix) :]: info for name, info in found.items() if name.startswith(prefix)}


def push_store_url(
    store: str | os.PathLike[str],
    url: str,
    *,
    dataset: str,
    game: str,
    storage_options: Mapping[str, Any] | None = None,
    on_upload: Callable[[int, int], None] | None = None,
) -> PushResult:
    """Upload a finished store to ``<url>/<dataset>/<game>/``, resumably (see the module docs).

    Args:
        store: The store directory (must be complete and intact).
        url: The destination prefix, e.g. ``s3://bucket/offgen``.
        dataset: Dataset name (the folder under ``url``).
        game: Game name (the sub-folder).
        storage_options: fsspec options (credentials, ``client_kwargs={"endpoint_url": ...}``).
        on_upload: Called after each uploaded file with (files uploaded so far, files to upload).

    Returns:
        The push: ``repo`` is ``url``, ``commit`` the sha256 of the uploaded ``info.json``.

    Raises:
        DatasetNotFoundError: The store is not a finished store, or the bucket does not exist.
        AccessDeniedError: The object store refused the credentials.
        MissingDependencyError: ``s3://`` without ``offgen[s3]``.
    """
    from offgen.data.store import OffgenStore

    root = Path(store)
    OffgenStore(root).verify(check_frames=False)  # never publish a damaged or unfinished store
    fs, base = url_filesystem(url, storage_options or {})
    folder = f"{base.rstrip('/')}/{dataset}/{game}"
    local = local_files(root)
    with _errors(url):
        remote = _listing(fs, folder)
        changed = [r for r, f in local.items() if not _same(remote.get(r), f)]
        stale = sorted(r for r in remote if r not in local)
        data = [r for r in changed if r not in HEADERS]
        headers = [r for r in HEADERS if r in changed]
        if data or stale:
            # Take the old headers away first: until the new ones land, the folder is no store.
            old = [f"{folder}/{r}" for r in HEADERS if r in remote]
            if old:
                fs.rm(old)
            headers = list(HEADERS)
        uploads = data + headers
        for done, rel in enumerate(data, 1):
            fs.put_file(str(local[rel].path), f"{folder}/{rel}")
            if on_upload is not None:
                on_upload(done, len(uploads))
        if stale:  # before the headers: the finished folder holds exactly the store
            fs.rm([f"{folder}/{r}" for r in stale])
        for done, rel in enumerate(headers, len(data) + 1):
            fs.put_file(str(local[rel].path), f"{folder}/{rel}")
            if on_upload is not None:
                on_upload(done, len(uploads))
    return PushResult(
        repo=url,
        commit=local[INFO].sha256,
        path_in_repo=f"{dataset}/{game}",
        files=len(local),
        uploaded=len(uploads),
        commits=0,
    )


def push_card_url(
    url: str,
    *,
    dataset: str,
    store: str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None = None,
    force: bool = False,
) -> WrittenCard:
    """Measure ``store`` and upload the card of every game pushed so far to ``<url>/<dataset>/``.

    Raises:
        DatasetLabelError: If the store cannot be ``dataset`` and ``force`` is false.
        AccessDeniedError, DatasetNotFoundError: Refused credentials, a missing bucket.
    """
    fs, base = url_filesystem(url, storage_options or {})
    folder = f"{base.rstrip('/')}/{dataset}"
    with _errors(url), tempfile.TemporaryDirectory() as tmp:
        try:
            raw: bytes | None = fs.cat_file(f"{folder}/{CARD_STATS}")
        except FileNotFoundError as exc:
            if remote_error(exc, url) is not None:
                raise
            raw = None
        earlier = merge_card_stats(raw, dataset, f"{url}/{dataset}/{CARD_STATS}")
        files, written = card_files(dataset, store, Path(tmp), earlier, force=force)
        for name, path in files.items():
            fs.put_file(str(path), f"{folder}/{name}")
        return written


def pull_store_url(
    url: str,
    *,
    dataset: str,
    game: str,
    dest: str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None = None,
) -> Path:
    """Copy ``<url>/<dataset>/<game>/`` into ``dest``, every file checked against the manifest.

    Files go to a staging folder next to ``dest`` first (an interrupted pull resumes there:
    files already fetched and intact are kept); ``dest`` appears only once the store is complete
    and verified. Pulling a store ``dest`` already holds does nothing.

    Returns:
        ``dest``.

    Raises:
        DatasetNotFoundError: Nothing pushed there (no ``info.json`` / ``manifest.json``), or the
            bucket does not exist.
        StoreExistsError: ``dest`` holds a different store.
        ChecksumError: A downloaded file does not match the manifest.
        AccessDeniedError: The object store refused the credentials.
    """
    from offgen.data.store import OffgenStore

    target = Path(dest)
    fs, base = url_filesystem(url, storage_options or {})
    folder = f"{base.rstrip('/')}/{dataset}/{game}"
    with _errors(url):
        try:
            headers = {rel: fs.cat_file(f"{folder}/{rel}") for rel in HEADERS}
        except FileNotFoundError as exc:
            if remote_error(exc, url) is not None:
                raise
            raise DatasetNotFoundError(
                f"{url}: holds no finished offgen store at {dataset}/{game}/ (a push may be under "
                f"way or interrupted); push one with `offgen push {dataset} --game {game} "
                f"--repo {url}`."
            ) from exc
        if _holds(target, headers):
            return target
        if target.exists() and any(target.iterdir()):
            raise StoreExistsError(
                f"{target}: already holds a different store; move or delete it, then pull again."
            )
        manifest = parse_manifest(headers[MANIFEST], f"{folder}/{MANIFEST}")
        staging = target.parent / f".{target.name}.pull"
        staging.mkdir(parents=True, exist_ok=True)
        wanted = [rel for rel, e in manifest.items() if not _intact(staging / rel, e)]
        for rel in wanted:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        if wanted:
            fs.get([f"{folder}/{rel}" for rel in wanted], [str(staging / rel) for rel in wanted])
    for rel in wanted:
        path = staging / rel
        check_manifest_entry(str(path), manifest[rel], path.stat().st_size, sha256_file(path))
    for rel in HEADERS:  # last: the staging folder is a store only now
        (staging / rel).write_bytes(headers[rel])
    OffgenStore(staging).verify(check_frames=False)
    if target.exists():
        target.rmdir()  # empty (checked above)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    return target


def _holds(target: Path, headers: Mapping[str, bytes]) -> bool:
    """Whether ``target`` is already the store those header files describe."""
    return all(
        (target / rel).is_file() and (target / rel).read_bytes() == data
        for rel, data in headers.items()
    )


def _intact(path: Path, entry: Mapping[str, Any]) -> bool:
    return (
        path.is_file()
        and path.stat().st_size == entry["size"]
        and sha256_file(path) == entry["sha256"]
    )
