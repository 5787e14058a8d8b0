"""A real threaded HTTP file server on 127.0.0.1 with Range support and injectable faults."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Faults:
    """Per-path faults (paths are URL paths like ``/DGRL/1M/expert/coinrun.tar.xz``)."""

    not_found: set[str] = field(default_factory=set)
    errors_500: dict[str, int] = field(default_factory=dict)  # path -> remaining 500s
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent then cut (once)
    ignore_range: bool = False
    corrupt_byte: dict[str, int] = field(default_factory=dict)  # path -> offset flipped


class ArchiveServer:
    """Serve ``root`` over HTTP; ``url(path)`` gives the address of a file under it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.range_requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _serve(self, head: bool) -> None:
                path = self.path.split("?")[0]
                with server._lock:
                    server.requests[path] += 1
                faults = server.faults
                file = (server.root / path.lstrip("/")).resolve()
                if (
                    path in faults.not_found
                    or not file.is_file()
                    or server.root not in file.parents
                ):
                    self._plain(404, b"not found")
                    return
                with server._lock:
                    remaining = faults.errors_500.get(path, 0)
                    if remaining:
                        faults.errors_500[path] = remaining - 1
                if remaining:
                    self._plain(500, b"<html>internal error</html>")
                    return
                data = bytearray(file.read_bytes())
                if path in faults.corrupt_byte:
                    data[faults.corrupt_byte[path]] ^= 0xFF
                etag = '"' + hashlib.md5(data).hexdigest() + '"'
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and not faults.ignore_range:
                    server.range_requests.append((path, rng))
                    if_range = self.headers.get("If-Range")
                    if if_range is None or if_range == etag:
                        start = int(rng.removeprefix("bytes=").split("-")[0])
                        status = 206
                        if start >= len(data):
                            self.send_response(416)
                            self.send_header("Content-Range", f"bytes */{len(data)}")
                            self.send_header("Content-Length", "0")
                            self.end_headers()
                            return
                body = bytes(data[start:])
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if head:
                    return
                with server._lock:
                    cut = faults.drop_after.pop(path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def _plain(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def __enter__(self) -> ArchiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)
