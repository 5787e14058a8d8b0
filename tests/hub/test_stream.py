"""Converting published archives straight from the tar stream (offgen.hub.stream)."""

from __future__ import annotations

import io
import json
import lzma
import os
import pickle
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures.factories import BUNDLE_100K, SCHEME1_COINRUN, LegacyFactory, add_bytes

import offgen
from hub.archive_server import ArchiveServer
from offgen.data import Episode
from offgen.data.convert import SOURCES_FILE, convert_legacy
from offgen.data.format import EPISODES, MANIFEST
from offgen.data.table import decode_records
from offgen.errors import CorruptStoreError, UnsafeFileError
from offgen.hub import stream
from offgen.hub.download import download_dataset
from offgen.hub.extract import iter_safe_members, safe_extract
from offgen.hub.http import RetryPolicy
from offgen.hub.stream import convert_archive

FAST = RetryPolicy(attempts=2, backoff_s=0.0, timeout_s=20)


def _manifest(store: Path) -> dict[str, Any]:
    files: dict[str, Any] = json.loads((store / MANIFEST).read_bytes())["files"]
    return files


def _complete(store: Path) -> bool:
    info = store / "info.json"
    return info.is_file() and json.loads(info.read_bytes()).get("status") == "complete"


def test_streamed_store_is_identical_to_extract_then_convert(
    published_tree: Path, tmp_path: Path
) -> None:
    archive = published_tree / SCHEME1_COINRUN
    safe_extract(archive, tmp_path / "unpacked")
    convert_legacy(
        tmp_path / "unpacked", tmp_path / "old", game="coinrun", dataset="1M_E", progress=False
    )
    result = convert_archive(
        archive, {"coinrun": tmp_path / "new"}, dataset="1M_E", progress=False
    )["coinrun"]
    assert result.converted == 3 and result.skipped == 0
    old, new = tmp_path / "old", tmp_path / "new"
    assert _complete(new)
    assert _manifest(new) == _manifest(old)  # frames, steps, table and sources, byte for byte
    assert (new / EPISODES).read_bytes() == (old / EPISODES).read_bytes()
    assert (new / SOURCES_FILE).read_text() == (old / SOURCES_FILE).read_text()
    a, b = offgen.load(old), offgen.load(new)
    for i in range(len(a)):
        np.testing.assert_array_equal(a.episode(i).observations, b.episode(i).observations)
    provenance = json.loads((new / "info.json").read_bytes())["provenance"]["converted_from"]
    assert provenance["order"] == "archive order" and provenance["files"] == 3


