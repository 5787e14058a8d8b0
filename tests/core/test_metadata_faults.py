"""Damaged metadata files: ``offgen verify``, ``offgen info`` and ``offgen.load`` each refuse them
with one CorruptStoreError line naming the file, never a traceback and never silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import offgen
from offgen._io import sha256_file
from offgen.cli import app
from offgen.data.format import EPISODES, INFO, MANIFEST, OBSERVATIONS, POLICIES
from offgen.data.info import read_info, write_info
from offgen.errors import CorruptStoreError

from .conftest import build_store

OFFGEN = str(Path(sys.executable).with_name("offgen"))


def _write(rel: str, data: bytes) -> Callable[[Path], str]:
    def damage(store: Path) -> str:
        (store / rel).write_bytes(data)
        return rel

    return damage


def _manifest(data: bytes | None = None) -> Callable[[Path], str]:
    """Replace the manifest (default: its ``files`` table by ``[]``) and record its sha256 in
    info.json, so that the manifest's schema, not its checksum, is what refuses it."""

    def damage(store: Path) -> str:
        if data is None:
            manifest = json.loads((store / MANIFEST).read_bytes())
            manifest["files"] = []
            (store / MANIFEST).write_text(json.dumps(manifest))
        else:
            (store / MANIFEST).write_bytes(data)
        info = read_info(store)
        write_info(store, replace(info, manifest_sha256=sha256_file(store / MANIFEST)))
        return MANIFEST

    return damage


def _policy_index_beyond_list(store: Path) -> str:
    (store / POLICIES).write_text("[]")
    return POLICIES


def _codec_shard_frames_0(store: Path) -> str:
    info = json.loads((store / INFO).read_bytes())
    info["codec"]["shard_frames"] = 0
    (store / INFO).write_text(json.dumps(info))
    return INFO


# Each damages one file and returns its path relative to the store.
CASES = {
    "policies-not-json": _write(POLICIES, b"nope"),
    "policies-strings": _write(POLICIES, b'["random"]'),
    "policies-no-id": _write(POLICIES, b'[{"name": "random"}]'),
    "policies-duplicate-id": _write(POLICIES, b'[{"id": "a"}, {"id": "a"}]'),
    "policies-missing-for-table": _policy_index_beyond_list,
    "manifest-files-list": _manifest(),
    "manifest-not-json": _manifest(b"\x00garbage"),
    "manifest-checksum": _write(MANIFEST, b"{}"),
    "codec-shard-frames-0": _codec_shard_frames_0,
    "zarr-json-garbage": _write(f"{OBSERVATIONS}/zarr.json", b"garbage{"),
    "episodes-emptied": _write(EPISODES, b""),
}


@pytest.fixture
def store(tmp_path: Path, small_episodes) -> Path:  # type: ignore[no-untyped-def]
    return build_store(tmp_path / "store", small_episodes[:4])


def _refused(result: object, rel: str) -> None:
    exc = getattr(result, "exception", None)
    assert isinstance(exc, CorruptStoreError), repr(exc)
    assert rel in str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_metadata_is_refused_by_verify_info_and_load(store: Path, case: str) -> None:
    rel = CASES[case](store)
    runner = CliRunner()
    _refused(runner.invoke(app, ["verify", str(store)]), rel)
    _refused(runner.invoke(app, ["verify", str(store), "--quick"]), rel)
    _refused(runner.invoke(app, ["info", str(store)]), rel)
    with pytest.raises(CorruptStoreError, match=rel.replace(".", r"\.")):
        offgen.load(store)


def test_damaged_metadata_from_the_command_line(store: Path) -> None:
    (store / POLICIES).write_bytes(b'["random"]')
    done = subprocess.run(
        [OFFGEN, "verify", str(store)], capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and POLICIES in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
