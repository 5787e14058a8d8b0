"""The contract between the shared offline training loop and one algorithm (BC, BCQ, CQL, IQL, DT, BCT).

One small Protocol injected into one consumer (the loop in ``baselines/offline/loop.py``) instead of
a base class with a ``kind`` string: each algorithm file says which data it eats, owns its networks
and optimisers, and turns one batch into one gradient step. Everything else (data from offgen's
samplers, prefetching, checkpoints, resume, early stopping, logging, evaluation) is the loop's job,
written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["DataKind", "HistoryAlgorithm", "OfflineAlgorithm"]

DataKind = Literal["transitions", "windows"]
"""``transitions`` (``offgen.data.TransitionBatch``, CHW) or ``windows`` (``WindowBatch``, CHW)."""


class OfflineAlgorithm(Protocol):
    """What the offline loop needs from an algorithm.

    Attributes:
        name: The ``--algo`` value (``bc``, ``bcq``, ``cql``, ``iql``, ``dt``, ``bct``).
        data: Which batches :meth:`update` takes.
    """

    name: str
    data: DataKind

    def modules(self) -> Mapping[str, Any]:
        """Every ``torch.nn.Module`` with state, target copies included, by a stable name.

        The loop checkpoints and restores them by these names, moves them to the device and checks
        that data-parallel ranks hold identical parameters.
        """
        ...

    def optimizers(self) -> Mapping[str, Any]:
        """Every ``torch.optim.Optimizer`` by a stable name (checkpointed with the modules)."""
        ...

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One gradient step on one batch; returns the losses to log (plain floats).

        Args:
            batch: The sampler's batch as torch tensors on the training device, keyed by the
                batch's field names (``obs``, ``action``, ``reward``, ``next_obs``,
                ``terminated``, ... or ``states``, ``actions``, ``returns_to_go``, ``timesteps``,
                ``mask``, ...). Frames are uint8 CHW; the algorithm scales them to [0, 1].
            step: Updates completed before this one (target copies are synced from it, so a
                resumed run syncs at the same steps as an uninterrupted one).
        """
        ...

    def probabilities(self, obs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """``(N, 15)`` action probabilities for HWC uint8 observations (evaluation's
        ``DistributionPolicy``): greedy evaluation takes their argmax, and an action the algorithm
        must never take (BCQ's masked actions) has probability 0."""
        ...


@runtime_checkable
class HistoryAlgorithm(Protocol):
    """An algorithm that acts from each episode's history (DT, BCT), not from one observation.

    Its :meth:`OfflineAlgorithm.probabilities` cannot answer; evaluation plays the policy this
    returns instead of wrapping ``probabilities``. That policy is an
    :class:`offgen.policies.EpisodicPolicy`, so :func:`offgen.evaluation.evaluate` tells it when
    each environment slot starts an episode and what each step earned.
    """

    def evaluation_policy(self, metadata: Mapping[str, Any] | None = None) -> Any:
        """An offgen policy (``Policy`` + ``DistributionPolicy`` + ``EpisodicPolicy``) for
        evaluation; ``metadata`` (run, update) goes into the evaluation report."""
        ...
