"""Building a sampler from selected episodes: the machinery behind ``OffgenDataset.transitions`` /
``windows`` (internal; users call those methods).

A build chooses the strategy, puts the frames where it says (the RAM array or the memmap cache,
held by a :class:`DecodedFrames` the dataset owns and shares between its samplers; a stream pool)
and injects the gather of the job into the one sampler of that strategy.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from offgen._allocator import tune_allocator
from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.cache import cache_location, frame_cache_exists, open_frame_cache
from offgen.data.sampling.frames import FRAME_BYTES, SelectedEpisodes, decode_episodes
from offgen.data.sampling.gather import Gather, Pad, TransitionGather, WindowGather
from offgen.data.sampling.index import StepIndex, returns_to_go
from offgen.data.sampling.options import SamplerOptions, stream_epochs_error
from offgen.data.sampling.rows import TransitionRows
from offgen.data.sampling.samplers import IndexedSampler, Sampler
from offgen.data.sampling.strategy import StrategyChoice, choose_strategy
from offgen.data.sampling.stream import StreamSampler
from offgen.data.schema import Layout

__all__ = ["DecodedFrames", "build_rows", "build_transitions", "build_windows"]

B = TypeVar("B", TransitionBatch, WindowBatch)
Placed = Literal["ram", "memmap"]


class DecodedFrames:
    """Decoded frames and their step index per ``(strategy, layout)``, shared by every sampler
    built from one selection (its owner, an ``OffgenDataset``, passes it to each build)."""

    def __init__(self) -> None:
        self._held: dict[tuple[Placed, Layout], tuple[npt.NDArray[np.uint8], StepIndex]] = {}

    def get(
        self, episodes: SelectedEpisodes, strategy: Placed, layout: Layout, *, progress: bool
    ) -> tuple[npt.NDArray[np.uint8], StepIndex]:
        """The frames of ``episodes`` in ``layout`` and their step index, decoded (``ram``) or
        mapped (``memmap``) on first use."""
        key = (strategy, layout)
        if key not in self._held:
            if strategy == "ram":
                frames, ep_frame = decode_episodes(episodes, layout=layout, progress=progress)
            else:
                frames = open_frame_cache(episodes.store, layout=layout, progress=progress)
                ep_frame = episodes.rows["frame_offset"].astype(np.int64)
            self._held[key] = (frames, StepIndex.build(episodes.rows, episodes.positions, ep_frame))
        return self._held[key]

    def release(self) -> None:
        """Drop the references held here (samplers built earlier keep theirs)."""
        self._held.clear()


def _choose(episodes: SelectedEpisodes, options: SamplerOptions) -> StrategyChoice:
    store = episodes.store
    return choose_strategy(
        options.strategy,
        selected_bytes=episodes.num_frames * FRAME_BYTES,
        store_bytes=store.num_frames_stored * FRAME_BYTES,
        cache_exists=options.strategy == "auto" and frame_cache_exists(store, options.layout),
        cache_root=cache_location(store).parent,
        memory_budget=options.memory_budget,
    )


def _build(
    episodes: SelectedEpisodes,
    frames: DecodedFrames,
    gather: Gather[B],
    batch_size: int,
    options: SamplerOptions,
) -> Sampler[B]:
    tune_allocator()  # batch buffers from the heap, not a fresh mmap per batch (offgen/_allocator)
    choice = _choose(episodes, options)
    if choice.strategy == "stream":
        if not options.replacement:
            raise stream_epochs_error()
        return StreamSampler(
            episodes,
            gather,
            batch_size=batch_size,
            seed=options.seed,
            layout=options.layout,
            options=options.stream,
            strategy=choice,
        )
    placed, index = frames.get(episodes, choice.strategy, options.layout, progress=options.progress)
    return IndexedSampler(
        placed,
        index,
        gather,
        batch_size=batch_size,
        seed=options.seed,
        replacement=options.replacement,
        strategy=choice,
    )


def build_transitions(
    episodes: SelectedEpisodes, frames: DecodedFrames, batch_size: int, options: SamplerOptions
) -> Sampler[TransitionBatch]:
    """A transition sampler (see ``OffgenDataset.transitions``)."""
    store = episodes.store
    gather = TransitionGather(store.actions, store.rewards, options.frame_stack)
    return _build(episodes, frames, gather, batch_size, options)


def build_windows(
    episodes: SelectedEpisodes,
    frames: DecodedFrames,
    *,
    context: int,
    batch_size: int,
    gamma: float,
    pad: Pad,
    options: SamplerOptions,
) -> Sampler[WindowBatch]:
    """A window sampler (see ``OffgenDataset.windows``)."""
    store = episodes.store
    gather = WindowGather(
        store.actions,
        store.rewards,
        returns_to_go(store.rewards, episodes.rows, gamma),
        context=context,
        pad=pad,
        frame_stack=options.frame_stack,
    )
    return _build(episodes, frames, gather, batch_size, options)


def build_rows(
    episodes: SelectedEpisodes, frames: DecodedFrames, options: SamplerOptions
) -> TransitionRows:
    """Random access to every selected transition (see ``OffgenDataset.transition_rows``).

    Raises:
        ValueError: If the strategy is (or ``auto`` chooses) ``stream``: positions need every frame
            at hand, in RAM or in the memmap cache.
    """
    choice = _choose(episodes, options)
    if choice.strategy == "stream":
        raise ValueError(
            "random access needs every frame in RAM or in the memmap cache, not the stream "
            f"strategy ({choice.reason}); "
            "pass strategy='memmap' with room on the cache disk ($OFFGEN_DISK_BUDGET), a larger "
            "memory_budget, or a smaller selection (ds.filter)"
        )
    placed, index = frames.get(episodes, choice.strategy, options.layout, progress=options.progress)
    store = episodes.store
    gather = TransitionGather(store.actions, store.rewards, options.frame_stack)
    return TransitionRows(placed, index, gather, choice)
