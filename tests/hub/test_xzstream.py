"""The two readers of a ``.xz`` file's decompressed bytes: in-process (``lzma``) and through the
``xz`` program (a child process); same bytes, same refusals, one-line errors."""

from __future__ import annotations

import io
import lzma
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from offgen.errors import CorruptStoreError
from offgen.hub._xzstream import XzProcessReader, XzReader, open_xz
from offgen.hub.extract import safe_extract

XZ = shutil.which("xz")
needs_xz = pytest.mark.skipif(XZ is None, reason="the xz program is not installed")

Open = Callable[[Path], XzReader]


def _in_process(path: Path) -> XzReader:
    return XzReader(io.BytesIO(path.read_bytes()))


def _child(path: Path) -> XzReader:
    assert XZ is not None
    return XzProcessReader(path, XZ)


READERS = [
    pytest.param(_in_process, id="lzma"),
    pytest.param(_child, id="xz-program", marks=needs_xz),
]


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


@needs_xz
def test_closing_early_stops_the_child(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "big.xz"
    path.write_bytes(lzma.compress(payload * 20))
    assert XZ is not None
    reader = XzProcessReader(path, XZ)
    assert reader.read(100) == payload[:100]
    reader.close()  # the child was blocked writing into a full pipe
    assert reader._proc.returncode is not None  # reaped, not left running


def test_open_xz_uses_the_program_unless_told_not_to(
    tmp_path: Path, payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _two_streams(tmp_path / "p.xz", payload)
    with open(path, "rb") as raw:
        monkeypatch.setenv("OFFGEN_XZ", "python")
        with open_xz(path, raw) as forced:
            assert type(forced) is XzReader and forced.read() == payload
    monkeypatch.delenv("OFFGEN_XZ")
    with open(path, "rb") as raw, open_xz(path, raw) as chosen:
        assert type(chosen) is (XzProcessReader if XZ else XzReader)
        assert chosen.read() == payload


@needs_xz
@pytest.mark.parametrize("decoder", ["xz", "python"])
def test_truncated_tar_xz_is_one_corrupt_store_error_naming_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoder: str
) -> None:
    monkeypatch.setenv("OFFGEN_XZ", decoder)
    archive = tmp_path / "t.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name in ("coinrun/a.npy", "coinrun/b.npy"):
            info = tarfile.TarInfo(name)
            info.size = 400_000
            tar.addfile(info, io.BytesIO(os.urandom(400_000)))
    archive.write_bytes(archive.read_bytes()[:-300_000])
    with pytest.raises(CorruptStoreError) as failed:
        safe_extract(archive, tmp_path / "out", reserve=0)
    message = str(failed.value)
    assert str(archive) in message and "\n" not in message
