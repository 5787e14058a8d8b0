"""``torch.utils.data`` adapters for offgen samplers and episodes.

Importing this module needs torch (``pip install 'offgen[torch]'``). Use the adapters with
``DataLoader(adapter, batch_size=None, num_workers=N)``: offgen batches are already batched.

Sharding: each DataLoader worker of each ``torch.distributed`` rank is shard
``rank * num_workers + worker_id`` of ``world_size * num_workers``. Random samplers derive a distinct
seed per shard and draw only from their own residue class of the positions (``p % shards ==
shard``), so no two workers or ranks ever draw the same step; epoch-style samplers
(``replacement=False``) and episode iteration take disjoint partitions (so every item is seen once
per epoch across all workers and ranks). The rank and world size are taken from the arguments, else
from ``torch.distributed`` when it is initialised, else ``0`` / ``1``; one of the two without the
other needs ``torch.distributed`` (a ``ValueError`` says so otherwise).

Resuming: batch ``j`` of a worker is batch ``start + j`` of its shard's stream, and a DataLoader
with ``in_order=True`` (the default) returns workers' batches round robin, so after ``g`` batches
delivered on a rank, :meth:`SamplerIterable.load_state_dict` with ``{"epoch": e, "batches": g}``
restarts every worker exactly where the uninterrupted run would be.

Map-style: :class:`TransitionDataset` has ``__len__`` / ``__getitem__`` over every selected
transition, for code written against map-style datasets (``DataLoader(..., batch_size=256,
shuffle=True)``, samplers such as ``DistributedSampler``).

Layout: the adapters that decode frames themselves (:class:`EpisodeIterable`,
:class:`TransitionDataset`) give CHW by default,
the layout every ``torch.nn.Conv2d`` takes. :class:`SamplerIterable` keeps the layout of the sampler
it wraps (``ds.transitions(..., layout="CHW")``): numpy samplers default to HWC, the stored layout
and the one JAX / flax convolutions take.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, Unpack

import numpy as np

from offgen._optional import require
from offgen.data.dataset import OffgenDataset
from offgen.data.layout import in_layout
from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.options import SamplerKeywords, SamplerOptions
from offgen.data.sampling.rng import Shard
from offgen.data.sampling.samplers import Sampler
from offgen.data.schema import Layout

torch = require("torch", "torch")
_IterableDataset: Any = torch.utils.data.IterableDataset
_MapDataset: Any = torch.utils.data.Dataset

__all__ = [
    "EpisodeIterable",
    "SamplerIterable",
    "TransitionDataset",
    "batch_to_torch",
    "current_shard",
]


def batch_to_torch(batch: TransitionBatch | WindowBatch) -> dict[str, Any]:
    """A batch as a dict of tensors (same field names; no copy of the arrays)."""
    return {f.name: torch.from_numpy(getattr(batch, f.name)) for f in dataclasses.fields(batch)}


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """The rank and world size: the arguments, else ``torch.distributed``'s, else ``0`` / ``1``.

    Raises:
        ValueError: If only one of the two is given and ``torch.distributed`` is not initialised
            (nothing says what the other one is).
    """
    if rank is not None and world_size is not None:
        return int(rank), int(world_size)
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return (
            dist.get_rank() if rank is None else int(rank),
            dist.get_world_size() if world_size is None else int(world_size),
        )
    if rank is None and world_size is None:
        return 0, 1
    given, missing = ("rank", "world_size") if world_size is None else ("world_size", "rank")
    raise ValueError(
        f"{given}={rank if world_size is None else world_size} was given without {missing}, and "
        f"torch.distributed is not initialised to supply it: pass both rank= and world_size=, "
        "or neither (then they come from torch.distributed, else rank 0 of 1)"
    )


def current_shard(rank: int | None = None, world_size: int | None = None) -> tuple[Shard, int, int]:
    """This process's shard, its worker id and the number of workers (call inside a worker).

    Returns:
        ``(shard, worker_id, num_workers)``.

    Raises:
        ValueError: If only one of ``rank`` / ``world_size`` is given while ``torch.distributed``
            is not initialised, or the rank is outside the world size.
    """
    info = torch.utils.data.get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    r, w = _checked_rank_world(rank, world_size)
    return Shard(r * workers + worker, w * workers), worker, workers


def _checked_rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    r, w = _rank_world(rank, world_size)
    if not 0 <= r < w:
        raise ValueError(f"rank {r} is outside world size {w}")
    return r, w


class SamplerIterable(_IterableDataset):  # type: ignore[misc]
    """An offgen sampler as an ``IterableDataset`` of tensor dicts, sharded over workers and ranks.

    Args:
        sampler: A sampler from ``ds.transitions(...)``, ``ds.windows(...)`` or ``mix(...)``.
            Build it in the main process: decoded RAM frames and memmaps are shared with forked
            workers, not copied.
        batches_per_epoch: Batches one iteration (epoch) yields on this rank, split over the
            workers. Default: one pass over each shard for epoch-style samplers; required for
            random ones (which are infinite).
        rank: Distributed rank (default: from ``torch.distributed``, else 0).
        world_size: Distributed world size (default: from ``torch.distributed``, else 1). Give
            both or neither unless ``torch.distributed`` is initialised.

    Example:
        >>> loader = DataLoader(SamplerIterable(ds.transitions(256), batches_per_epoch=1000),
        ...                     batch_size=None, num_workers=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        sampler: Sampler[Any],
        *,
        batches_per_epoch: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        self.sampler = sampler
        self.batches_per_epoch = batches_per_epoch
        # Resolved here, in the parent: a worker started with "spawn" (torchrl's import sets it)
        # has no process group, and would otherwise fail or think it is rank 0 of 1.
        self.rank, self.world_size = _checked_rank_world(rank, world_size)
        self.epoch = 0
        self._resume = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch the next iteration yields (like ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)
        self._resume = 0

    def state_dict(self, batches_delivered: int = 0) -> dict[str, int]:
        """Where to resume: the epoch and the batches this rank's loader delivered in it."""
        return {"epoch": self.epoch, "batches": int(batches_delivered)}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Resume in ``state["epoch"]`` after ``state["batches"]`` delivered batches."""
        self.epoch = int(state["epoch"])
        self._resume = int(state["batches"])

    def _per_worker(self, shard_sampler: Sampler[Any], worker: int, workers: int) -> int:
        if self.batches_per_epoch is not None:
            total = self.batches_per_epoch
            return (total - worker + workers - 1) // workers
        per_epoch = getattr(shard_sampler, "batches_per_epoch", None)
        if per_epoch is None:
            raise ValueError(
                "a random sampler is infinite: pass batches_per_epoch= to SamplerIterable "
                "(or build the sampler with replacement=False for epochs)"
            )
        return int(per_epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        shard, worker, workers = current_shard(self.rank, self.world_size)
        # The loader hands out batches round robin from worker 0; after resuming at batch g the
        # next batch belongs to the stream of worker g % workers, so workers take rotated roles.
        role = (worker + self._resume) % workers
        shard = Shard(shard.index - worker + role, shard.count)
        sampler = self.sampler.with_shard(shard.index, shard.count)
        count = self._per_worker(sampler, role, workers)
        done = max(0, (self._resume - role + workers - 1) // workers)
        start = self.epoch * count + done
        state = {**sampler.state_dict(), "batches": start}
        sampler.load_state_dict(state)
        for _ in range(count - done):
            yield batch_to_torch(next(sampler))


class EpisodeIterable(_IterableDataset):  # type: ignore[misc]
    """Whole episodes as dicts of tensors, partitioned over workers and ranks without overlap.

    Args:
        dataset: The dataset (its selection is iterated).
        shuffle: Shuffle the episode order each epoch (seeded by ``seed`` and the epoch).
        seed: Seed of the order.
        layout: ``"CHW"`` (default, what torch convolutions take) or ``"HWC"`` observations.
        rank: Distributed rank (default: from ``torch.distributed``).
        world_size: Distributed world size.
    """

    def __init__(
        self,
        dataset: OffgenDataset,
        *,
        shuffle: bool = False,
        seed: int = 0,
        layout: Layout = "CHW",
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        if layout not in ("HWC", "CHW"):
            raise ValueError(f"layout must be 'HWC' or 'CHW', got {layout!r}")
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = seed
        self.layout = layout
        # Resolved here, in the parent: a worker started with "spawn" (torchrl's import sets it)
        # has no process group, and would otherwise fail or think it is rank 0 of 1.
        self.rank, self.world_size = _checked_rank_world(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (changes the shuffled order)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        shard, _, _ = current_shard(self.rank, self.world_size)
        dataset = copy.copy(self.dataset)
        for episode in dataset.iter_episodes(
            shuffle=self.shuffle, seed=self.seed * 1000003 + self.epoch, shard=shard
        ):
            obs = in_layout(episode.observations, "HWC", self.layout)
            yield {
                "observations": torch.from_numpy(obs),
                # int64: what cross_entropy targets and embedding indices take (stored as uint8)
                "actions": torch.from_numpy(episode.actions.astype(np.int64)),
                "rewards": torch.from_numpy(episode.rewards),
                "terminated": episode.terminated,
                "truncated": episode.truncated,
                "level_seed": episode.level_seed,
                "episode_id": int(episode.provenance.get("episode_id", -1)),
            }


class TransitionDataset(_MapDataset):  # type: ignore[misc]
    """Every selected transition as a map-style ``Dataset``: item ``i`` is step ``i`` of the
    selection (episode after episode), a dict of tensors with the keys of :func:`batch_to_torch`
    and no batch axis (``obs``: ``(3, 64, 64)`` uint8 by default).

    Items are exactly what the samplers return for those steps (same frames, frame stacks and
    episode-end flags, see :meth:`OffgenDataset.transition_rows`). A DataLoader fetches a whole
    batch with one gather (``__getitems__``). Build it in the main process: the ``ram`` frames or
    the memmap are shared with forked workers.

    Args:
        dataset: The dataset (its selection).
        options: Sampler settings (``layout``, ``frame_stack``, ``strategy``, ``memory_budget``,
            ``progress``); ``layout`` defaults to ``"CHW"`` here.
        **keywords: Any of those settings as keywords.

    Example:
        >>> loader = DataLoader(TransitionDataset(ds), batch_size=256, shuffle=True,
        ...                     num_workers=2)  # doctest: +SKIP
        >>> next(iter(loader))["obs"].shape
        torch.Size([256, 3, 64, 64])
    """

    def __init__(
        self,
        dataset: OffgenDataset,
        *,
        options: SamplerOptions | None = None,
        **keywords: Unpack[SamplerKeywords],
    ) -> None:
        super().__init__()
        if options is None and "layout" not in keywords:
            keywords["layout"] = "CHW"
        self.rows = dataset.transition_rows(options=options, **keywords)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        batch = batch_to_torch(self.rows[indices])
        return [{k: v[i] for k, v in batch.items()} for i in range(len(indices))]
