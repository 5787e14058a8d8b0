"""Building samplers from datasets: the functions behind ``OffgenDataset.transitions`` / ``windows``
and :func:`mix`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from offgen._allocator import tune_allocator
from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.cache import cache_location, frame_cache_exists, open_frame_cache
from offgen.data.sampling.frames import FRAME_BYTES, decode_episodes
from offgen.data.sampling.gather import Pad
from offgen.data.sampling.index import StepIndex, returns_to_go
from offgen.data.sampling.mixture import MixtureSampler, largest_remainder
from offgen.data.sampling.samplers import Sampler, TransitionSampler, WindowSampler
from offgen.data.sampling.strategy import Strategy, StrategyChoice, choose_strategy
from offgen.data.sampling.stream import DEFAULT_POOL_BYTES, DEFAULT_UNIT_FRAMES, StreamSampler
from offgen.data.schema import Layout

if TYPE_CHECKING:
    from offgen.data.dataset import OffgenDataset

__all__ = ["make_transitions", "make_windows", "mix", "resolve_frames"]


def resolve_frames(
    dataset: OffgenDataset,
    strategy: Strategy = "auto",
    *,
    memory_budget: int | str | None = None,
    disk_budget: int | str | None = None,
    progress: bool = True,
) -> tuple[StrategyChoice, npt.NDArray[np.uint8] | None, StepIndex | None]:
    """Choose a strategy and, for ``ram`` / ``memmap``, the frames and step index (cached on the
    dataset, so several samplers of one dataset share them)."""
    tune_allocator()  # batch buffers from the heap, not a fresh mmap per batch (offgen/_allocator)
    store = dataset.store
    rows = dataset.table.rows
    choice = choose_strategy(
        strategy,
        selected_bytes=int((rows["length"].astype(np.int64) + 1).sum()) * FRAME_BYTES,
        store_bytes=store.num_frames_stored * FRAME_BYTES,
        cache_exists=strategy == "auto" and frame_cache_exists(store),
        cache_root=cache_location(store).parent,
        memory_budget=memory_budget,
        disk_budget=disk_budget,
    )
    if choice.strategy == "stream":
        return choice, None, None
    cached = dataset._frames.get(choice.strategy)
    if cached is None:
        if choice.strategy == "ram":
            frames, ep_frame = decode_episodes(store, rows, progress=progress)
        else:
            frames = open_frame_cache(store, progress=progress)
            ep_frame = rows["frame_offset"].astype(np.int64)
        index = StepIndex.build(rows, dataset.selection, ep_frame)
        cached = (frames, index)
        dataset._frames[choice.strategy] = cached
    return choice, cached[0], cached[1]


def _stream_options(options: dict[str, Any]) -> dict[str, Any]:
    allowed = {"pool_bytes", "unit_frames", "reuse"}
    unknown = set(options) - allowed
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}; stream options are {sorted(allowed)}")
    return {
        "pool_bytes": int(options.get("pool_bytes", DEFAULT_POOL_BYTES)),
        "unit_frames": int(options.get("unit_frames", DEFAULT_UNIT_FRAMES)),
        "reuse": float(options.get("reuse", 1.0)),
    }


def make_transitions(
    dataset: OffgenDataset,
    batch_size: int = 256,
    *,
    seed: int = 0,
    frame_stack: int = 1,
    layout: Layout = "HWC",
    strategy: Strategy = "auto",
    replacement: bool = True,
    memory_budget: int | str | None = None,
    progress: bool = True,
    **stream: Any,
) -> Sampler[TransitionBatch]:
    """See :meth:`OffgenDataset.transitions`."""
    options = _stream_options(stream)
    choice, frames, index = resolve_frames(
        dataset, strategy, memory_budget=memory_budget, progress=progress
    )
    if frames is None or index is None:
        _check_stream(replacement)
        sampler: StreamSampler[TransitionBatch] = StreamSampler(
            dataset.store,
            dataset.table.rows,
            dataset.selection,
            kind="transitions",
            batch_size=batch_size,
            seed=seed,
            frame_stack=frame_stack,
            layout=layout,
            **options,
        )
        sampler.strategy = choice
        return sampler
    return TransitionSampler(
        frames,
        index,
        dataset.store.actions,
        dataset.store.rewards,
        batch_size=batch_size,
        seed=seed,
        replacement=replacement,
        frame_stack=frame_stack,
        layout=layout,
        strategy=choice,
    )


def make_windows(
    dataset: OffgenDataset,
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
    **stream: Any,
) -> Sampler[WindowBatch]:
    """See :meth:`OffgenDataset.windows`."""
    options = _stream_options(stream)
    choice, frames, index = resolve_frames(
        dataset, strategy, memory_budget=memory_budget, progress=progress
    )
    if frames is None or index is None:
        _check_stream(replacement)
        sampler: StreamSampler[WindowBatch] = StreamSampler(
            dataset.store,
            dataset.table.rows,
            dataset.selection,
            kind="windows",
            batch_size=batch_size,
            seed=seed,
            frame_stack=frame_stack,
            layout=layout,
            context=context,
            pad=pad,
            gamma=gamma,
            **options,
        )
        sampler.strategy = choice
        return sampler
    return WindowSampler(
        frames,
        index,
        dataset.store.actions,
        dataset.store.rewards,
        returns_to_go(dataset.store.rewards, dataset.table.rows, gamma),
        context=context,
        pad=pad,
        batch_size=batch_size,
        seed=seed,
        replacement=replacement,
        frame_stack=frame_stack,
        layout=layout,
        strategy=choice,
    )


def _check_stream(replacement: bool) -> None:
    if not replacement:
        raise ValueError(
            "replacement=False (exact epochs) needs strategy='ram' or 'memmap'; the stream "
            "strategy visits data in shuffled blocks instead"
        )


def mix(
    components: Sequence[tuple[OffgenDataset, float]],
    *,
    batch_size: int = 256,
    seed: int = 0,
    kind: Literal["transitions", "windows"] = "transitions",
    **options: Any,
) -> MixtureSampler[Any]:
    """Sample several datasets together in fixed proportions.

    Each batch holds exactly the counts given by the largest remainder rule (see
    :mod:`offgen.data.sampling.mixture`), grouped by component; ``batch.source`` names the
    component of each row.

    Args:
        components: ``(dataset, weight)`` pairs; weights are normalised.
        batch_size: Rows per batch.
        seed: Seed; component ``i`` samples with seed ``seed * 1000003 + i``.
        kind: ``"transitions"`` or ``"windows"``.
        **options: Passed to :meth:`OffgenDataset.transitions` / ``windows`` (``frame_stack``,
            ``layout``, ``strategy``, ``context``, ...).

    Example:
        >>> sampler = mix([(expert, 0.75), (suboptimal, 0.25)], batch_size=256)  # doctest: +SKIP
        >>> batch = next(sampler)  # 192 expert rows, then 64 suboptimal rows
    """
    if not components:
        raise ValueError("mix() needs at least one (dataset, weight) pair")
    counts = largest_remainder([w for _, w in components], batch_size)
    samplers: list[Any] = []
    for i, ((dataset, _w), count) in enumerate(zip(components, counts, strict=True)):
        sub_seed = seed * 1000003 + i
        size = max(count, 1)  # a zero-count component is kept (for its state) but never drawn
        if kind == "transitions":
            samplers.append(make_transitions(dataset, size, seed=sub_seed, **options))
        elif kind == "windows":
            samplers.append(make_windows(dataset, batch_size=size, seed=sub_seed, **options))
        else:
            raise ValueError(f"kind must be 'transitions' or 'windows', got {kind!r}")
    return MixtureSampler(samplers, counts)
