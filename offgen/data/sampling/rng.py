"""Seeding: every batch draws from its own generator keyed by (seed, shard, batch number).

Keying the generator by the batch counter makes a sampler's whole state one integer: resuming at
batch ``k`` reproduces exactly the batches an uninterrupted run would have produced from ``k`` on.
Shards (DataLoader workers x distributed ranks) get distinct keys, hence distinct streams.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NO_SHARD", "Shard", "batch_rng", "check_state", "epoch_rng"]


@dataclass(frozen=True)
class Shard:
    """Which part of the data a sampler produces: shard ``index`` of ``count``.

    Random samplers use it to derive distinct seeds and draw from their own residue class of the
    positions (``p % count == index``); epoch-style samplers take a disjoint partition of each
    epoch's permutation. Either way, no two shards produce the same position.
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


def check_state(saved: Mapping[str, Any], mine: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Refuse a saved sampler state whose ``keys`` differ from this sampler's (lists and tuples
    compare equal: a state may have gone through JSON).

    Raises:
        ValueError: Naming the first key that differs.
    """
    for key in keys:
        got, want = saved.get(key), mine[key]
        if isinstance(got, tuple):
            got = list(got)
        if isinstance(want, tuple):
            want = list(want)
        if got != want:
            raise ValueError(
                f"state_dict mismatch on {key!r}: saved {saved.get(key)!r}, this sampler has "
                f"{mine[key]!r}; build the sampler with the same data and settings"
            )
