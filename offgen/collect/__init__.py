"""Collection: deterministic, resumable, exactly budgeted datasets from Procgen."""

from offgen.collect.assembler import EpisodeAssembler, RawEpisode
from offgen.collect.collector import CollectResult, collect, shard_budget, shard_seeds
from offgen.collect.engine import TapeEntry, run_episodes
from offgen.collect.merge import MergeResult, merge_stores
from offgen.collect.ratio import (
    Candidate,
    Measurement,
    RatioPlan,
    achieved,
    discover_checkpoints,
    evaluate_policy,
    measure,
    plan,
)
from offgen.collect.rollouts import RolloutRecorder

__all__ = [
    "Candidate",
    "CollectResult",
    "EpisodeAssembler",
    "Measurement",
    "MergeResult",
    "RatioPlan",
    "RawEpisode",
    "RolloutRecorder",
    "TapeEntry",
    "achieved",
    "collect",
    "discover_checkpoints",
    "evaluate_policy",
    "measure",
    "merge_stores",
    "plan",
    "run_episodes",
    "shard_budget",
    "shard_seeds",
]
