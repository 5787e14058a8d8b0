"""Seeding: every batch draws from its own generator keyed by (seed, shard, batch number).

Keying the generator by the batch counter makes a sampler's whole state one integer: resuming at
batch ``k`` reproduces exactly the batches an uninterrupted run would have produced from ``k`` on.
Shards (DataLoader workers x distributed ranks) get distinct keys, hence distinct streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NO_SHARD", "Shard", "batch_rng", "epoch_rng"]


@dataclass(frozen=True)
class Shard:
    """Which part of the data a sampler produces: shard ``index`` of ``count``.

    Random samplers use it to derive distinct seeds; epoch-style samplers take a disjoint
    partition of the data.
    """

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"invalid shard {self.index} of {self.count}")


NO_SHARD = Shard()
"""The whole data (shard 0 of 1)."""


def batch_rng(seed: int, shard: Shard, batch: int, stream: int = 0) -> np.random.Generator:
    """Generator for batch number ``batch`` of ``shard`` (``stream`` separates uses)."""
    return np.random.default_rng([seed, 1, stream, shard.index, shard.count, batch])


def epoch_rng(seed: int, epoch: int, stream: int = 0) -> np.random.Generator:
    """Generator shared by all shards for epoch ``epoch`` (the same permutation everywhere)."""
    return np.random.default_rng([seed, 2, stream, epoch])
