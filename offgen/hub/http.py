"""Resumable, verified download of one file from a list of mirrors.

What "done right" means here, and why:

* The HTTP status is checked: an error page is never saved as the file (the predecessor's bug).
* Bytes go to ``<dest>.part``; only a complete, length-checked file is renamed to ``<dest>``, so a
  partial file is never mistaken for a finished one.
* A dropped connection resumes with ``Range: bytes=<have>-`` and ``If-Range`` (the ETag or
  Last-Modified seen first), so a file changed on the server restarts instead of being spliced. A
  server that ignores ``Range`` (``200`` instead of ``206``) restarts the file cleanly.
* ``Content-Length`` / ``Content-Range`` totals are checked against the bytes received.
* Transient failures (connection errors, 5xx, 429) are retried with exponential backoff; a 404 or
  other 4xx moves straight on to the next mirror. The final error lists every URL and what happened.

Mirrors may also be local paths or ``file://`` URLs (a lab's shared folder).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests

from offgen._io import atomic_write_json, fsync_dir
from offgen.errors import DownloadError
from offgen.hub.extract import check_free_space

__all__ = [
    "DownloadResult",
    "ProgressCallback",
    "RetryPolicy",
    "download_file",
    "local_path_of",
    "remote_size",
]

ProgressCallback = Callable[[int], None]
"""Called with the number of new bytes written (negative when a restart discards bytes)."""

_CHUNK = 1 << 16  # small reads: bytes received before a dropped connection are kept
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry one mirror.

    Attributes:
        attempts: Tries per mirror (transient failures only; a 404 is not retried).
        backoff_s: Wait before the second try; doubled after each failure.
        max_backoff_s: Upper bound of a single wait.
        timeout_s: Connect / read timeout of one request.
    """

    attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """Defaults, overridable by ``OFFGEN_HTTP_RETRIES`` / ``OFFGEN_HTTP_BACKOFF``."""
        return cls(
            attempts=int(os.environ.get("OFFGEN_HTTP_RETRIES", cls.attempts)),
            backoff_s=float(os.environ.get("OFFGEN_HTTP_BACKOFF", cls.backoff_s)),
        )


@dataclass(frozen=True)
class DownloadResult:
    """A finished download: which mirror served it and how many bytes it has."""

    path: Path
    url: str
    size: int
    resumed_from: int


class _Transient(Exception):
    """A failure worth retrying on the same mirror."""


class _Fatal(Exception):
    """A failure of this mirror that retrying will not fix (e.g. 404)."""


def local_path_of(url: str) -> Path | None:
    """The local path a mirror refers to (plain path or ``file://``), or ``None`` for HTTP."""
    if url.startswith("file://"):
        return Path(unquote(urlparse(url).path))
    if "://" in url:
        return None
    return Path(url)


def remote_size(url: str, timeout_s: float = 30.0) -> int | None:
    """Size in bytes of a mirror's file (HEAD request), or ``None`` if unknown/unreachable."""
    local = local_path_of(url)
    if local is not None:
        return local.stat().st_size if local.is_file() else None
    try:
        response = requests.head(url, timeout=timeout_s, allow_redirects=True)
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _part_paths(dest: Path) -> tuple[Path, Path]:
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


def _load_validator(meta: Path, url: str) -> str | None:
    try:
        data = json.loads(meta.read_bytes())
    except (OSError, ValueError):
        return None
    if data.get("url") != url:
        return None
    validator = data.get("validator")
    return validator if isinstance(validator, str) else None


