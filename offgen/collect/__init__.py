"""Collection: deterministic, resumable, exactly budgeted datasets from Procgen."""

from offgen.collect.assembler import EpisodeAssembler, RawEpisode
from offgen.collect.collector import CollectResult, collect, shard_budget, shard_seeds
from offgen.collect.engine import TapeEntry, run_episodes

__all__ = [
    "CollectResult",
    "EpisodeAssembler",
    "RawEpisode",
    "TapeEntry",
    "collect",
    "run_episodes",
    "shard_budget",
    "shard_seeds",
]
