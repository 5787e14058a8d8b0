"""A store served by a static server that ignores ``Range`` reads correctly and verifies as intact.

``python -m http.server`` (``SimpleHTTPRequestHandler``) answers every ranged request with ``200`` and
the whole file. Before the range-safe filesystem, fsspec handed that whole file back as the range:
``offgen.load(url)`` called the intact store corrupt and ``offgen verify`` ended in a traceback.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fixtures.assertions import Reference
from fixtures.factories import DatasetFactory, EpisodeFactory
from typer.testing import CliRunner

from offgen.cli import app
from offgen.data.dataset import OffgenDataset
from offgen.data.remote import RangeSafeHTTPFileSystem


class _CountingHandler(SimpleHTTPRequestHandler):
    """Static files, no Range support; counts GETs per path."""

    gets: dict[str, int]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.gets[self.path] = self.gets.get(self.path, 0) + 1
        super().do_GET()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client closing a streamed body early is not the server's business here


@pytest.fixture
def plain_server(
    tmp_path: Path, dataset_factory: DatasetFactory, episode_factory: EpisodeFactory
) -> Iterator[tuple[str, OffgenDataset, dict[str, int]]]:
    local = dataset_factory(tmp_path / "www" / "coinrun", episode_factory.mixed(3, 10))
    gets: dict[str, int] = {}
    handler_class = type("Handler", (_CountingHandler,), {"gets": gets})
    handler = functools.partial(handler_class, directory=str(tmp_path / "www"))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/coinrun", local, gets
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_rangeless_server_samples_the_same_batches(
    plain_server: tuple[str, OffgenDataset, dict[str, int]],
) -> None:
    url, local, gets = plain_server
    ds = OffgenDataset.open(url)
    ref = Reference(local)
    ref.check_transitions(next(ds.transitions(64, strategy="ram", progress=False)))
    ref.check_windows(next(ds.windows(5, 16, strategy="stream", unit_frames=64)), 5, "left")
    fs = ds.store._group.store.fs
    assert isinstance(fs, RangeSafeHTTPFileSystem) and fs.ranges_supported is False
    # A shard file is fetched whole once and cut locally, not once per chunk read.
    shard_gets = [n for path, n in gets.items() if "/observations/c/" in path]
    assert shard_gets and max(shard_gets) <= 2


def test_rangeless_server_verifies_intact_and_catches_damage(
    plain_server: tuple[str, OffgenDataset, dict[str, int]],
) -> None:
    url, local, _ = plain_server
    ok = CliRunner().invoke(app, ["verify", url])
    assert ok.exit_code == 0, ok.output
    assert "Traceback" not in ok.output
    shard = next((Path(local.store.location) / "observations" / "c").rglob("*"))
    while shard.is_dir():
        shard = next(shard.iterdir())
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    bad = CliRunner().invoke(app, ["verify", url])
    assert bad.exit_code != 0
    message = " ".join(str(bad.exception).split())
    rel = shard.relative_to(Path(local.store.location)).as_posix()
    assert f"{url}/{rel}: sha256 mismatch" in message, message
