"""The archives to try for one (dataset, game), in order, with base-URL overrides.

The registry records both published URL schemes under ``https://dl.fbaipublicfiles.com/DGRL``.
A lab can serve the same tree from its own mirror or a shared folder: ``--base-url`` or
``OFFGEN_BASE_URL`` replaces that prefix (several bases separated by ``,`` are tried in order), and
each base is tried with both schemes, first scheme first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from offgen.registry import DatasetSpec, SourceArchive

__all__ = ["BASE_URL_ENV", "PUBLISHED_BASE", "ArchiveSource", "archive_sources", "base_urls"]

PUBLISHED_BASE = "https://dl.fbaipublicfiles.com/DGRL"
BASE_URL_ENV = "OFFGEN_BASE_URL"


@dataclass(frozen=True)
class ArchiveSource:
    """One archive to try.

    Attributes:
        url: Where to fetch it (``http(s)://``, ``file://`` or a local path).
        scheme: The registry's URL scheme (``"dgrl"`` / ``"dgrl-procgen"``).
        filename: The archive's file name (``coinrun.tar.xz``, ``100k_procgen_dataset_1.tar``).
        all_games: The archive holds every game (one download serves all 16).
    """

    url: str
    scheme: str
    filename: str
    all_games: bool

    @property
    def key(self) -> str:
        """Lockfile key: schemes are pinned separately, as their files may differ."""
        return f"{self.scheme}/{self.filename}"


def base_urls(override: str | Sequence[str] | None = None) -> list[str]:
    """Bases to try: ``override`` (flag), else ``$OFFGEN_BASE_URL``, else the published one."""
    if override is None:
        override = os.environ.get(BASE_URL_ENV) or None
    if override is None:
        return [PUBLISHED_BASE]
    items = override.split(",") if isinstance(override, str) else list(override)
    bases = [item.strip().rstrip("/") for item in items if item.strip()]
    return bases or [PUBLISHED_BASE]


def _rebase(url: str, base: str) -> str:
    rel = url.removeprefix(PUBLISHED_BASE).lstrip("/")
    if "://" not in base:  # a local folder
        return str(Path(base).expanduser() / rel)
    return f"{base}/{rel}"


def archive_sources(
    spec: DatasetSpec, game: str, base_url: str | Sequence[str] | None = None
) -> list[ArchiveSource]:
    """Every archive that can provide ``game`` of ``spec``, in the order to try them."""
    out: list[ArchiveSource] = []
    for base in base_urls(base_url):
        for source in spec.sources(game):
            out.append(_source(source, base))
    return out


def _source(source: SourceArchive, base: str) -> ArchiveSource:
    url = _rebase(source.url, base)
    return ArchiveSource(url, source.scheme, source.url.rsplit("/", 1)[-1], source.all_games)
