"""OffgenDataset: a store plus a selection of its episodes, the object users sample from."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.data.sampling.api import make_transitions, make_windows
from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.gather import Pad
from offgen.data.sampling.rng import NO_SHARD, Shard
from offgen.data.sampling.samplers import Sampler
from offgen.data.sampling.splits import choose_heldout_levels
from offgen.data.sampling.strategy import Strategy
from offgen.data.schema import Episode, Layout
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
        # Decoded frames and step index per strategy, shared by every sampler of this dataset.
        self._frames: dict[str, Any] = {}

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

    def iter_episodes(
        self, *, shuffle: bool = False, seed: int = 0, shard: Shard = NO_SHARD
    ) -> Iterator[Episode]:
        """Yield the selected episodes (whole-episode iteration).

        Args:
            shuffle: Visit episodes in a random order (a permutation seeded by ``seed``).
            seed: Seed of the order.
            shard: Yield only every ``shard.count``-th episode of the order, starting at
                ``shard.index`` (disjoint across shards; used by the torch adapters).
        """
        order = np.arange(len(self.selection))
        if shuffle:
            order = np.random.default_rng([seed, 3]).permutation(order)
        for i in order[shard.index :: shard.count]:
            yield self.store.episode(int(self.selection[i]))

    def split_by_levels(
        self, *, fraction: float | None = None, count: int | None = None, seed: int = 0
    ) -> tuple[OffgenDataset, OffgenDataset]:
        """Split into ``(train, heldout)`` by level seed: no level appears in both.

        The held-out levels are chosen deterministically from ``seed`` and the levels present
        (see :func:`offgen.data.sampling.choose_heldout_levels`); to hold out given levels use
        ``filter(level_seeds=...)``.

        Args:
            fraction: Share of the distinct levels to hold out.
            count: Exact number of levels to hold out (instead of ``fraction``).
            seed: Changes which levels are held out.

        Example:
            >>> train, val = ds.split_by_levels(fraction=0.2, seed=0)  # doctest: +SKIP
        """
        levels = self.table.level_seeds
        heldout = choose_heldout_levels(levels, fraction=fraction, count=count, seed=seed)
        held = np.isin(levels, heldout)
        return (
            OffgenDataset(self.store, self.selection[~held]),
            OffgenDataset(self.store, self.selection[held]),
        )

    def transitions(
        self,
        batch_size: int = 256,
        *,
        seed: int = 0,
        frame_stack: int = 1,
        layout: Layout = "HWC",
        strategy: Strategy = "auto",
        replacement: bool = True,
        memory_budget: int | str | None = None,
        progress: bool = True,
        **stream_options: Any,
    ) -> Sampler[TransitionBatch]:
        """An infinite, seeded, resumable iterator of random transition batches.

        Args:
            batch_size: Transitions per batch.
            seed: Seed; the same seed gives the same batches.
            frame_stack: Frames per observation ``k``; stacks are padded at episode starts by
                repeating the first frame.
            layout: ``"HWC"`` (as stored) or ``"CHW"``.
            strategy: ``"ram"``, ``"memmap"``, ``"stream"`` or ``"auto"`` (chosen by budget; see
                ``docs/sampling.md``).
            replacement: ``True``: uniform draws; ``False``: epochs, each step once per epoch.
            memory_budget: Bytes (or ``"8G"``) ``auto`` may spend on decoded frames in RAM.
            progress: Show progress bars while decoding.
            **stream_options: ``pool_bytes``, ``unit_frames``, ``reuse`` of the stream strategy.

        Returns:
            A sampler yielding :class:`~offgen.data.sampling.TransitionBatch`.

        Example:
            >>> sampler = ds.transitions(batch_size=256, seed=0, layout="CHW")  # doctest: +SKIP
            >>> batch = next(sampler)
            >>> batch.obs.shape, batch.next_obs.shape
            ((256, 3, 64, 64), (256, 3, 64, 64))
        """
        return make_transitions(
            self,
            batch_size,
            seed=seed,
            frame_stack=frame_stack,
            layout=layout,
            strategy=strategy,
            replacement=replacement,
            memory_budget=memory_budget,
            progress=progress,
            **stream_options,
        )

    def windows(
        self,
        context: int = 10,
        batch_size: int = 512,
        *,
        seed: int = 0,
        gamma: float = 1.0,
        pad: Pad = "left",
        frame_stack: int = 1,
        layout: Layout = "HWC",
        strategy: Strategy = "auto",
        replacement: bool = True,
        memory_budget: int | str | None = None,
        progress: bool = True,
        **stream_options: Any,
    ) -> Sampler[WindowBatch]:
        """Sequence windows of ``context`` steps for Decision Transformer / BCT.

        A window starts at a uniformly drawn step ``t`` and covers steps ``t .. t+K-1`` of the same
        episode; near the episode's end it is shorter and padded to ``K`` on the ``pad`` side
        (zeros, ``mask=False``).

        Args:
            context: Window length ``K``.
            batch_size: Windows per batch.
            seed: Seed.
            gamma: Discount of the returns-to-go (1.0: undiscounted, as in DT).
            pad: ``"left"`` (real steps last, like the reference DT) or ``"right"``.
            frame_stack: Frames per state.
            layout: ``"HWC"`` or ``"CHW"``.
            strategy: As :meth:`transitions`.
            replacement: As :meth:`transitions` (epochs over window starts when ``False``).
            memory_budget: As :meth:`transitions`.
            progress: Show progress bars while decoding.
            **stream_options: As :meth:`transitions`.

        Example:
            >>> batch = next(ds.windows(context=10, batch_size=512))  # doctest: +SKIP
            >>> batch.states.shape, batch.returns_to_go.shape, batch.mask.shape
            ((512, 10, 64, 64, 3), (512, 10), (512, 10))
        """
        return make_windows(
            self,
            context,
            batch_size,
            seed=seed,
            gamma=gamma,
            pad=pad,
            frame_stack=frame_stack,
            layout=layout,
            strategy=strategy,
            replacement=replacement,
            memory_budget=memory_budget,
            progress=progress,
            **stream_options,
        )

    def __repr__(self) -> str:
        return (
            f"OffgenDataset(game={self.game!r}, dataset={self.info.get('dataset')!r}, "
            f"episodes={len(self)}, transitions={self.num_transitions}, "
            f"location={self.store.location!r})"
        )
