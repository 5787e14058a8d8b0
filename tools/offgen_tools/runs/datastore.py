"""Reader for WandB's transaction log files (``run-<id>.wandb``), without the WandB SDK's reader.

Layout (the SDK's ``datastore`` format, leveldb-log style):

* a 7-byte file header: ``b":W&B"``, the 16-bit little-endian magic ``0xBEE1``, version byte ``0``;
* then 32 KiB blocks. Each record chunk has a 7-byte header (CRC-32 ``<I``, length ``<H``,
  type ``B``) followed by ``length`` bytes. Types: 1 full, 2 first, 3 middle, 4 last; a
  record split across blocks is a first chunk, middle chunks and a last chunk. When fewer than
  7 bytes remain in a block they are zero padding. The CRC is ``zlib.crc32(data,
  crc32(bytes([type])))``. The file header counts towards the first block.

Each complete record is one serialized ``wandb.proto.wandb_internal_pb2.Record``.
A crashed writer leaves a truncated last record; the reader stops there and says so.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from offgen_tools.errors import WandbFileError

HEADER_IDENT = b":W&B"
HEADER_MAGIC = 0xBEE1
SUPPORTED_VERSIONS = (0,)
HEADER_LEN = 7
BLOCK_LEN = 32768

FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4

_CHUNK = struct.Struct("<IHB")
_FILE_HEADER = struct.Struct("<4sHB")
_TYPE_CRC = [zlib.crc32(bytes([t])) & 0xFFFFFFFF for t in range(LAST + 1)]


class RecordReader:
    """Iterate the raw protobuf records of one ``.wandb`` file.

    Attributes:
        path: The file.
        truncated: After iteration, True when the file ended inside a record (crashed writer).

    Example:
        >>> reader = RecordReader(path)            # doctest: +SKIP
        >>> payloads = list(reader)                # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        """Open a file lazily; the header is checked when iteration starts.

        Args:
            path: The ``.wandb`` file.
        """
        self.path = Path(path)
        self.truncated = False

    def __iter__(self) -> Iterator[bytes]:
        data = self.path.read_bytes()
        check_header(data, self.path)
        yield from self._records(data)

    def _records(self, data: bytes) -> Iterator[bytes]:
        pos = HEADER_LEN
        end = len(data)
        pending: list[bytes] | None = None
        unpack = _CHUNK.unpack_from
        crc32 = zlib.crc32
        while True:
            space = BLOCK_LEN - pos % BLOCK_LEN
            if space < HEADER_LEN:
                pos += space
            if pos >= end:
                if pending is not None:
                    self.truncated = True
                return
            if pos + HEADER_LEN > end:
                self.truncated = True
                return
            checksum, length, kind = unpack(data, pos)
            if checksum == 0 and length == 0 and kind == 0:
                # Zero-filled tail: a writer that preallocated or died before writing.
                self.truncated = True
                return
            start = pos + HEADER_LEN
            stop = start + length
            if stop > end:
                self.truncated = True
                return
            if kind < FULL or kind > LAST:
                raise WandbFileError(f"{self.path}: unknown record type {kind} at byte {pos}")
            chunk = data[start:stop]
            if crc32(chunk, _TYPE_CRC[kind]) & 0xFFFFFFFF != checksum:
                raise WandbFileError(f"{self.path}: checksum mismatch at byte {pos}; file corrupt")
            pos = stop
            if kind == FULL:
                if pending is not None:
                    raise WandbFileError(f"{self.path}: full record inside a split record")
                yield chunk
            elif kind == FIRST:
                if pending is not None:
                    raise WandbFileError(f"{self.path}: first chunk inside a split record")
                pending = [chunk]
            else:
                if pending is None:
                    raise WandbFileError(f"{self.path}: continuation chunk without a first chunk")
                pending.append(chunk)
                if kind == LAST:
                    yield b"".join(pending)
                    pending = None


def check_header(data: bytes, path: str | Path = "<bytes>") -> int:
    """Validate a ``.wandb`` file header.

    Args:
        data: The file contents (at least the first 7 bytes).
        path: Used in error messages.

    Returns:
        The format version.

    Raises:
        WandbFileError: If the identifier, magic or version is not one this reader knows.
    """
    if len(data) < HEADER_LEN:
        raise WandbFileError(f"{path}: {len(data)} bytes, too short for a .wandb header")
    ident, magic, version = _FILE_HEADER.unpack_from(data, 0)
    if ident != HEADER_IDENT:
        raise WandbFileError(f"{path}: not a .wandb file (identifier {ident!r})")
    if magic != HEADER_MAGIC:
        raise WandbFileError(f"{path}: bad magic 0x{magic:04X}, expected 0x{HEADER_MAGIC:04X}")
    if version not in SUPPORTED_VERSIONS:
        raise WandbFileError(
            f"{path}: unsupported .wandb format version {version} "
            f"(this reader knows {list(SUPPORTED_VERSIONS)}); upgrade offgen_tools"
        )
    return int(version)


def write_records(path: str | Path, payloads: list[bytes], *, version: int = 0) -> None:
    """Write payloads in the ``.wandb`` log format (used by tests and benchmarks).

    Args:
        path: Output file.
        payloads: Serialized records.
        version: Header version byte.
    """
    out = bytearray(_FILE_HEADER.pack(HEADER_IDENT, HEADER_MAGIC, version))
    for payload in payloads:
        view = memoryview(payload)
        first = True
        while True:
            space = BLOCK_LEN - len(out) % BLOCK_LEN
            if space < HEADER_LEN:
                out += b"\x00" * space
                space = BLOCK_LEN
            room = space - HEADER_LEN
            piece = view[:room]
            view = view[room:]
            done = len(view) == 0
            if first and done:
                kind = FULL
            elif first:
                kind = FIRST
            elif done:
                kind = LAST
            else:
                kind = MIDDLE
            chunk = bytes(piece)
            out += _CHUNK.pack(zlib.crc32(chunk, _TYPE_CRC[kind]) & 0xFFFFFFFF, len(chunk), kind)
            out += chunk
            first = False
            if done:
                break
    Path(path).write_bytes(bytes(out))
