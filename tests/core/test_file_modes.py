"""Every file of a store (metadata included) gets the mode the umask gives, like the data files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from offgen.data import StoreWriter
from offgen.data.legacy import write_npz_episode

from .conftest import build_store


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]
    }


def test_store_files_follow_the_umask(tmp_path: Path, small_episodes, umask: int) -> None:  # type: ignore[no-untyped-def]
    store = build_store(tmp_path / "store", small_episodes[:4])
    with StoreWriter(store, game="coinrun", mode="append") as writer:  # rewrites the metadata
        writer.write(small_episodes[4])
        writer.add_policy("another")
    modes = _modes(store)
    for name in ("info.json", "policies.json", "episodes.bin", "manifest.json", "zarr.json"):
        assert modes[name] == 0o666 & ~umask, name
    for name, mode in modes.items():
        is_dir = (store / name).is_dir()
        assert mode == (0o777 if is_dir else 0o666) & ~umask, name


def test_npz_episode_files_follow_the_umask(tmp_path: Path, small_episodes, umask: int) -> None:  # type: ignore[no-untyped-def]
    path = write_npz_episode(tmp_path / "npz", small_episodes[0], 0)
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o666 & ~umask
