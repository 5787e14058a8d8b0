"""Fixtures for hub tests: archives in the published layout built from real Procgen episodes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.factories import EpisodeFactory, LegacyFactory

from hub.archive_server import ArchiveServer
from offgen.data import Episode


@pytest.fixture(scope="session")
def short_episodes(procgen_episodes: list[Episode]) -> list[Episode]:
    """The three shortest real coinrun episodes (keeps archives small and tests fast)."""
    return sorted(procgen_episodes, key=lambda e: e.length)[:3]


@pytest.fixture(scope="session")
def maze_openings(episode_factory: EpisodeFactory) -> list[Episode]:
    """Two real maze episode openings (what the bundle holds for maze)."""
    return episode_factory.procgen_openings("maze", 2)


@pytest.fixture(scope="session")
def bigfish_openings(episode_factory: EpisodeFactory) -> list[Episode]:
    """Two real bigfish episode openings."""
    return episode_factory.procgen_openings("bigfish", 2)


@pytest.fixture(scope="session")
def published_tree(
    tmp_path_factory: pytest.TempPathFactory,
    short_episodes: list[Episode],
    maze_openings: list[Episode],
    legacy_factory: LegacyFactory,
) -> Path:
    """A folder laid out like dl.fbaipublicfiles.com (both schemes) holding real episodes."""
    root = tmp_path_factory.mktemp("published")
    work = tmp_path_factory.mktemp("legacy_files")
    return legacy_factory.published_tree(root, work, short_episodes, maze_openings)


@pytest.fixture
def mirror(tmp_path: Path, published_tree: Path) -> Iterator[ArchiveServer]:
    """A fresh copy of the published tree served on 127.0.0.1 (tests may damage their copy)."""
    root = tmp_path / "mirror"
    shutil.copytree(published_tree, root)
    with ArchiveServer(root) as server:
        yield server
