"""Random-access sampling over decoded frames (the ``ram`` and ``memmap`` strategies).

A sampler is an infinite iterator of batches. Batch ``k`` depends only on ``(seed, shard, k)``, so
``state_dict()`` is the batch counter and ``load_state_dict`` resumes the exact stream.

Two sampling modes:

* ``replacement=True`` (default): every batch draws ``batch_size`` steps uniformly at random.
  Shard ``i`` of ``n`` draws only among the positions ``p`` with ``p % n == i``, so different
  shards (distributed ranks, DataLoader workers) never draw the same step, in the same batch or
  ever; together they draw uniformly from all steps.
* ``replacement=False``: epochs; each epoch is one permutation of all steps (the same on every
  shard), shard ``i`` of ``n`` takes every ``n``-th element of it, cut to ``N // n`` so that all
  shards yield the same number of batches; the last batch of an epoch may be smaller.

What a batch holds (transitions or windows) is the injected :class:`~.gather.Gather`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.gather import Gather
from offgen.data.sampling.index import I64, StepIndex
from offgen.data.sampling.rng import NO_SHARD, Shard, batch_rng, check_state, epoch_rng
from offgen.data.sampling.strategy import StrategyChoice

__all__ = ["IndexedSampler", "Sampler"]

B_co = TypeVar("B_co", TransitionBatch, WindowBatch, covariant=True)
B = TypeVar("B", TransitionBatch, WindowBatch)


class Sampler(Protocol[B_co]):
    """What every offgen sampler provides (ram, memmap, stream and mixtures)."""

    batch_size: int

    def __iter__(self) -> Iterator[B_co]: ...

    def __next__(self) -> B_co: ...

    def batch(self, k: int) -> B_co:
        """Batch number ``k`` of this sampler's stream."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The position in the stream (JSON-serialisable)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume at a position saved by :meth:`state_dict`."""
        ...

    def with_shard(self, index: int, count: int) -> Sampler[B_co]:
        """A copy producing shard ``index`` of ``count`` from batch 0."""
        ...


class NumberedBatches(Generic[B]):
    """Iteration over ``batch(0), batch(1), ...`` for samplers whose batches are pure in ``k``.

    Random access by batch number is what makes resume and sharding exact; iterating is then only
    a counter, written once here for the indexed and the mixture samplers.
    """

    _k: int

    def batch(self, k: int) -> B:
        """Batch number ``k`` (pure: does not move the iterator)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[B]:
        return self

    def __next__(self) -> B:
        out = self.batch(self._k)
        self._k += 1
        return out


class IndexedSampler(NumberedBatches[B]):
    """Batches gathered at random (or epoch-permuted) steps of frames held in RAM or a memmap.

    Args:
        frames: Decoded frames, in the batch layout, that ``index`` points into.
        index: The selected steps.
        gather: What a batch holds (transitions or windows).
        batch_size: Positions per batch.
        seed: Seed.
        replacement: Uniform draws (``True``) or epochs (``False``).
        shard: Which shard of the stream to produce.
        strategy: The strategy that put the frames where they are (for ``repr`` and logs).
    """

    def __init__(
        self,
        frames: npt.NDArray[np.uint8],
        index: StepIndex,
        gather: Gather[B],
        *,
        batch_size: int,
        seed: int = 0,
        replacement: bool = True,
        shard: Shard = NO_SHARD,
        strategy: StrategyChoice,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if index.num_steps == 0:
            raise ValueError("nothing to sample: the selection holds no steps")
        self.frames = frames
        self.index = index
        self.gather: Gather[B] = gather
        self.batch_size = batch_size
        self.seed = int(seed)
        self.replacement = replacement
        self.shard = shard
        self.strategy = strategy
        self._k = 0
        self._perm: tuple[int, I64] | None = None

    # ------------------------------------------------------------------ positions
    @property
    def num_positions(self) -> int:
        """Steps (transitions) or window starts to draw from."""
        return self.index.num_steps

    @property
    def batches_per_epoch(self) -> int | None:
        """Batches per epoch per shard with ``replacement=False``; ``None`` otherwise."""
        if self.replacement:
            return None
        per_shard = self.num_positions // self.shard.count
        return max(1, -(-per_shard // self.batch_size))

    def _positions(self, k: int) -> I64:
        n = self.num_positions
        if self.replacement:
            # Shard i of c owns the positions i, i + c, i + 2c, ...: disjoint across shards.
            index, count = self.shard.index, self.shard.count
            owned = (n - index + count - 1) // count
            draws = batch_rng(self.seed, self.shard, k).integers(0, owned, self.batch_size)
            return index + count * draws
        per_epoch = self.batches_per_epoch
        assert per_epoch is not None
        epoch, j = divmod(k, per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            perm = epoch_rng(self.seed, epoch).permutation(n)
            mine = perm[self.shard.index :: self.shard.count][: n // self.shard.count]
            self._perm = (epoch, np.ascontiguousarray(mine))
        return self._perm[1][j * self.batch_size : (j + 1) * self.batch_size]

    # ------------------------------------------------------------------ iteration
    def batch(self, k: int) -> B:
        """Batch number ``k`` (pure: does not move the iterator)."""
        return self.gather(self.frames, self.index, self._positions(k))

    def state_dict(self) -> dict[str, Any]:
        """Position in the stream plus what must match to resume it."""
        return {
            "kind": self.gather.kind,
            "batches": self._k,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "shard": [self.shard.index, self.shard.count],
            "positions": self.num_positions,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume after ``state["batches"]`` batches.

        Raises:
            ValueError: If the state was saved by a sampler of other data or settings.
        """
        check_state(state, self.state_dict(), ("kind", "seed", "batch_size", "shard", "positions"))
        self._k = int(state["batches"])

    def with_shard(self, index: int, count: int) -> IndexedSampler[B]:
        """A copy (sharing the frames) that produces shard ``index`` of ``count`` from batch 0."""
        if count > self.num_positions:
            raise ValueError(
                f"only {self.num_positions} positions for {count} shards; use fewer workers / "
                "ranks or more data"
            )
        other = copy.copy(self)
        other.shard = Shard(index, count)
        other._k = 0
        other._perm = None
        return other

    def __repr__(self) -> str:
        return (
            f"IndexedSampler(kind={self.gather.kind!r}, strategy={self.strategy.strategy!r}, "
            f"positions={self.num_positions}, batch_size={self.batch_size}, seed={self.seed}, "
            f"shard={self.shard.index}/{self.shard.count})"
        )
