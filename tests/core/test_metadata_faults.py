"""Damaged metadata files: ``offgen verify``, ``offgen info`` and ``offgen.load`` each refuse them
with one CorruptStoreError line naming the file, never a traceback and never silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import offgen
from offgen.cli import app
from offgen.data.format import EPISODES, MANIFEST, OBSERVATIONS, POLICIES
from offgen.errors import CorruptStoreError

from .conftest import build_store

OFFGEN = str(Path(sys.executable).with_name("offgen"))


def _write(rel: str, data: bytes) -> Callable[[Path], str]:
    def damage(store: Path) -> str:
        (store / rel).write_bytes(data)
        return rel

    return damage


def _manifest_files_list(store: Path) -> str:
    manifest = json.loads((store / MANIFEST).read_bytes())
    manifest["files"] = []
    (store / MANIFEST).write_text(json.dumps(manifest))
    return MANIFEST


def _policy_index_beyond_list(store: Path) -> str:
    (store / POLICIES).write_text("[]")
    return POLICIES


# (damage, where the file is read: verify only, or also info / load)
CASES = {
    "policies-not-json": (_write(POLICIES, b"nope"), True),
    "policies-strings": (_write(POLICIES, b'["random"]'), True),
    "policies-no-id": (_write(POLICIES, b'[{"name": "random"}]'), True),
    "policies-duplicate-id": (_write(POLICIES, b'[{"id": "a"}, {"id": "a"}]'), True),
    "policies-missing-for-table": (_policy_index_beyond_list, True),
    "manifest-files-list": (_manifest_files_list, False),
    "manifest-not-json": (_write(MANIFEST, b"\x00garbage"), False),
    "zarr-json-garbage": (_write(f"{OBSERVATIONS}/zarr.json", b"garbage{"), True),
    "episodes-emptied": (_write(EPISODES, b""), True),
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
    damage, read_on_open = CASES[case]
    rel = damage(store)
    runner = CliRunner()
    _refused(runner.invoke(app, ["verify", str(store)]), rel)
    _refused(runner.invoke(app, ["verify", str(store), "--quick"]), rel)
    if read_on_open:
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
