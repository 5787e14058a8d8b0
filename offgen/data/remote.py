"""Filesystems for stores read by URL, correct on HTTP servers that ignore ``Range``.

zarr reads a shard by byte range (its index, then the chunks a batch needs). A plain static
server such as ``python -m http.server`` ignores the ``Range`` header and answers ``200`` with the
whole file; fsspec's HTTP filesystem then hands the whole file back as if it were the range, and
the checksum of the "chunk" fails, so an intact store looked corrupt. :class:`RangeSafeHTTPFileSystem`
checks the status of every ranged response: a ``206`` is used as is, a ``200`` is the whole object,
from which the range is cut locally. Whole objects are kept in a small byte-bounded cache so a
shard is fetched once, not once per chunk, and the server is remembered as range-less so later
reads ask for whole objects directly. Reads are therefore correct on any server, at the cost of
fetching whole shards from a range-less one.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from fsspec.implementations.http import HTTPFileSystem

from offgen._optional import require
from offgen.errors import AccessDeniedError, DatasetNotFoundError, OffgenError

__all__ = [
    "RangeSafeHTTPFileSystem",
    "open_sequential",
    "remote_error",
    "url_filesystem",
    "url_zarr_store",
]

#: URL schemes whose fsspec filesystem is an optional package: scheme -> (module, offgen extra).
_BACKENDS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3")}

#: Bytes of whole objects kept per filesystem instance when a server ignores ``Range``.
WHOLE_OBJECT_CACHE_BYTES = 256 << 20


class RangeSafeHTTPFileSystem(HTTPFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """fsspec's HTTP filesystem, with range reads that stay correct when the server ignores Range."""

    protocol = ("http", "https")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ranges_supported: bool | None = None
        self._whole: OrderedDict[str, bytes] = OrderedDict()
        self._whole_bytes = 0
        self._locks: dict[str, asyncio.Lock] = {}

    async def _cat_file(
        self, url: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        if start is None and end is None:
            return bytes(await super()._cat_file(url, **kwargs))
        if start is not None and start == end:
            return b""
        if self.ranges_supported is False or url in self._whole:
            return _cut(await self._whole_object(url, **kwargs), start, end)
        kw = {**self.kwargs, **kwargs}
        headers = dict(kw.pop("headers", {}) or {})
        headers["Range"] = await self._process_limits(url, start, end)
        session = await self.set_session()
        async with session.get(self.encode_url(url), headers=headers, **kw) as response:
            body = await response.read()
            self._raise_not_found_for_status(response, url)
            status = response.status
        if status == 206:
            self.ranges_supported = True
            return bytes(body)
        # 200: the server sent the whole object instead of the range.
        self.ranges_supported = False
        self._remember(url, bytes(body))
        return _cut(bytes(body), start, end)

    async def _whole_object(self, url: str, **kwargs: Any) -> bytes:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:  # concurrent chunk reads of one shard fetch it once
            cached = self._whole.get(url)
            if cached is not None:
                self._whole.move_to_end(url)
                return cached
            body = bytes(await super()._cat_file(url, **kwargs))
            self._remember(url, body)
            return body

    def _remember(self, url: str, body: bytes) -> None:
        if len(body) > WHOLE_OBJECT_CACHE_BYTES or url in self._whole:
            return
        self._whole[url] = body
        self._whole_bytes += len(body)
        while self._whole_bytes > WHOLE_OBJECT_CACHE_BYTES:
            _, dropped = self._whole.popitem(last=False)
            self._whole_bytes -= len(dropped)


def _cut(body: bytes, start: int | None, end: int | None) -> bytes:
    """``body[start:end]`` with fsspec's conventions (negative start: a suffix)."""
    return body[slice(start, end)]


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower()


def _is_http(url: str) -> bool:
    return _scheme(url) in ("http", "https")


def _require_backend(url: str) -> None:
    """Import the filesystem package ``url`` needs, or say which offgen extra installs it
    (fsspec's own message names the package, not the extra)."""
    backend = _BACKENDS.get(_scheme(url))
    if backend is not None:
        require(*backend)


def remote_error(exc: OSError, url: str) -> OffgenError | None:
    """The one-line error for an object store's refusal of ``url``, or None if ``exc`` is not one.

    s3fs reports refused credentials (bad key, bad secret, no permission) as
    :class:`PermissionError` and a bucket that does not exist as :class:`FileNotFoundError`
    saying so; both would otherwise surface as "no store here" or a traceback.
    """
    if "://" not in url:
        return None
    if isinstance(exc, PermissionError):
        return AccessDeniedError(
            f"{url}: the object store refused access ({exc}). Check the credentials: "
            "storage_options key= / secret= (Python) or AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY / AWS_PROFILE, and that they may use this bucket."
        )
    if isinstance(exc, FileNotFoundError) and "bucket" in str(exc).lower():
        bucket = url.split("://", 1)[1].split("/", 1)[0]
        return DatasetNotFoundError(
            f"{url}: bucket {bucket!r} does not exist on this object store. Check the bucket "
            "name and the endpoint (storage_options client_kwargs={'endpoint_url': ...}, or "
            "AWS_ENDPOINT_URL); create the bucket before pushing to it."
        )
    return None


def url_filesystem(url: str, storage_options: Mapping[str, Any]) -> tuple[Any, str]:
    """The (synchronous) fsspec filesystem and path for ``url``; HTTP(S) is range-safe.

    Args:
        url: A URL fsspec understands (``http://``, ``s3://``, ...).
        storage_options: fsspec options (credentials, endpoints, client arguments).

    Raises:
        MissingDependencyError: If the URL's filesystem package is not installed (``s3://``
            needs ``offgen[s3]``).
    """
    if _is_http(url):
        return RangeSafeHTTPFileSystem(**storage_options), url
    _require_backend(url)
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    return fs, path


def url_zarr_store(url: str, storage_options: Mapping[str, Any]) -> Any:
    """A read-only zarr store over ``url``; HTTP(S) reads go through the range-safe filesystem."""
    import zarr

    if _is_http(url):
        fs = RangeSafeHTTPFileSystem(asynchronous=True, **storage_options)
        return zarr.storage.FsspecStore(fs=fs, path=url, read_only=True)
    _require_backend(url)
    return zarr.storage.FsspecStore.from_url(
        url, storage_options=dict(storage_options), read_only=True
    )


def open_sequential(fs: Any, path: str) -> Any:
    """A binary file over ``path`` for one front-to-back read (hashing a whole file).

    HTTP gets fsspec's streaming file, which needs no ``Range`` support; other filesystems get
    their buffered file with 4 MiB blocks.
    """
    if isinstance(fs, HTTPFileSystem):
        return fs.open(path, "rb", block_size=0)
    return fs.open(path, "rb", block_size=1 << 22)
