"""Sampling several datasets together in fixed proportions.

Every batch holds exactly ``counts[i]`` rows of component ``i``, computed once by the largest
remainder rule: ``floor(w_i * B)`` each, then the rows still missing go one each to the components
with the largest fractional parts ``w_i * B - floor(w_i * B)`` (ties: the earlier component). For
example weights ``(0.75, 0.25)`` and ``B = 255`` give ``(191, 64)``. Rows are grouped by component in
the given order; ``batch.source`` says which component each row came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from offgen.data.sampling.batches import TransitionBatch, WindowBatch, concat_batches
from offgen.data.sampling.samplers import NumberedBatches, Sampler

__all__ = ["MixtureSampler", "largest_remainder"]

B = TypeVar("B", TransitionBatch, WindowBatch)


def largest_remainder(weights: Sequence[float], total: int) -> list[int]:
    """Split ``total`` into integer counts proportional to ``weights`` (see the module docstring).

    Raises:
        ValueError: If a weight is negative or not finite, or all are zero.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not len(w) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"mixture weights must be finite, >= 0 and not all 0, got {list(weights)}")
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(np.int64)
    missing = total - int(counts.sum())
    order = sorted(range(len(w)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:missing]:
        counts[i] += 1
    return [int(c) for c in counts]


class MixtureSampler(NumberedBatches[B]):
    """Batches made of fixed numbers of rows from several samplers.

    Args:
        samplers: One sampler per component, each already built with its own batch size equal to
            its count (use :func:`offgen.data.mix` to build one from datasets).
        counts: Rows per batch of each component.
    """

    def __init__(self, samplers: Sequence[Sampler[B]], counts: Sequence[int]) -> None:
        if len(samplers) != len(counts):
            raise ValueError("one count per sampler")
        self.samplers: list[Sampler[B]] = list(samplers)
        self.counts = list(counts)
        self.batch_size = sum(counts)
        self._k = 0

    def batch(self, k: int) -> B:
        """Batch number ``k``."""
        parts: list[B] = []
        sources: list[int] = []
        for i, (sampler, count) in enumerate(zip(self.samplers, self.counts, strict=True)):
            if count:
                parts.append(sampler.batch(k))
                sources.append(i)
        return concat_batches(parts, sources)

    def state_dict(self) -> dict[str, Any]:
        """Position plus each component's state."""
        return {
            "kind": "mixture",
            "batches": self._k,
            "counts": self.counts,
            "components": [s.state_dict() for s in self.samplers],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume a mixture saved by :meth:`state_dict`.

        Raises:
            ValueError: If the components or counts differ.
        """
        if state.get("kind") != "mixture" or list(state.get("counts", [])) != self.counts:
            raise ValueError(
                f"state_dict is not from a mixture with counts {self.counts}: "
                f"{state.get('kind')!r} {state.get('counts')!r}"
            )
        for sampler, sub in zip(self.samplers, state["components"], strict=True):
            sampler.load_state_dict(sub)
        self._k = int(state["batches"])

    def with_shard(self, index: int, count: int) -> MixtureSampler[B]:
        """Every component sharded the same way."""
        return MixtureSampler([s.with_shard(index, count) for s in self.samplers], self.counts)

    def __repr__(self) -> str:
        return f"MixtureSampler(counts={self.counts}, samplers={self.samplers})"
