"""Level-based splits: hold out whole levels (level seeds) deterministically.

The held-out levels are the ``n`` levels with the smallest keyed hash ``blake2b(seed, level)``, so
the choice depends only on the seed and the set of levels present, not on episode order, and is the
same on every machine and Python version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

__all__ = ["choose_heldout_levels"]


def _key(seed: int, level: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{level}".encode(), digest_size=8).digest()


def choose_heldout_levels(
    levels: Iterable[int],
    *,
    fraction: float | None = None,
    count: int | None = None,
    seed: int = 0,
) -> npt.NDArray[np.int64]:
    """Pick the held-out levels among ``levels``.

    Args:
        levels: Level seeds present (duplicates are fine).
        fraction: Share of the distinct levels to hold out, rounded to the nearest count (at least
            one when ``fraction > 0``).
        count: Exact number of levels to hold out (instead of ``fraction``).
        seed: Changes which levels are chosen.

    Returns:
        Sorted held-out level seeds.

    Raises:
        ValueError: If neither or both of ``fraction`` / ``count`` are given, or they are out of
            range.
    """
    distinct = np.unique(np.fromiter(levels, dtype=np.int64))
    if (fraction is None) == (count is None):
        raise ValueError("give exactly one of fraction= or count=")
    if fraction is not None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
        count = round(fraction * len(distinct))
        if fraction > 0 and len(distinct):
            count = max(1, count)
    assert count is not None
    if not 0 <= count <= len(distinct):
        raise ValueError(f"cannot hold out {count} of {len(distinct)} levels")
    ranked = sorted(distinct.tolist(), key=lambda level: _key(seed, level))
    return np.sort(np.asarray(ranked[:count], dtype=np.int64))
