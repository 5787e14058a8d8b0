"""Safe extraction: every escape kind refused, nothing written outside, space checked."""

from __future__ import annotations

import lzma
import os
import tarfile
from pathlib import Path

import pytest
from fixtures.factories import add_bytes

from offgen.errors import CorruptStoreError, UnsafeFileError
from offgen.hub.extract import DiskSpaceError, safe_extract, uncompressed_size


def _tar(path: Path, build: object, mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        add_bytes(tar, "coinrun/ok.npy", b"fine")
        build(tar)  # type: ignore[operator]
    return path


def _entry(name: str, kind: bytes, link: str = "") -> object:
    def build(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        tar.addfile(info)

    return build


MALICIOUS = {
    "absolute": lambda t: add_bytes(t, "/tmp/offgen_evil_abs", b"x"),
    "dotdot": lambda t: add_bytes(t, "coinrun/../../evil", b"x"),
    "symlink_outside": _entry("coinrun/link", tarfile.SYMTYPE, "../../outside"),
    "symlink_absolute": _entry("coinrun/link", tarfile.SYMTYPE, "/etc/passwd"),
    "hardlink_outside": _entry("coinrun/hard", tarfile.LNKTYPE, "../outside"),
    "device": _entry("coinrun/dev", tarfile.CHRTYPE),
    "block_device": _entry("coinrun/blk", tarfile.BLKTYPE),
    "fifo": _entry("coinrun/fifo", tarfile.FIFOTYPE),
}


@pytest.mark.parametrize("kind", sorted(MALICIOUS))
def test_malicious_members_refused_and_nothing_written(tmp_path: Path, kind: str) -> None:
    archive = _tar(tmp_path / "evil.tar", MALICIOUS[kind])
    sandbox = tmp_path / "sandbox"
    target = sandbox / "target"
    target.mkdir(parents=True)
    with pytest.raises(UnsafeFileError) as info:
        safe_extract(archive, target, reserve=0)
    assert "evil.tar" in str(info.value)
    # Nothing at all was written: not outside, and not the safe member before the bad one.
    assert [p for p in sandbox.rglob("*") if p != target] == []
    assert not Path("/tmp/offgen_evil_abs").exists()


def test_good_archive_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "good.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        add_bytes(tar, "coinrun/a.npy", b"a" * 1000)
        add_bytes(tar, "coinrun/sub/b.npy", b"b" * 10)
        add_bytes(tar, "other/c.npy", b"c")
    out = safe_extract(
        archive, tmp_path / "t", reserve=0, select=lambda p: p if p.startswith("coinrun/") else None
    )
    assert sorted(p.relative_to(tmp_path / "t").as_posix() for p in out) == [
        "coinrun/a.npy",
        "coinrun/sub/b.npy",
    ]
    assert (tmp_path / "t" / "coinrun" / "a.npy").read_bytes() == b"a" * 1000
    assert not list((tmp_path / "t").glob(".extracting-*"))


def test_xz_index_gives_exact_tar_size(tmp_path: Path) -> None:
    plain = _tar(tmp_path / "x.tar", lambda t: add_bytes(t, "coinrun/big", bytes(300_000)))
    xz = tmp_path / "x.tar.xz"
    xz.write_bytes(lzma.compress(plain.read_bytes()))
    assert uncompressed_size(xz) == plain.stat().st_size
    # Two concatenated xz streams (parallel compressors write those) are summed.
    xz.write_bytes(lzma.compress(b"a" * 5000) + lzma.compress(b"b" * 7000))
    assert uncompressed_size(xz) == 12_000


def test_disk_space_shortfall_says_how_much(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _tar(tmp_path / "x.tar", lambda t: None)
    monkeypatch.setenv("OFFGEN_MIN_FREE_BYTES", str(1 << 60))
    with pytest.raises(DiskSpaceError, match=r"needs 10.2 KB .*\(OFFGEN_MIN_FREE_BYTES\)"):
        safe_extract(archive, tmp_path / "t")
    assert not list((tmp_path / "t").iterdir())


@pytest.mark.parametrize("suffix", ["tar", "tar.xz"])
def test_truncated_archive_is_an_error_and_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    mode = "w:xz" if suffix == "tar.xz" else "w"
    archive = tmp_path / f"t.{suffix}"
    with tarfile.open(archive, mode) as tar:
        add_bytes(tar, "coinrun/a.npy", os.urandom(200_000))
        add_bytes(tar, "coinrun/b.npy", os.urandom(200_000))
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(CorruptStoreError, match=r"t\.tar"):
        safe_extract(archive, tmp_path / "t", reserve=0)
    assert [p for p in (tmp_path / "t").rglob("*")] == []
