"""Sampling several datasets together in fixed proportions: :func:`mix`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal, Unpack

from offgen.data.dataset import OffgenDataset
from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.gather import Pad
from offgen.data.sampling.mixture import MixtureSampler, largest_remainder
from offgen.data.sampling.options import SamplerKeywords, SamplerOptions, resolve_options
from offgen.data.sampling.samplers import Sampler

__all__ = ["mix"]


def mix(
    components: Sequence[tuple[OffgenDataset, float]],
    *,
    batch_size: int = 256,
    kind: Literal["transitions", "windows"] = "transitions",
    context: int = 10,
    gamma: float = 1.0,
    pad: Pad = "left",
    options: SamplerOptions | None = None,
    **keywords: Unpack[SamplerKeywords],
) -> MixtureSampler[Any]:
    """Sample several datasets together in fixed proportions.

    Each batch holds exactly the counts given by the largest remainder rule (see
    :mod:`offgen.data.sampling.mixture`), grouped by component; ``batch.source`` names the
    component of each row.

    Args:
        components: ``(dataset, weight)`` pairs; weights are normalised.
        batch_size: Rows per batch.
        kind: ``"transitions"`` or ``"windows"``.
        context: Window length (windows only).
        gamma: Return-to-go discount (windows only).
        pad: Window padding side (windows only).
        options: Settings of every component (as :meth:`OffgenDataset.transitions`); component
            ``i`` samples with seed ``seed * 1000003 + i``.
        **keywords: Fields of ``options`` to replace (``seed``, ``frame_stack``, ``layout``,
            ``strategy``, ...).

    Example:
        >>> sampler = mix([(expert, 0.75), (suboptimal, 0.25)], batch_size=256)  # doctest: +SKIP
        >>> batch = next(sampler)  # 192 expert rows, then 64 suboptimal rows
    """
    if not components:
        raise ValueError("mix() needs at least one (dataset, weight) pair")
    if kind not in ("transitions", "windows"):
        raise ValueError(f"kind must be 'transitions' or 'windows', got {kind!r}")
    shared = resolve_options(options, keywords)
    counts = largest_remainder([w for _, w in components], batch_size)
    mine = [
        dataclasses.replace(shared, seed=shared.seed * 1000003 + i) for i in range(len(components))
    ]
    # A zero-count component is kept (for its state) but never drawn.
    sizes = [max(count, 1) for count in counts]
    if kind == "transitions":
        transitions: list[Sampler[TransitionBatch]] = [
            dataset.transitions(size, options=opts)
            for (dataset, _w), size, opts in zip(components, sizes, mine, strict=True)
        ]
        return MixtureSampler(transitions, counts)
    windows: list[Sampler[WindowBatch]] = [
        dataset.windows(context, size, gamma=gamma, pad=pad, options=opts)
        for (dataset, _w), size, opts in zip(components, sizes, mine, strict=True)
    ]
    return MixtureSampler(windows, counts)
