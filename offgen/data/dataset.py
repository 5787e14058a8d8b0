"""OffgenDataset: a store plus a selection of its episodes, the object users sample from."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, Unpack

import numpy as np
import numpy.typing as npt

from offgen.data.info import StoreInfo
from offgen.data.sampling.arrays import transition_arrays
from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.build import (
    DecodedFrames,
    build_rows,
    build_transitions,
    build_windows,
)
from offgen.data.sampling.frames import SelectedEpisodes
from offgen.data.sampling.gather import Pad
from offgen.data.sampling.options import SamplerKeywords, SamplerOptions, resolve_options
from offgen.data.sampling.rng import NO_SHARD, Shard
from offgen.data.sampling.rows import TransitionRows
from offgen.data.sampling.samplers import Sampler
from offgen.data.sampling.splits import choose_heldout_levels
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
        self._episodes = SelectedEpisodes(store, self.table.rows, self.selection)
        # Decoded frames and step indexes, shared by every sampler of this dataset.
        self._decoded = DecodedFrames()

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
    def info(self) -> StoreInfo:
        """The store's ``info.json``, checked and typed."""
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

    def top_returns(self, max_transitions: int) -> OffgenDataset:
        """The highest-return episodes holding ``max_transitions`` steps (table only).

        See :meth:`EpisodeTable.top_return_positions`: best return first until the steps reach
        ``max_transitions`` (the episode reaching it is kept); the kept episodes stay in table
        order. Use it for the predecessor's ``--dataset_size`` / ``--percentile`` selection, e.g.
        ``ds.top_returns(int(1_000_000 * 0.5))`` keeps the best half of a 1M-step budget.

        Raises:
            ValueError: If ``max_transitions`` is not positive.

        Example:
            >>> best = ds.top_returns(100_000)  # doctest: +SKIP
        """
        keep = self.table.top_return_positions(max_transitions)
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
        options: SamplerOptions | None = None,
        **keywords: Unpack[SamplerKeywords],
    ) -> Sampler[TransitionBatch]:
        """An infinite, seeded, resumable iterator of random transition batches.

        Args:
            batch_size: Transitions per batch.
            options: Sampler settings (:class:`~offgen.data.sampling.SamplerOptions`); defaults
                when ``None``.
            **keywords: Any field of ``SamplerOptions`` (``seed``, ``frame_stack``, ``layout``
                ``"HWC"`` / ``"CHW"``, ``strategy`` ``"ram"`` / ``"memmap"`` / ``"stream"`` /
                ``"auto"``, ``replacement``, ``memory_budget``, ``progress``) or of
                ``StreamOptions`` (``pool_bytes``, ``unit_frames``, ``reuse``), replacing that
                field of ``options``.

        Returns:
            A sampler yielding :class:`~offgen.data.sampling.TransitionBatch`.

        Raises:
            TypeError: If a keyword names no option.
            ValueError: If a setting is out of range, or the selection holds no steps.

        Example:
            >>> sampler = ds.transitions(batch_size=256, seed=0, layout="CHW")  # doctest: +SKIP
            >>> batch = next(sampler)
            >>> batch.obs.shape, batch.next_obs.shape
            ((256, 3, 64, 64), (256, 3, 64, 64))
        """
        return build_transitions(
            self._episodes, self._decoded, batch_size, resolve_options(options, keywords)
        )

    def transition_rows(
        self, *, options: SamplerOptions | None = None, **keywords: Unpack[SamplerKeywords]
    ) -> TransitionRows:
        """Every selected transition by position (map-style access): ``rows[i]`` is step ``i`` of
        the selection, episode after episode, as a one-row batch; ``rows[[i, j]]`` a batch.

        Frames are shared with this dataset's samplers of the same strategy and layout.

        Args:
            options: As :meth:`transitions` (``seed``, ``replacement`` and the stream options do
                not apply; ``strategy`` is ``ram``, ``memmap`` or ``auto``).
            **keywords: As :meth:`transitions`.

        Raises:
            ValueError: If the strategy is, or ``auto`` would choose, ``stream``.

        Example:
            >>> rows = ds.transition_rows(layout="CHW")  # doctest: +SKIP
            >>> len(rows) == ds.num_transitions, rows[0].obs.shape
            (True, (1, 3, 64, 64))
        """
        return build_rows(self._episodes, self._decoded, resolve_options(options, keywords))

    def windows(
        self,
        context: int = 10,
        batch_size: int = 512,
        *,
        gamma: float = 1.0,
        pad: Pad = "left",
        options: SamplerOptions | None = None,
        **keywords: Unpack[SamplerKeywords],
    ) -> Sampler[WindowBatch]:
        """Sequence windows of ``context`` steps for Decision Transformer / BCT.

        A window starts at a uniformly drawn step ``t`` and covers steps ``t .. t+K-1`` of the same
        episode; near the episode's end it is shorter and padded to ``K`` on the ``pad`` side
        (zeros, ``mask=False``).

        Args:
            context: Window length ``K``.
            batch_size: Windows per batch.
            gamma: Discount of the returns-to-go (1.0: undiscounted, as in DT).
            pad: ``"left"`` (real steps last, like the reference DT) or ``"right"``.
            options: As :meth:`transitions` (``frame_stack`` gives frames per state;
                ``replacement=False`` gives epochs over window starts).
            **keywords: As :meth:`transitions`.

        Example:
            >>> batch = next(ds.windows(context=10, batch_size=512))  # doctest: +SKIP
            >>> batch.states.shape, batch.returns_to_go.shape, batch.mask.shape
            ((512, 10, 64, 64, 3), (512, 10), (512, 10))
        """
        return build_windows(
            self._episodes,
            self._decoded,
            context=context,
            batch_size=batch_size,
            gamma=gamma,
            pad=pad,
            options=resolve_options(options, keywords),
        )

    def to_dict(
        self,
        *,
        layout: Layout = "HWC",
        frame_stack: int = 1,
        next_observations: bool = True,
        max_bytes: int | str | None = None,
        progress: bool = True,
    ) -> dict[str, npt.NDArray[Any]]:
        """Every selected transition as a D4RL-style dict of numpy arrays (``get_dataset()``).

        Steps come in selection order, episode after episode; each row is what a
        :class:`~offgen.data.sampling.TransitionBatch` holds for that step (same frame stacks).

        Keys: ``observations`` / ``next_observations`` (``(N, 64, 64, 3)`` uint8, or CHW, or
        ``(N, k, ...)``), ``actions`` (int64), ``rewards`` (float32), ``terminals`` and
        ``timeouts`` (bool, true at the last step of an episode that terminated / was truncated),
        and offgen's ``episode`` (table position) and ``timestep`` (int64).

        Args:
            layout: ``"HWC"`` or ``"CHW"`` frames.
            frame_stack: Frames per observation.
            next_observations: Include ``next_observations`` (doubles the frame memory).
            max_bytes: Refuse above this many bytes (or ``"8G"``); default: the memory available.
            progress: Show a progress bar while decoding.

        Raises:
            MemoryBudgetError: If the estimated peak memory exceeds ``max_bytes`` (nothing is
                decoded then).
            ValueError: If the selection holds no steps.

        Example:
            >>> data = ds.filter(min_return=5).to_dict(max_bytes="8G")  # doctest: +SKIP
            >>> data["observations"].shape, data["terminals"].dtype
            ((61234, 64, 64, 3), dtype('bool'))
        """
        return transition_arrays(
            self._episodes,
            layout=layout,
            frame_stack=frame_stack,
            next_observations=next_observations,
            max_bytes=max_bytes,
            progress=progress,
        )

    def release_frames(self) -> None:
        """Forget the decoded frames this dataset's samplers share (those samplers keep theirs;
        the next sampler decodes or maps them again)."""
        self._decoded.release()

    def __repr__(self) -> str:
        return (
            f"OffgenDataset(game={self.game!r}, dataset={self.info.dataset!r}, "
            f"episodes={len(self)}, transitions={self.num_transitions}, "
            f"location={self.store.location!r})"
        )
