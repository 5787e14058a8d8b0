"""What a push publishes, whatever the destination (an HF-compatible hub, an object store).

A store is published as its manifest's data files, then ``manifest.json`` and ``info.json``
(:data:`HEADERS`) last, so a half-published folder never looks like a finished store; its card is
``README.md``, ``card_stats.json`` (every game's statistics, merged with what the destination
already holds), ``images/*.png`` and the Parquet preview.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offgen._io import sha256_file
from offgen.data.format import INFO, MANIFEST, parse_manifest

if TYPE_CHECKING:
    from offgen.hub.card import WrittenCard

__all__ = ["CARD_STATS", "HEADERS", "LocalFile", "card_files", "local_files", "merge_card_stats"]

CARD_STATS = "card_stats.json"  # per-game card statistics, next to README.md
#: Published last: a store at the destination is complete once info.json is there.
HEADERS = (MANIFEST, INFO)


@dataclass(frozen=True)
class LocalFile:
    """One file of a store to publish: where it is, its size and sha256."""

    path: Path
    size: int
    sha256: str


def local_files(root: Path) -> dict[str, LocalFile]:
    """Every file a push uploads (relative path -> file): the manifest's data files (already
    checked against their sha256 by the caller), then ``manifest.json`` and ``info.json``."""
    manifest = parse_manifest((root / MANIFEST).read_bytes(), str(root / MANIFEST))
    files = {
        rel: LocalFile(root / rel, int(entry["size"]), str(entry["sha256"]))
        for rel, entry in sorted(manifest.items())
    }
    for rel in HEADERS:
        path = root / rel
        files[rel] = LocalFile(path, path.stat().st_size, sha256_file(path))
    return files


def merge_card_stats(raw: bytes | None, dataset: str, where: str) -> dict[str, Any]:
    """The per-game card statistics of ``dataset`` in a destination's ``card_stats.json``
    (``raw``; None when it has none), without other datasets' or unreadable entries."""
    if raw is None:
        return {}
    try:
        stats = json.loads(raw)
    except ValueError:
        warnings.warn(f"{where} is not JSON; the card starts afresh", stacklevel=3)
        return {}
    if not isinstance(stats, dict):
        return {}
    kept = {
        game: s
        for game, s in stats.items()
        if isinstance(s, dict) and s.get("dataset") in (dataset, None) and "returns" in s
    }
    if len(kept) != len(stats):
        dropped = sorted(set(stats) - set(kept))
        warnings.warn(
            f"{where}: dropping {dropped} (another dataset's or unreadable entries); the card "
            f"now describes {dataset}",
            stacklevel=3,
        )
    return kept


def card_files(
    dataset: str,
    store: str | os.PathLike[str],
    folder: Path,
    earlier: dict[str, Any],
    *,
    force: bool,
) -> tuple[dict[str, Path], WrittenCard]:
    """Write the card of ``store`` (merged with the ``earlier`` games' statistics) into
    ``folder``; returns the files to publish (path at the destination -> local file)."""
    from offgen.hub.card import write_card

    if earlier:
        (folder / CARD_STATS).write_text(json.dumps(earlier))
    written = write_card(dataset, store, folder, force=force, preview=True)
    files = {"README.md": written.card, CARD_STATS: written.stats}
    files.update({f"images/{png.name}": png for png in written.images})
    if written.preview is not None:
        files[written.preview.relative_to(folder).as_posix()] = written.preview
    return files, written
