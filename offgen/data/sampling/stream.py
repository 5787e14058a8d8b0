"""The ``stream`` strategy: a bounded pool of decoded store blocks used as a shuffle buffer.

The selected episodes are grouped into *units*: runs of whole consecutive episodes spanning about
``unit_frames`` store frames (a few zarr chunks, read with one call). Because units hold whole
episodes, every transition, frame stack and window of a unit lies inside it. Each epoch visits the
units in a fresh random order (shard ``i`` of ``n`` takes every ``n``-th unit of that order, so
shards never share data). The pool holds ``slots`` units; each batch samples uniformly among the
steps in the pool; after each batch ``batch_size / reuse`` steps' worth of the oldest units are
evicted and replaced by the next units in the order (read ahead by a background thread). So each
step is drawn about ``reuse`` times on average while it is in the pool.

Memory is ``slots * slot_frames * 12 KiB`` for the pool plus one unit being read ahead, whatever the
dataset size. The schedule depends only on unit sizes, so ``load_state_dict`` replays it without
reading anything and then reads the pool's units: the resumed stream equals the uninterrupted one.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.frames import (
    FRAME_BYTES,
    SelectedEpisodes,
    frame_shape,
    iter_read_plan,
    read_in_layout,
)
from offgen.data.sampling.gather import Gather
from offgen.data.sampling.index import I64, StepIndex
from offgen.data.sampling.options import StreamOptions
from offgen.data.sampling.rng import NO_SHARD, Shard, batch_rng, check_state, epoch_rng
from offgen.data.sampling.strategy import StrategyChoice
from offgen.data.schema import Layout

__all__ = ["StreamSampler"]

B = TypeVar("B", TransitionBatch, WindowBatch)


class StreamSampler(Generic[B]):
    """Transitions or windows sampled from a bounded pool of store blocks.

    Args:
        episodes: The selected episodes.
        gather: What a batch holds (transitions or windows).
        batch_size: Batch size.
        seed: Seed.
        layout: Layout of the pool's frames (each unit is converted once, as it is read).
        options: Pool size, unit size and reuse.
        strategy: Why the stream strategy was chosen (for ``repr`` and logs).
        shard: Which shard of the units to stream.
    """

    def __init__(
        self,
        episodes: SelectedEpisodes,
        gather: Gather[B],
        *,
        batch_size: int,
        seed: int = 0,
        layout: Layout = "HWC",
        options: StreamOptions,
        strategy: StrategyChoice,
        shard: Shard = NO_SHARD,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rows = episodes.rows
        if len(rows) == 0:
            raise ValueError("nothing to sample: the selection holds no episodes")
        self.store = episodes.store
        self.rows = rows
        self.table_positions = episodes.positions
        self.gather: Gather[B] = gather
        self.batch_size = batch_size
        self.seed = int(seed)
        self.layout: Layout = layout
        self.reuse = float(options.reuse)
        self.shard = shard
        self.strategy = strategy
        starts = rows["frame_offset"].astype(np.int64)
        counts = rows["length"].astype(np.int64) + 1
        self._units = [
            np.asarray(members, dtype=np.int64)
            for _lo, _hi, members in iter_read_plan(starts, counts, options.unit_frames)
        ]
        self._unit_frames = np.array([int(counts[u].sum()) for u in self._units])
        self._unit_steps = self._unit_frames - np.array([len(u) for u in self._units])
        self.slot_frames = int(self._unit_frames.max())
        self._max_slots = max(2, options.pool_bytes // (self.slot_frames * FRAME_BYTES))
        if len(self._units) < shard.count:
            raise ValueError(
                f"{self.store.location}: only {len(self._units)} stream units for {shard.count} "
                "shards; lower unit_frames or use fewer workers / ranks"
            )
        self._per_shard = len(self._units) // shard.count
        self.slots = min(self._max_slots, self._per_shard)
        self._order: tuple[int, I64] | None = None
        self._pool: npt.NDArray[np.uint8] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._ahead: tuple[int, Future[npt.NDArray[np.uint8]]] | None = None
        self._reset_schedule()

    # ------------------------------------------------------------------ schedule
    def _unit_at(self, j: int) -> int:
        epoch, i = divmod(j, self._per_shard)
        if self._order is None or self._order[0] != epoch:
            order = epoch_rng(self.seed, epoch, stream=1).permutation(len(self._units))
            self._order = (epoch, order[self.shard.index :: self.shard.count])
        return int(self._order[1][i])

    def _reset_schedule(self) -> None:
        self._k = 0
        self._fifo: deque[tuple[int, int]] = deque()  # (slot, unit) oldest first
        self._next_j = self.slots
        self._credit = 0.0
        self._slot_unit = [self._unit_at(j) for j in range(self.slots)]
        self._fifo.extend((s, u) for s, u in enumerate(self._slot_unit))
        self._loaded: list[int | None] = [None] * self.slots
        self._index: StepIndex | None = None
        self._ahead = None

    def _advance_schedule(self) -> None:
        """Evict and replace units after a batch (bookkeeping only; frames are read lazily)."""
        if self._per_shard <= self.slots:
            return  # the whole shard fits: the pool never changes
        self._credit += self.batch_size / self.reuse
        while self._credit >= self._unit_steps[self._fifo[0][1]]:
            slot, unit = self._fifo.popleft()
            self._credit -= float(self._unit_steps[unit])
            new = self._unit_at(self._next_j)
            self._next_j += 1
            self._slot_unit[slot] = new
            self._fifo.append((slot, new))
            self._index = None

    # ------------------------------------------------------------------ reading
    def _read_unit(self, unit: int) -> npt.NDArray[np.uint8]:
        """The unit's frames in the pool's layout (converted here, in the read-ahead thread, once
        per unit rather than once per batch)."""
        members = self._units[unit]
        starts = self.rows["frame_offset"][members].astype(np.int64)
        counts = self.rows["length"][members].astype(np.int64) + 1
        lo = int(starts.min())
        block = read_in_layout(self.store, lo, int((starts + counts).max()), self.layout)
        if int(counts.sum()) == len(block):
            return block
        return np.concatenate(
            [block[s - lo : s - lo + c] for s, c in zip(starts, counts, strict=True)]
        )

    def _fetch(self, unit: int, upcoming: int | None) -> npt.NDArray[np.uint8]:
        if self._ahead is not None and self._ahead[0] == unit:
            data = self._ahead[1].result()
            self._ahead = None
        else:
            data = self._read_unit(unit)
        if upcoming is not None and self._ahead is None:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="offgen-stream")
            self._ahead = (upcoming, self._executor.submit(self._read_unit, upcoming))
        return data

    def _sync_pool(self) -> StepIndex:
        if self._pool is None:
            shape = (self.slots * self.slot_frames, *frame_shape(self.layout))
            self._pool = np.empty(shape, np.uint8)
        changed = False
        for slot, unit in enumerate(self._slot_unit):
            if self._loaded[slot] != unit:
                ahead = self._unit_at(self._next_j) if self._per_shard > self.slots else None
                data = self._fetch(unit, ahead)
                base = slot * self.slot_frames
                self._pool[base : base + len(data)] = data
                self._loaded[slot] = unit
                changed = True
        if changed or self._index is None:
            self._index = self._pool_index()
        return self._index

    def _pool_index(self) -> StepIndex:
        members, ep_frame = [], []
        for slot, unit in enumerate(self._slot_unit):
            m = self._units[unit]
            counts = self.rows["length"][m].astype(np.int64) + 1
            local = np.zeros(len(m), dtype=np.int64)
            np.cumsum(counts[:-1], out=local[1:])
            members.append(m)
            ep_frame.append(local + slot * self.slot_frames)
        sel = np.concatenate(members)
        return StepIndex.build(self.rows[sel], self.table_positions[sel], np.concatenate(ep_frame))

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[B]:
        return self

    def __next__(self) -> B:
        index = self._sync_pool()
        rng = batch_rng(self.seed, self.shard, self._k, stream=1)
        positions = rng.integers(0, index.num_steps, self.batch_size)
        assert self._pool is not None
        out = self.gather(self._pool, index, positions)
        self._k += 1
        self._advance_schedule()
        return out

    def batch(self, k: int) -> B:
        """Batch number ``k``; moves the stream to ``k + 1`` (a pool cannot seek for free)."""
        if k != self._k:
            self.load_state_dict({**self.state_dict(), "batches": k})
        return next(self)

    def state_dict(self) -> dict[str, Any]:
        """Position in the stream plus what must match to resume it."""
        return {
            "kind": f"stream-{self.gather.kind}",
            "batches": self._k,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "shard": [self.shard.index, self.shard.count],
            "units": len(self._units),
            "slots": self.slots,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume after ``state["batches"]`` batches (replays the pool schedule, then reads it)."""
        check_state(
            state, self.state_dict(), ("kind", "seed", "batch_size", "shard", "units", "slots")
        )
        self._reset_schedule()
        for _ in range(int(state["batches"])):
            self._k += 1
            self._advance_schedule()

    def with_shard(self, index: int, count: int) -> StreamSampler[B]:
        """A copy that streams shard ``index`` of ``count`` of the units from batch 0."""
        other = copy.copy(self)
        other.shard = Shard(index, count)
        if len(self._units) < count:
            raise ValueError(f"only {len(self._units)} stream units for {count} shards")
        other._per_shard = len(self._units) // count
        other.slots = min(self._max_slots, other._per_shard)
        other._order = None
        other._pool = None
        other._executor = None
        other._ahead = None
        other._reset_schedule()
        return other

    def close(self) -> None:
        """Stop the read-ahead thread and free the pool."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._ahead = None
        self._pool = None

    def __repr__(self) -> str:
        return (
            f"StreamSampler(kind={self.gather.kind!r}, units={len(self._units)}, slots={self.slots}, "
            f"slot_frames={self.slot_frames}, batch_size={self.batch_size}, seed={self.seed}, "
            f"shard={self.shard.index}/{self.shard.count})"
        )