_KILL_AFTER_FIRST = """
import os, signal, sys
from offgen.data.writer import StoreWriter
from offgen.hub.stream import convert_archive

original = StoreWriter.write
def write(self, episode, *, frames=None):
    if self.num_episodes == 1:  # the first episode is committed: die before the second
        self.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, episode, frames=frames)
StoreWriter.write = write
convert_archive(sys.argv[1], {"coinrun": sys.argv[2]}, dataset="1M_E", progress=False)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_conversion_resumes_byte_identical(published_tree: Path, tmp_path: Path) -> None:
    archive = published_tree / SCHEME1_COINRUN
    convert_archive(archive, {"coinrun": tmp_path / "whole"}, dataset="1M_E", progress=False)
    store = tmp_path / "killed"
    child = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_FIRST, str(archive), str(store)],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert not _complete(store)
    rows = decode_records((store / EPISODES).read_bytes(), source="", tolerate_torn_tail=True)
    assert len(rows) == 1
    result = convert_archive(archive, {"coinrun": store}, dataset="1M_E", progress=False)
    assert (result["coinrun"].skipped, result["coinrun"].converted) == (1, 2)
    assert _manifest(store) == _manifest(tmp_path / "whole")


def _tar_with(path: Path, members: list[tuple[str, bytes]], *, symlink: str | None = None) -> Path:
    with tarfile.open(path, "w:xz" if path.name.endswith(".xz") else "w") as tar:
        for name, data in members:
            add_bytes(tar, name, data)
        if symlink is not None:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "../../etc/passwd"
            tar.addfile(info)
    return path


def _members(
    short_episodes: list[Episode], folder: Path, legacy_factory: LegacyFactory
) -> list[tuple[str, bytes]]:
    files = legacy_factory.files(short_episodes, folder)
    return [(f"coinrun/{f.name}", f.read_bytes()) for f in files]


@pytest.mark.parametrize("suffix", [".tar", ".tar.xz"])
def test_truncated_archive_names_the_member_and_leaves_no_complete_store(
    short_episodes: list[Episode], tmp_path: Path, suffix: str, legacy_factory: LegacyFactory
) -> None:
    members = _members(short_episodes, tmp_path / "files", legacy_factory)
    archive = _tar_with(tmp_path / f"coinrun{suffix}", members)
    whole = archive.read_bytes()
    archive.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(CorruptStoreError) as info:
        convert_archive(archive, {"coinrun": tmp_path / "store"}, progress=False)
    message = str(info.value)
    assert "\n" not in message and str(archive) in message
    assert any(name in message for name, _ in members), message
    assert not _complete(tmp_path / "store")


def test_hostile_members_are_refused_by_name(
    short_episodes: list[Episode], tmp_path: Path, legacy_factory: LegacyFactory
) -> None:
    members = _members(short_episodes, tmp_path / "files", legacy_factory)
    link = _tar_with(tmp_path / "link.tar.xz", members[:1], symlink="coinrun/evil.npy")
    with pytest.raises(UnsafeFileError, match=r"coinrun/evil\.npy"):
        convert_archive(link, {"coinrun": tmp_path / "a"}, progress=False)
    assert not _complete(tmp_path / "a")

    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("echo pwned",))

    header = io.BytesIO()
    np.save(header, np.array({"observations": 1}, dtype=object), allow_pickle=True)
    evil = header.getvalue().split(b"\n", 1)[0] + b"\n" + pickle.dumps(Boom(), protocol=2)
    name = "coinrun/20230101T000009_9_5_1_0.00.npy"
    code = _tar_with(tmp_path / "code.tar", [*members[:1], (name, evil)])
    with pytest.raises(UnsafeFileError) as info:
        convert_archive(code, {"coinrun": tmp_path / "b"}, progress=False)
    assert f"{code}:{name}" in str(info.value) and "\n" not in str(info.value)
    assert not _complete(tmp_path / "b")


def test_bundle_converts_requested_games_in_one_pass(
    mirror: ArchiveServer,
    short_episodes: list[Episode],
    maze_openings: list[Episode],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[Path] = []
    original = iter_safe_members

    def counting(archive: Any, **kw: Any) -> Any:
        passes.append(Path(archive))
        return original(archive, **kw)

    monkeypatch.setattr(stream, "iter_safe_members", counting)
    results = download_dataset(
        "level_1_E",
        ["maze", "coinrun"],
        output=tmp_path,
        base_url=mirror.url("DGRL"),
        policy=FAST,
        progress=False,
        log=lambda _msg: None,
    )
    assert [r.game for r in results] == ["maze", "coinrun"]
    assert [p.name for p in passes] == [Path(BUNDLE_100K).name]
    assert mirror.requests.get("/" + BUNDLE_100K) == 1
    for result, episodes in zip(results, (maze_openings, short_episodes), strict=True):
        assert _complete(result.path)
        data = offgen.load(result.path)
        assert len(data) == len(episodes)
        for i, episode in enumerate(episodes):
            np.testing.assert_array_equal(data.episode(i).observations, episode.observations)


def test_download_writes_no_unpacked_files(
    mirror: ArchiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import offgen.hub.download as download

    def no_extract(*_args: Any, **_kw: Any) -> Any:
        raise AssertionError("safe_extract called for --format offgen")

    monkeypatch.setattr(download, "safe_extract", no_extract)
    download_dataset(
        "expert_1M",
        ["coinrun"],
        output=tmp_path,
        base_url=mirror.url("DGRL"),
        policy=FAST,
        progress=False,
        log=lambda _msg: None,
    )
    root = tmp_path / "expert_1M"
    assert _complete(root / "coinrun")
    assert not (root / ".unpacked").exists()
    leftovers = [p for p in tmp_path.rglob("*") if p.suffix in (".npy", ".npz")]
    assert leftovers == []


@pytest.mark.parametrize("suffix", [".tar", ".tar.xz"])
def test_tar_cut_at_a_header_boundary_is_not_a_shorter_archive(
    short_episodes: list[Episode], tmp_path: Path, suffix: str, legacy_factory: LegacyFactory
) -> None:
    """tarfile ends its iteration silently at a missing header; the end-of-archive check does not."""
    members = _members(short_episodes, tmp_path / "files", legacy_factory)
    plain = _tar_with(tmp_path / "whole.tar", members)
    with tarfile.open(plain) as tar:
        cut = tar.getmembers()[2].offset  # the third member's header starts here
    data = plain.read_bytes()[:cut]
    archive = tmp_path / f"coinrun{suffix}"
    # For .tar.xz: a complete xz stream of the cut tar data, so only the tar check can notice.
    archive.write_bytes(lzma.compress(data, preset=1) if suffix == ".tar.xz" else data)
    with pytest.raises(CorruptStoreError, match="end-of-archive") as info:
        convert_archive(archive, {"coinrun": tmp_path / "store"}, progress=False)
    assert members[1][0] in str(info.value)  # says after which member it fails
    assert not _complete(tmp_path / "store")
