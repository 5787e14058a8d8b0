"""Fixtures for hub tests: archives in the published layout built from real Procgen episodes."""

from __future__ import annotations

import lzma
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.archive_server import ArchiveServer
from hub.legacy_archives import write_legacy_files
from offgen.data import Episode

SCHEME1_COINRUN = "DGRL/1M/expert/coinrun.tar.xz"
SCHEME2_COINRUN = "DGRL/Procgen/Datasets/Compressed/1M/level_200/expert/coinrun.tar.xz"
BUNDLE_100K = "DGRL/100k_procgen_dataset_1.tar"


@pytest.fixture(scope="session")
def short_episodes(procgen_episodes: list[Episode]) -> list[Episode]:
    """The three shortest real coinrun episodes (keeps archives small and tests fast)."""
    return sorted(procgen_episodes, key=lambda e: e.length)[:3]


def _tar_xz(members: list[tuple[Path, str]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    # preset 1: fast; the layout and format are what matter, not the ratio.
    with lzma.open(out, "wb", preset=1) as xz, tarfile.open(fileobj=xz, mode="w") as tar:
        for path, arcname in members:
            tar.add(path, arcname=arcname)


@pytest.fixture(scope="session")
def published_tree(tmp_path_factory: pytest.TempPathFactory, short_episodes: list[Episode]) -> Path:
    """A folder laid out like dl.fbaipublicfiles.com (both schemes) holding real episodes."""
    root = tmp_path_factory.mktemp("published")
    work = tmp_path_factory.mktemp("legacy_files")
    npy = write_legacy_files(short_episodes, work / "coinrun")
    members = [(p, f"coinrun/{p.name}") for p in npy]
    _tar_xz(members, root / SCHEME1_COINRUN)
    (root / SCHEME2_COINRUN).parent.mkdir(parents=True)
    shutil.copyfile(root / SCHEME1_COINRUN, root / SCHEME2_COINRUN)
    # The 100k bundle of the first scheme: every game in one plain .tar; here coinrun (.npy)
    # and maze (.npz files, as the collector wrote them).
    npz = write_legacy_files(short_episodes[:2], work / "maze", ext="npz")
    with tarfile.open(root / BUNDLE_100K, "w") as tar:
        for p, arcname in [*members, *[(p, f"maze/{p.name}") for p in npz]]:
            tar.add(p, arcname=arcname)
    return root


@pytest.fixture
def mirror(tmp_path: Path, published_tree: Path) -> Iterator[ArchiveServer]:
    """A fresh copy of the published tree served on 127.0.0.1 (tests may damage their copy)."""
    root = tmp_path / "mirror"
    shutil.copytree(published_tree, root)
    with ArchiveServer(root) as server:
        yield server
