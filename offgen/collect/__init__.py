"""Collection: deterministic, resumable, exactly budgeted datasets from Procgen.

:func:`collect` writes a dataset with one or several behaviour policies; ratio mode
(:func:`choose_ratio_policies`, then :func:`collect`) picks or mixes a training run's checkpoints
whose return is a chosen fraction of the final one's. :func:`merge_stores` combines shards and
:class:`RolloutRecorder` records a training loop's own steps.
"""

from offgen.collect.collector import CollectResult, collect, shard_budget
from offgen.collect.merge import MergeResult, merge_stores
from offgen.collect.ratio import (
    Candidate,
    Measurement,
    RatioPlan,
    RatioPolicies,
    choose_ratio_policies,
    discover_checkpoints,
    measure_checkpoint,
    plan_ratio,
    with_achieved_ratio,
)
from offgen.collect.rollouts import RolloutRecorder

__all__ = [
    "Candidate",
    "CollectResult",
    "Measurement",
    "MergeResult",
    "RatioPlan",
    "RatioPolicies",
    "RolloutRecorder",
    "choose_ratio_policies",
    "collect",
    "discover_checkpoints",
    "measure_checkpoint",
    "merge_stores",
    "plan_ratio",
    "shard_budget",
    "with_achieved_ratio",
]
