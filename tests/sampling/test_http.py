"""A store served over real HTTP (a loopback ThreadingHTTPServer) opens and samples by URL."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fixtures.assertions import Reference
from fixtures.factories import DatasetFactory, EpisodeFactory

from offgen.data.dataset import OffgenDataset


class _RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single ``Range: bytes=a-b`` support (zarr shards are read by range)."""

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        spec = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not spec or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        first, _, last = spec.removeprefix("bytes=").partition("-")
        if first == "":  # suffix range: the last N bytes
            start, stop = max(0, len(data) - int(last)), len(data)
        else:
            start, stop = int(first), min(len(data), int(last) + 1 if last else len(data))
        body = data[start:stop]
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        import io

        return io.BytesIO(body)


@pytest.fixture
def served(
    tmp_path: Path, dataset_factory: DatasetFactory, episode_factory: EpisodeFactory
) -> Iterator[tuple[str, OffgenDataset]]:
    local = dataset_factory(tmp_path / "www" / "coinrun", episode_factory.mixed(3, 10))
    handler = functools.partial(_RangeHandler, directory=str(tmp_path / "www"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/coinrun", local
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_open_and_sample_over_http(served: tuple[str, OffgenDataset]) -> None:
    url, local = served
    ds = OffgenDataset.open(url)
    assert len(ds) == len(local) and ds.store.fingerprint != local.store.fingerprint
    ref = Reference(local)
    ref.check_transitions(next(ds.transitions(64, strategy="ram", progress=False)))
    ref.check_windows(next(ds.windows(5, 16, strategy="stream", unit_frames=64)), 5, "left")
    sampler = ds.transitions(64, strategy="memmap", progress=False)
    ref.check_transitions(next(sampler))
