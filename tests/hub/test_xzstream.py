"""The reader of a ``.xz`` file's decompressed bytes (``offgen.hub._xzstream``): the same bytes as
the file across several streams, the seeks ``tarfile`` makes, one-line errors on damage."""

from __future__ import annotations

import io
import lzma
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from offgen.hub._xzstream import XzReader

Open = Callable[[Path], XzReader]


def _in_process(path: Path) -> XzReader:
    return XzReader(io.BytesIO(path.read_bytes()))


READERS = [pytest.param(_in_process, id="lzma")]


@pytest.fixture
def payload() -> bytes:
    rng_bytes = os.urandom(300_000)
    return rng_bytes + bytes(2_000_000) + rng_bytes[:1000]  # incompressible and compressible runs


def _two_streams(path: Path, payload: bytes) -> Path:
    half = len(payload) // 2
    path.write_bytes(lzma.compress(payload[:half]) + lzma.compress(payload[half:]))
    return path


@pytest.mark.parametrize("opener", READERS)
def test_reads_seeks_and_fills_buffers_like_the_file(
    tmp_path: Path, payload: bytes, opener: Open
) -> None:
    reader = opener(_two_streams(tmp_path / "p.xz", payload))
    try:
        assert reader.read(10) == payload[:10]
        reader.seek(5)  # a short backward seek, as tarfile makes
        buffer = bytearray(1_500_000)
        assert reader.readinto(buffer) == len(buffer)
        assert bytes(buffer) == payload[5 : 5 + len(buffer)]
        reader.seek(2_000_000)  # forward: skipped by decompressing
        assert reader.read() == payload[2_000_000:]
        assert reader.read(1) == b"" and reader.tell() == len(payload)
        with pytest.raises(io.UnsupportedOperation):
            reader.seek(0)
    finally:
        reader.close()


@pytest.mark.parametrize("opener", READERS)
@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_damaged_data_raises_on_the_read_that_reaches_it(
    tmp_path: Path, payload: bytes, opener: Open, damage: str
) -> None:
    data = bytearray(lzma.compress(payload))
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path = tmp_path / "d.xz"
    path.write_bytes(bytes(data))
    reader = opener(path)
    try:
        with pytest.raises((lzma.LZMAError, EOFError)) as failed:
            while reader.read(1 << 20):
                pass
        assert "\n" not in str(failed.value)
    finally:
        reader.close()
