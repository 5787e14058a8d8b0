"""The HTTP downloader against a real loopback server with injected faults."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.archive_server import ArchiveServer
from offgen.errors import DownloadError
from offgen.hub.http import RetryPolicy, download_file

FAST = RetryPolicy(attempts=3, backoff_s=0.0, timeout_s=10)


@pytest.fixture
def payload(tmp_path: Path) -> bytes:
    data = os.urandom(3 * (1 << 20) + 12345)
    (tmp_path / "srv" / "a").mkdir(parents=True)
    (tmp_path / "srv" / "a" / "f.bin").write_bytes(data)
    return data


@pytest.fixture
def server(tmp_path: Path, payload: bytes) -> Iterator[ArchiveServer]:
    with ArchiveServer(tmp_path / "srv") as srv:
        yield srv


def test_plain_download_reports_progress(
    server: ArchiveServer, payload: bytes, tmp_path: Path
) -> None:
    seen: list[int] = []
    totals: list[int] = []
    res = download_file(
        [server.url("a/f.bin")],
        tmp_path / "out" / "f.bin",
        policy=FAST,
        progress=seen.append,
        on_total=totals.append,
    )
    assert res.path.read_bytes() == payload
    assert sum(seen) == len(payload) and totals == [len(payload)]
    assert not (tmp_path / "out" / "f.bin.part").exists()


def test_dropped_connection_resumes_with_range(
    server: ArchiveServer, payload: bytes, tmp_path: Path
) -> None:
    server.faults.drop_after["/a/f.bin"] = 1_000_000
    res = download_file([server.url("a/f.bin")], tmp_path / "f.bin", policy=FAST)
    assert res.path.read_bytes() == payload
    # Bytes read before the cut are kept (up to the last whole read) and the rest is requested.
    assert 900_000 <= res.resumed_from <= 1_000_000
    assert server.range_requests == [("/a/f.bin", f"bytes={res.resumed_from}-")]


def test_partial_file_left_by_killed_run_is_resumed(
    server: ArchiveServer, payload: bytes, tmp_path: Path
) -> None:
    server.faults.drop_after["/a/f.bin"] = 500_000
    one_try = RetryPolicy(attempts=1, backoff_s=0.0)
    with pytest.raises(DownloadError, match="connection"):
        download_file([server.url("a/f.bin")], tmp_path / "f.bin", policy=one_try)
    assert not (tmp_path / "f.bin").exists()  # never mistaken for a finished file
    kept = (tmp_path / "f.bin.part").stat().st_size
    assert 400_000 <= kept <= 500_000
    res = download_file([server.url("a/f.bin")], tmp_path / "f.bin", policy=FAST)
    assert res.path.read_bytes() == payload and res.resumed_from == kept


def test_server_ignoring_range_restarts_cleanly(
    server: ArchiveServer, payload: bytes, tmp_path: Path
) -> None:
    server.faults.drop_after["/a/f.bin"] = 700_000
    server.faults.ignore_range = True
    seen: list[int] = []
    res = download_file(
        [server.url("a/f.bin")], tmp_path / "f.bin", policy=FAST, progress=seen.append
    )
    assert res.path.read_bytes() == payload  # not the first 700k spliced with the whole file
    assert sum(seen) == len(payload)


def test_404_on_first_mirror_uses_second(
    server: ArchiveServer, payload: bytes, tmp_path: Path
) -> None:
    res = download_file(
        [server.url("missing/f.bin"), server.url("a/f.bin")], tmp_path / "f.bin", policy=FAST
    )
    assert res.url == server.url("a/f.bin") and res.path.read_bytes() == payload
    assert server.requests["/missing/f.bin"] == 1  # a 404 is not retried


def test_500s_are_retried_then_succeed(
    server: ArchiveServer, payload: bytes, tmp_path: Path
) -> None:
    server.faults.errors_500["/a/f.bin"] = 2
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, backoff_s=0.5)
    res = download_file(
        [server.url("a/f.bin")], tmp_path / "f.bin", policy=policy, sleep=sleeps.append
    )
    assert res.path.read_bytes() == payload
    assert sleeps == [0.5, 1.0]  # exponential backoff


def test_persistent_500s_give_a_clear_error(server: ArchiveServer, tmp_path: Path) -> None:
    server.faults.errors_500["/a/f.bin"] = 100
    with pytest.raises(DownloadError) as info:
        download_file(
            [server.url("a/f.bin")], tmp_path / "f.bin", policy=FAST, sleep=lambda s: None
        )
    message = str(info.value)
    assert "HTTP 500" in message and "try 3/3" in message and "f.bin" in message
    assert not (tmp_path / "f.bin").exists()  # the error page is never saved as the file
    assert server.requests["/a/f.bin"] == 3


def test_local_folder_and_file_url_mirrors(payload: bytes, tmp_path: Path) -> None:
    src = tmp_path / "srv" / "a" / "f.bin"
    res = download_file([str(tmp_path / "nope.bin"), src.as_uri()], tmp_path / "o" / "f.bin")
    assert res.path.read_bytes() == payload
    res = download_file([str(src)], tmp_path / "o2" / "f.bin")
    assert res.path.read_bytes() == payload
