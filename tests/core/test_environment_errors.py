"""The machine's refusals are one clear line, typed as a user would (issue: reliability, item 5).

A file where an output folder should be, a store path that is a file, a full disk, a read-only file
system: each command exits 2 with one ``error:`` line naming the path and what to do, never a
traceback, and leaves nothing that looks like a valid store.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import offgen
from offgen.data import Episode
from offgen.data.legacy import write_npz_episode
from offgen.errors import DiskSpaceError, IncompleteStoreError
from offgen.hub.http import RetryPolicy, download_file

BIN = Path(sys.executable).parent


def run(tool: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / tool), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture
def legacy_folder(tmp_path: Path, procgen_episodes: list[Episode]) -> Path:
    for i, episode in enumerate(procgen_episodes[:3]):
        write_npz_episode(tmp_path / "dl" / "coinrun", episode, i)
    return tmp_path / "dl" / "coinrun"


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not a store\n")
    return path


@pytest.mark.parametrize("command", ["info", "verify"])
def test_store_path_that_is_a_file(command: str, a_file: Path) -> None:
    assert_one_line_error(run("offgen", command, str(a_file)), str(a_file), "not an offgen store")


def test_convert_output_is_a_file(legacy_folder: Path, a_file: Path) -> None:
    result = run("offgen", "convert", str(legacy_folder), str(a_file), "--game", "coinrun")
    assert_one_line_error(result, str(a_file))
    assert a_file.read_text() == "not a store\n"


def test_collect_output_is_a_file(a_file: Path) -> None:
    result = run(
        "offgen-collect", "--game", "coinrun", "--policy", "random",
        "--num_env_steps", "64", "--num-envs", "2", "--output", str(a_file / "store"),
    )  # fmt: skip
    assert_one_line_error(result, str(a_file))


def test_download_output_is_a_file(a_file: Path, tmp_path: Path) -> None:
    result = run(
        "offgen-download", "-d", "expert_1M", "-g", "coinrun", "--output", str(a_file),
        "--base-url", f"file://{tmp_path}/nowhere", "-q",
    )  # fmt: skip
    assert_one_line_error(result, str(a_file))


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    """A real small file system, where the machine lets tests mount one (root in a container)."""
    path.mkdir(parents=True)
    opts = ",".join([f"size={size}", *options])
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, f"offgen-test-{uuid.uuid4().hex[:8]}", str(path)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the full-disk case is untested")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_convert_into_a_full_disk(legacy_folder: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "256k") as small:
        out = small / "store"
        result = run("offgen", "convert", str(legacy_folder), str(out), "--game", "coinrun")
        assert_one_line_error(result, "No space left on device", "rerun")
        # What is left says it is unfinished, and loading it is refused: nothing looks complete.
        assert "writing" in run("offgen", "info", str(out)).stdout
        with pytest.raises(IncompleteStoreError):
            offgen.load(out)


def test_convert_onto_a_read_only_file_system(legacy_folder: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", "ro") as ro:
        result = run(
            "offgen", "convert", str(legacy_folder), str(ro / "store"), "--game", "coinrun"
        )
        assert_one_line_error(result, "Read-only file system", "writable disk")


def test_download_checks_free_space_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.archive_server import ArchiveServer

    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "big.bin").write_bytes(os.urandom(1 << 20))
    # Ask to keep more free than any disk has: the file cannot fit, and nothing is written.
    monkeypatch.setenv("OFFGEN_MIN_FREE_BYTES", str(1 << 62))
    expected = r"not enough disk space for downloading \S*big\.bin"
    with ArchiveServer(tmp_path / "srv") as server, pytest.raises(DiskSpaceError, match=expected):
        download_file(
            [server.url("big.bin")], tmp_path / "out" / "big.bin",
            policy=RetryPolicy(attempts=1, backoff_s=0.0, timeout_s=10),
        )  # fmt: skip
    assert not (tmp_path / "out" / "big.bin").exists()
    part = tmp_path / "out" / "big.bin.part"
    assert not part.exists() or part.stat().st_size == 0
