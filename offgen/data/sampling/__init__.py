"""Samplers and loaders: transition batches, frame stacks, DT windows, mixtures, three strategies.

See ``docs/sampling.md`` for the guide. Entry points are :meth:`OffgenDataset.transitions`,
:meth:`OffgenDataset.windows` and :func:`offgen.data.mix`; torch adapters live in
:mod:`offgen.data.torch`. This package does not know datasets: it builds samplers from a store and
its selected rows (:mod:`.build`).
"""

from offgen.data.sampling.batches import TransitionBatch, WindowBatch, concat_batches
from offgen.data.sampling.index import returns_to_go
from offgen.data.sampling.mixture import MixtureSampler
from offgen.data.sampling.options import SamplerOptions, StreamOptions
from offgen.data.sampling.rng import Shard
from offgen.data.sampling.samplers import Sampler
from offgen.data.sampling.splits import choose_heldout_levels
from offgen.data.sampling.strategy import Strategy, StrategyChoice

__all__ = [
    "MixtureSampler",
    "Sampler",
    "SamplerOptions",
    "Shard",
    "Strategy",
    "StrategyChoice",
    "StreamOptions",
    "TransitionBatch",
    "WindowBatch",
    "choose_heldout_levels",
    "concat_batches",
    "returns_to_go",
]