def _parse_total(response: requests.Response, offset: int) -> int | None:
    if response.status_code == 206:
        content_range = response.headers.get("Content-Range", "")
        # "bytes 100-199/1000"
        try:
            span, total = content_range.split(" ", 1)[1].split("/")
            start = int(span.split("-")[0])
        except (IndexError, ValueError) as exc:
            raise _Transient(f"malformed Content-Range {content_range!r}") from exc
        if start != offset:
            raise _Transient(f"server resumed at byte {start}, asked for {offset}")
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _fetch_http(
    url: str,
    part: Path,
    meta: Path,
    session: requests.Session,
    policy: RetryPolicy,
    progress: ProgressCallback | None,
    on_total: Callable[[int], None] | None,
) -> int:
    """One attempt: continue ``part`` from its current size; returns the file's final size."""
    offset = part.stat().st_size if part.exists() else 0
    validator = _load_validator(meta, url) if offset else None
    if offset and validator is None:
        # Bytes of unknown origin (another mirror, or no validator recorded): start over.
        part.unlink()
        if progress:
            progress(-offset)
        offset = 0
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        assert validator is not None
        headers["If-Range"] = validator
    try:
        response = session.get(url, headers=headers, stream=True, timeout=policy.timeout_s)
    except requests.RequestException as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    with response:
        status = response.status_code
        if status == 416 and offset:
            # Our partial file is longer than the server's: it is not the same file; restart.
            part.unlink()
            if progress:
                progress(-offset)
            raise _Transient("416 Range Not Satisfiable; restarting the file")
        if status in _RETRYABLE_STATUS:
            raise _Transient(f"HTTP {status} {response.reason}")
        if status not in (200, 206):
            raise _Fatal(f"HTTP {status} {response.reason}")
        if status == 200 and offset:
            # Range ignored (or If-Range said the file changed): the body is the whole file.
            if progress:
                progress(-offset)
            offset = 0
        total = _parse_total(response, offset)
        if status == 200:
            new_validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if new_validator and not new_validator.startswith("W/"):
                atomic_write_json(meta, {"url": url, "validator": new_validator, "total": total})
            else:
                meta.unlink(missing_ok=True)
        if total is not None and on_total:
            on_total(total)
        if total is not None:
            check_free_space(part.parent, total - offset, what=f"downloading {url}")
        received = offset
        try:
            with open(part, "ab" if offset else "wb") as handle:
                for block in response.iter_content(_CHUNK):
                    handle.write(block)
                    received += len(block)
                    if progress:
                        progress(len(block))
                handle.flush()
                os.fsync(handle.fileno())
        except requests.RequestException as exc:
            raise _Transient(f"connection lost after {received} bytes ({exc})") from exc
    if total is None:
        raise _Fatal(
            "the server sent no Content-Length; cannot tell a complete file from a cut one"
        )
    if received != total:
        raise _Transient(f"got {received} of {total} bytes (connection dropped)")
    return received


def _copy_local(
    source: Path,
    part: Path,
    progress: ProgressCallback | None,
    on_total: Callable[[int], None] | None,
) -> int:
    if not source.is_file():
        raise _Fatal(f"{source}: no such file")
    total = source.stat().st_size
    check_free_space(part.parent, total, what=f"copying {source}")
    if on_total:
        on_total(total)
    if part.exists() and progress:
        progress(-part.stat().st_size)
    with open(source, "rb") as src, open(part, "wb") as dst:
        while block := src.read(_CHUNK):
            dst.write(block)
            if progress:
                progress(len(block))
        dst.flush()
        os.fsync(dst.fileno())
    return total


def download_file(
    urls: Sequence[str],
    dest: str | os.PathLike[str],
    *,
    policy: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
    on_total: Callable[[int], None] | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DownloadResult:
    """Download the first mirror of ``urls`` that works into ``dest``, resuming a ``.part`` file.

    Args:
        urls: Mirrors in order of preference (``http(s)://``, ``file://`` or local paths).
        dest: Final path; written only once the file is complete.
        policy: Retries / backoff / timeout per mirror (default: :meth:`RetryPolicy.from_env`).
        progress: Called with each number of bytes written (negative on a restart).
        on_total: Called with the file's total size once a server reports it.
        session: A ``requests`` session to reuse connections.
        sleep: Waiting function (tests pass a fake to skip backoff waits).

    Returns:
        Where the file is and which mirror served it.

    Raises:
        DownloadError: If no mirror delivered the complete file; the message lists every attempt.
    """
    policy = policy or RetryPolicy.from_env()
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    part, meta = _part_paths(target)
    own_session = session is None
    http = session or requests.Session()
    failures: list[str] = []
    try:
        for url in urls:
            local = local_path_of(url)
            delay = policy.backoff_s
            for attempt in range(1, policy.attempts + 1):
                resumed_from = part.stat().st_size if part.exists() else 0
                try:
                    if local is not None:
                        size = _copy_local(local, part, progress, on_total)
                    else:
                        size = _fetch_http(url, part, meta, http, policy, progress, on_total)
                except _Fatal as exc:
                    failures.append(f"{url}: {exc}")
                    break
                except _Transient as exc:
                    failures.append(f"{url} (try {attempt}/{policy.attempts}): {exc}")
                    if attempt < policy.attempts:
                        sleep(min(delay, policy.max_backoff_s))
                        delay *= 2
                    continue
                os.replace(part, target)
                meta.unlink(missing_ok=True)
                fsync_dir(target.parent)
                return DownloadResult(target, url, size, resumed_from)
    finally:
        if own_session:
            http.close()
    # Leave a .part from HTTP behind: a rerun resumes it.
    tried = "\n  ".join(failures) if failures else "no mirrors given"
    raise DownloadError(
        f"could not download {target.name} into {target.parent}:\n  {tried}\n"
        "Check the URL / mirror (--base-url or OFFGEN_BASE_URL) and your connection; rerun the "
        "same command to resume."
    )
