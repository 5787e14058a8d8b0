"""Evaluating an offline algorithm through offgen's one evaluation mechanism.

:class:`AlgorithmPolicy` presents an :class:`~baselines.offline.algorithm.OfflineAlgorithm` as an
offgen policy exposing ``probabilities``, so :func:`offgen.evaluation.evaluate` plays it in the
requested action mode (``greedy`` by default: the same rule for every algorithm; the predecessor
sampled BC with epsilon 0.001 and was greedy for IQL on some splits only) on seeded level plans:
every evaluation of a run meets the same levels.

An algorithm that acts from each episode's history rather than one observation (DT and BCT: the
last K steps and the return-to-go) provides ``evaluation_policy(metadata)`` returning its own
offgen policy; the evaluation then plays that one instead of :class:`AlgorithmPolicy`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from baselines.offline.config import OfflineConfig
from offgen.envs.procgen import LevelRange
from offgen.evaluation import ActionMode, EvaluationReport, evaluate
from offgen.evaluation.environment import EvalEnvironment
from offgen.policies import sample_categorical
from offgen.policies.base import Obs, Uniforms

__all__ = ["AlgorithmPolicy", "evaluate_algorithm"]


class AlgorithmPolicy:
    """An offline algorithm as an offgen policy (``probabilities`` from the algorithm).

    Args:
        algorithm: The algorithm (its ``probabilities`` takes HWC uint8 observations).
        metadata: Facts recorded in evaluation reports (algo, run, update).
    """

    def __init__(self, algorithm: Any, metadata: Mapping[str, Any]) -> None:
        self.algorithm = algorithm
        self.policy_id = f"offline-{algorithm.name}"
        self.metadata = dict(metadata)

    def probabilities(self, obs: Obs) -> npt.NDArray[np.float64]:
        """The algorithm's ``(N, 15)`` action probabilities."""
        probs: npt.NDArray[np.float64] = np.asarray(self.algorithm.probabilities(obs))
        return probs

    def act(self, obs: Obs, uniforms: Uniforms) -> npt.NDArray[np.int64]:
        """Sample from :meth:`probabilities` with the given uniforms."""
        return sample_categorical(self.probabilities(obs), uniforms)


def _policy(algorithm: Any, metadata: Mapping[str, Any]) -> Any:
    """The algorithm's own evaluation policy when it has one (history-aware), else its
    ``probabilities`` as an :class:`AlgorithmPolicy`."""
    own = getattr(algorithm, "evaluation_policy", None)
    return own(metadata) if callable(own) else AlgorithmPolicy(algorithm, metadata)


def evaluate_algorithm(
    algorithm: Any,
    cfg: OfflineConfig,
    game: str,
    *,
    splits: Sequence[str],
    episodes: int,
    metadata: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """Returns of ``algorithm`` on ``splits``, ``episodes`` seeded episodes each.

    ``train`` plays levels ``0 .. --num_levels - 1`` (``--num_levels 0``: the whole distribution),
    ``validation`` 200-249 and ``test`` unseen levels from 250 (see docs/evaluation.md); the levels
    are fixed by ``--seed``.
    """
    env = EvalEnvironment(game, cfg.distribution_mode, LevelRange(0, cfg.num_levels))
    modules = algorithm.modules().values()
    was_training = [m.training for m in modules]
    try:
        return evaluate(
            _policy(algorithm, metadata or {"algo": algorithm.name}),
            splits=splits,
            episodes=episodes,
            seed=cfg.seed,
            num_envs=cfg.eval_num_envs,
            action=ActionMode.parse(cfg.eval_action),
            env=env,
        )
    finally:
        for module, training in zip(modules, was_training, strict=True):
            module.train(training)
