"""A forward-only, seekable view of a ``.xz`` file's decompressed bytes, for ``tarfile``.

``tarfile``'s own stream mode (``r|xz``) decompresses 10 KiB of input per call and re-slices its
buffer on every read, which costs ~3x the CPU of the decompression itself on the published
archives; ``lzma.open`` reads members through an 8 KiB buffer. Here each read decompresses
straight into chunks of at most 1 MiB (``max_length``, so output stays in cache) and joins them
once, and ``seek`` skips forward by decompressing. Backward seeks are allowed only within the last
few KiB delivered, which is all ``tarfile`` needs (it re-reads the last header block).
"""

from __future__ import annotations

import io
import lzma
from typing import IO

__all__ = ["XzReader"]

_IN = 1 << 16  # compressed bytes read at a time
_OUT = 1 << 20  # decompressed bytes per call: stays in the L2 / L3 cache
_TAIL = 4096  # delivered bytes kept for a short backward seek


class XzReader(io.RawIOBase):
    """Decompressed bytes of an open ``.xz`` file (one or more concatenated streams).

    A file that ends before an xz stream's end marker raises :class:`EOFError` on the read that
    reaches its end, so truncation is never mistaken for the end of the data.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._dec = lzma.LZMADecompressor()
        self._pos = 0
        self._tail = b""
        self._replay = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset + (self._pos if whence == io.SEEK_CUR else 0)
        if whence not in (io.SEEK_SET, io.SEEK_CUR):
            raise io.UnsupportedOperation("xz stream: seek from the end")
        back = self._pos - target
        if back > 0:
            kept = self._tail + self._replay
            if back > len(self._tail):
                raise io.UnsupportedOperation("xz stream: seeking backward")
            self._replay = kept[len(self._tail) - back :]
            self._tail = self._tail[: len(self._tail) - back]
            self._pos = target
        while self._pos < target:
            if not self.read(min(target - self._pos, _OUT)):
                break
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        want = (1 << 62) if size is None or size < 0 else size
        chunks: list[bytes] = []
        if self._replay:
            chunks.append(self._replay[:want])
            self._replay = self._replay[want:]
            want -= len(chunks[0])
        while want > 0 and not self._done:
            out = self._decompress(min(want, _OUT))
            if out:
                chunks.append(out)
                want -= len(out)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._pos += len(data)
        self._tail = (self._tail + data[-_TAIL:])[-_TAIL:]
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` in place, 1 MiB of output at a time (one copy, while it is cached)."""
        view = memoryview(buffer).cast("B")
        filled = 0
        if self._replay:
            filled = len(self._replay[: len(view)])
            view[:filled] = self._replay[:filled]
            self._replay = self._replay[filled:]
        while filled < len(view) and not self._done:
            out = self._decompress(min(len(view) - filled, _OUT))
            view[filled : filled + len(out)] = out
            filled += len(out)
        self._pos += filled
        self._tail = (self._tail + bytes(view[max(0, filled - _TAIL) : filled]))[-_TAIL:]
        return filled

    def _decompress(self, limit: int) -> bytes:
        if self._dec.eof:
            rest = self._dec.unused_data.lstrip(b"\0") or self._raw.read(_IN).lstrip(b"\0")
            if not rest:  # the last stream ended (stream padding is zero bytes)
                self._done = True
                return b""
            self._dec = lzma.LZMADecompressor()
            return self._dec.decompress(rest, limit)
        data = b""
        if self._dec.needs_input:
            data = self._raw.read(_IN)
            if not data:
                raise EOFError("the .xz file ends before its end-of-stream marker")
        return self._dec.decompress(data, limit)
