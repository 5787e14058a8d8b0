"""Random access to the transitions of a selection by position: ``rows[i]`` is step ``i``.

What a map-style loader needs (``__len__`` / ``__getitem__``): the same frames (``ram`` array or
``memmap`` cache, shared with the dataset's samplers), step index and transition gather as the
samplers, indexed by the caller instead of drawn. Position ``i`` is step ``i`` of the selection,
episode after episode (the row order of ``ds.to_dict()``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offgen.data.sampling.batches import TransitionBatch
from offgen.data.sampling.gather import TransitionGather
from offgen.data.sampling.index import StepIndex
from offgen.data.sampling.strategy import StrategyChoice

__all__ = ["TransitionRows"]


@dataclass(frozen=True, eq=False)
class TransitionRows:
    """Every selected transition, addressable by position.

    Attributes:
        frames: The decoded frames (RAM array or memmap) the index points into.
        index: Where each step's frames, episode and store step are.
        gather: The transition gather (frame stack, layout already in ``frames``).
        strategy: Where the frames live and why.
    """

    frames: npt.NDArray[np.uint8]
    index: StepIndex
    gather: TransitionGather
    strategy: StrategyChoice

    def __len__(self) -> int:
        return len(self.index.frame)

    def __getitem__(self, positions: int | npt.ArrayLike) -> TransitionBatch:
        """The transitions at ``positions`` (an int or integer array; negative counts from the end)
        as one batch, in the order given.

        Raises:
            IndexError: If a position is outside ``[-len, len)``.
        """
        p = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        n = len(self)
        if p.size and (p.min() < -n or p.max() >= n):
            bad = int(p[(p < -n) | (p >= n)][0])
            raise IndexError(f"transition {bad} is out of range for {n} transitions")
        return self.gather(self.frames, self.index, np.where(p < 0, p + n, p))
