"""OffgenDataset: a store plus a selection of its episodes, the object users sample from."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.data.schema import Episode
from offgen.data.store import OffgenStore
from offgen.data.table import EpisodeTable

__all__ = ["OffgenDataset"]


class OffgenDataset:
    """Episodes of one offgen store, optionally filtered.

    Args:
        store: The opened store.
        selection: Table positions of the selected episodes (all when ``None``), in order.
    """

    def __init__(self, store: OffgenStore, selection: npt.NDArray[np.int64] | None = None) -> None:
        self.store = store
        if selection is None:
            selection = np.arange(len(store.table), dtype=np.int64)
        self.selection = np.asarray(selection, dtype=np.int64)
        self.table: EpisodeTable = store.table.take(self.selection)

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str],
        *,
        allow_incomplete: bool = False,
        storage_options: Mapping[str, Any] | None = None,
    ) -> OffgenDataset:
        """Open the store at a path or fsspec URL (see :class:`OffgenStore`)."""
        return cls(
            OffgenStore(
                location, allow_incomplete=allow_incomplete, storage_options=storage_options
            )
        )

    @property
    def info(self) -> dict[str, Any]:
        """The store's ``info.json``."""
        return self.store.info

    @property
    def game(self) -> str:
        """Procgen game."""
        return self.store.game

    def __len__(self) -> int:
        return len(self.table)

    @property
    def num_transitions(self) -> int:
        """Steps over the selected episodes."""
        return self.table.num_transitions

    def filter(self, **conditions: Any) -> OffgenDataset:
        """Episodes matching :meth:`EpisodeTable.mask` conditions, using the table only."""
        keep = self.table.mask(**conditions)
        return OffgenDataset(self.store, self.selection[keep])

    def episode(self, index: int) -> Episode:
        """The ``index``-th selected episode."""
        return self.store.episode(int(self.selection[index]))

    def iter_episodes(self) -> Iterator[Episode]:
        """Yield the selected episodes in order."""
        for position in self.selection:
            yield self.store.episode(int(position))

    def __repr__(self) -> str:
        return (
            f"OffgenDataset(game={self.game!r}, dataset={self.info.get('dataset')!r}, "
            f"episodes={len(self)}, transitions={self.num_transitions}, "
            f"location={self.store.location!r})"
        )
