"""Samplers and loaders: transition batches, frame stacks, DT windows, mixtures, three strategies.

See ``docs/sampling.md`` for the guide. Entry points are :meth:`OffgenDataset.transitions`,
:meth:`OffgenDataset.windows` and :func:`mix`; torch adapters live in :mod:`offgen.data.torch`.
"""

from offgen.data.sampling.api import make_transitions, make_windows, mix, resolve_frames
from offgen.data.sampling.batches import TransitionBatch, WindowBatch, concat_batches
from offgen.data.sampling.cache import cache_location, frame_cache_exists, open_frame_cache
from offgen.data.sampling.index import StepIndex, returns_to_go
from offgen.data.sampling.mixture import MixtureSampler, largest_remainder
from offgen.data.sampling.rng import Shard
from offgen.data.sampling.samplers import Sampler, TransitionSampler, WindowSampler
from offgen.data.sampling.splits import choose_heldout_levels
from offgen.data.sampling.strategy import Strategy, StrategyChoice, choose_strategy
from offgen.data.sampling.stream import StreamSampler

__all__ = [
    "MixtureSampler",
    "Sampler",
    "Shard",
    "StepIndex",
    "Strategy",
    "StrategyChoice",
    "StreamSampler",
    "TransitionBatch",
    "TransitionSampler",
    "WindowBatch",
    "WindowSampler",
    "cache_location",
    "choose_heldout_levels",
    "choose_strategy",
    "concat_batches",
    "frame_cache_exists",
    "largest_remainder",
    "make_transitions",
    "make_windows",
    "mix",
    "open_frame_cache",
    "resolve_frames",
    "returns_to_go",
]
