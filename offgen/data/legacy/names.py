"""Legacy episode file names (``<YYYYmmddTHHMMSS>_<index>_<T>_<level_seed>_<return:.2f>.<ext>``)
and finding the files of a folder."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from offgen.errors import CorruptStoreError, SchemaError
from offgen.registry import resolve_game

__all__ = [
    "LEGACY_KEYS",
    "SUFFIXES",
    "TIMESTAMP",
    "LegacyName",
    "find_legacy_files",
    "split_duplicates",
]

LEGACY_KEYS = ("observations", "actions", "rewards", "dones")
"""The arrays of a legacy episode file, in the order the predecessor wrote them."""

SUFFIXES = (".npz", ".npy")
TIMESTAMP = "%Y%m%dT%H%M%S"
_NAME = re.compile(
    r"^(?P<timestamp>\d{8}T\d{6})_(?P<index>\d+)_(?P<length>\d+)_(?P<seed>-?\d+)_"
    r"(?P<ret>-?\d+\.\d+)\.(?P<suffix>npz|npy)$"
)


@dataclass(frozen=True, order=True)
class LegacyName:
    """The fields of a legacy episode file name (ordered by index, then timestamp).

    Attributes:
        index: Episode counter of the collection run.
        timestamp: ``YYYYmmddTHHMMSS`` when the file was written.
        length: Steps ``T``.
        level_seed: Procgen level seed.
        episode_return: Undiscounted return, rounded to 2 decimals.
        suffix: ``"npz"`` or ``"npy"``.
    """

    index: int
    timestamp: str
    length: int
    level_seed: int
    episode_return: float
    suffix: str = "npz"

    @classmethod
    def parse(cls, name: str) -> LegacyName:
        """Parse a file name (a bare name or a path).

        Raises:
            SchemaError: If the name does not follow the legacy pattern.
        """
        base = os.path.basename(name)
        match = _NAME.match(base)
        if match is None:
            raise SchemaError(
                f"{name}: not a legacy episode file name; expected "
                "<YYYYmmddTHHMMSS>_<index>_<T>_<level_seed>_<return>.npz|npy, e.g. "
                "20230101T120000_17_250_42_10.00.npz"
            )
        return cls(
            index=int(match["index"]),
            timestamp=match["timestamp"],
            length=int(match["length"]),
            level_seed=int(match["seed"]),
            episode_return=float(match["ret"]),
            suffix=match["suffix"],
        )

    def format(self) -> str:
        """The file name, e.g. ``20230101T120000_17_250_42_10.00.npz``."""
        return (
            f"{self.timestamp}_{self.index}_{self.length}_{self.level_seed}_"
            f"{self.episode_return:.2f}.{self.suffix}"
        )


def find_legacy_files(
    source: str | os.PathLike[str], game: str | None = None
) -> list[tuple[LegacyName, Path]]:
    """Legacy episode files of a folder, sorted by episode index (then timestamp, then name).

    Accepts the archive layout ``<source>/<game>/<file>`` (when ``game`` is given and that folder
    exists) or a flat folder of files.

    Raises:
        CorruptStoreError: If the folder does not exist or holds no legacy files.
        SchemaError: If a ``.npz`` / ``.npy`` file's name does not follow the legacy pattern.
    """
    root = Path(source)
    if game is not None and (root / resolve_game(game).name).is_dir():
        root = root / resolve_game(game).name
    if not root.is_dir():
        raise CorruptStoreError(f"{root}: no such folder of legacy episode files")
    found: list[tuple[LegacyName, Path]] = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(SUFFIXES):
                continue
            found.append((LegacyName.parse(entry.name), Path(entry.path)))
    if not found:
        raise CorruptStoreError(
            f"{root}: holds no legacy episode files (*.npz / *.npy); point at the folder of one "
            "game or at the extracted archive with --game"
        )
    found.sort(key=lambda item: (item[0].index, item[0].timestamp, item[1].name))
    return found


def split_duplicates(
    files: list[tuple[LegacyName, Path]],
) -> tuple[list[tuple[LegacyName, Path]], list[tuple[Path, Path]]]:
    """Keep one file per episode of :func:`find_legacy_files`' list.

    Two files are the same episode when their names agree on index, length, level seed and return
    (a ``.npy`` written beside its ``.npz``, or a copy under another timestamp). Of each group the
    ``.npz`` (its members are CRC-checked) is kept, else the earliest timestamp.

    Returns:
        The kept files, in the order given, and each dropped file with the file kept instead.
    """
    groups: dict[tuple[int, int, int, float], list[tuple[LegacyName, Path]]] = {}
    for item in files:
        name = item[0]
        key = (name.index, name.length, name.level_seed, name.episode_return)
        groups.setdefault(key, []).append(item)
    dropped: list[tuple[Path, Path]] = []
    kept_paths: set[Path] = set()
    for group in groups.values():
        keep = min(group, key=lambda item: (item[0].suffix != "npz", item[0].timestamp, item[1]))
        kept_paths.add(keep[1])
        dropped += [(path, keep[1]) for _name, path in group if path != keep[1]]
    return [item for item in files if item[1] in kept_paths], dropped
