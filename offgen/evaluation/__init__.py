"""Evaluation of policies on seeded, paired level plans of Procgen splits.

One mechanism for every user (the ``offgen evaluate`` command, ratio collection, the baselines):
each split plays a policy-independent plan of levels fixed by the seed, vectorised over envpool with
batched inference, every planned episode exactly once; the report gives per-split mean, std,
stderr and normalised return and every episode's level, return and length (JSON, and the
predecessor's ``evaluate.csv``). See ``docs/evaluation.md``.

Example:
    >>> from offgen.evaluation import evaluate, ActionMode  # doctest: +SKIP
    >>> report = evaluate("random", game="coinrun", episodes=20)  # doctest: +SKIP
    >>> report.splits["test"].mean  # doctest: +SKIP
"""

from offgen.evaluation.actions import ActionMode
from offgen.evaluation.api import evaluate
from offgen.evaluation.environment import (
    EvalEnvironment,
    environment_of,
    registered_environment,
)
from offgen.evaluation.plan import plan_levels
from offgen.evaluation.policy import resolve_policy
from offgen.evaluation.report import (
    Comparison,
    EpisodeResult,
    EvaluationReport,
    PairedDifference,
    SplitResult,
    compare,
    normalised_return,
)

__all__ = [
    "ActionMode",
    "Comparison",
    "EpisodeResult",
    "EvalEnvironment",
    "EvaluationReport",
    "PairedDifference",
    "SplitResult",
    "compare",
    "environment_of",
    "evaluate",
    "normalised_return",
    "plan_levels",
    "registered_environment",
    "resolve_policy",
]
