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
from typing import Any, Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from offgen.data.sampling.batches import TransitionBatch, WindowBatch
from offgen.data.sampling.frames import FRAME_BYTES, iter_read_plan
from offgen.data.sampling.gather import Pad, gather_transitions, gather_windows
from offgen.data.sampling.index import StepIndex, returns_to_go
from offgen.data.sampling.rng import NO_SHARD, Shard, batch_rng, epoch_rng
from offgen.data.sampling.strategy import StrategyChoice
from offgen.data.schema import FRAME_SHAPE_HWC, Layout
from offgen.data.store import OffgenStore

__all__ = ["DEFAULT_POOL_BYTES", "DEFAULT_UNIT_FRAMES", "StreamSampler"]

DEFAULT_UNIT_FRAMES = 4096
DEFAULT_POOL_BYTES = 1 << 30


def _norm(value: Any) -> Any:
    """Lists and tuples compare equal (a state may have gone through JSON)."""
    return list(value) if isinstance(value, list | tuple) else value


B = TypeVar("B", TransitionBatch, WindowBatch)
I64 = npt.NDArray[np.int64]


class StreamSampler(Generic[B]):
    """Transitions or windows sampled from a bounded pool of store blocks.

    Args:
        store: The store.
        rows: Selected episode rows.
        table_positions: Their table positions in the store.
        kind: ``"transitions"`` or ``"windows"``.
        batch_size: Batch size.
        seed: Seed.
        frame_stack: Frames per observation.
        layout: ``"HWC"`` or ``"CHW"``.
        context: Window length (windows only).
        pad: Window padding side (windows only).
        gamma: Return-to-go discount (windows only).
        pool_bytes: Memory for the pool's frames (default 1 GiB).
        unit_frames: Target store frames per unit.
        reuse: Expected draws of each step while it is in the pool.
        shard: Which shard of the units to stream.
    """

    def __init__(
        self,
        store: OffgenStore,
        rows: npt.NDArray[Any],
        table_positions: I64,
        *,
        kind: Literal["transitions", "windows"],
        batch_size: int,
        seed: int = 0,
        frame_stack: int = 1,
        layout: Layout = "HWC",
        context: int = 10,
        pad: Pad = "left",
        gamma: float = 1.0,
        pool_bytes: int = DEFAULT_POOL_BYTES,
        unit_frames: int = DEFAULT_UNIT_FRAMES,
        reuse: float = 1.0,
        shard: Shard = NO_SHARD,
    ) -> None:
        if batch_size < 1 or frame_stack < 1 or context < 1 or reuse <= 0:
            raise ValueError("batch_size, frame_stack and context must be >= 1 and reuse > 0")
        if len(rows) == 0:
            raise ValueError("nothing to sample: the selection holds no episodes")
        self.store = store
        self.rows = rows
        self.table_positions = np.asarray(table_positions, dtype=np.int64)
        self.kind = kind
        self.batch_size = batch_size
        self.seed = int(seed)
        self.frame_stack = frame_stack
        self.layout: Layout = layout
        self.context = context
        self.pad: Pad = pad
        self.reuse = float(reuse)
        self.shard = shard
        self.strategy = StrategyChoice("stream", "requested")
        self.actions = store.actions
        self.rewards = store.rewards
        self.rtg = returns_to_go(self.rewards, rows, gamma) if kind == "windows" else None
        starts = rows["frame_offset"].astype(np.int64)
        counts = rows["length"].astype(np.int64) + 1
        self._units = [
            np.asarray(members, dtype=np.int64)
            for _lo, _hi, members in iter_read_plan(starts, counts, unit_frames)
        ]
        self._unit_frames = np.array([int(counts[u].sum()) for u in self._units])
        self._unit_steps = self._unit_frames - np.array([len(u) for u in self._units])
        self.slot_frames = int(self._unit_frames.max())
        self._max_slots = max(2, pool_bytes // (self.slot_frames * FRAME_BYTES))
        if len(self._units) < shard.count:
            raise ValueError(
                f"{store.location}: only {len(self._units)} stream units for {shard.count} shards; "
                "lower unit_frames or use fewer workers / ranks"
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
        members = self._units[unit]
        starts = self.rows["frame_offset"][members].astype(np.int64)
        counts = self.rows["length"][members].astype(np.int64) + 1
        lo = int(starts.min())
        block = self.store.read_frames(lo, int((starts + counts).max()))
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
            self._pool = np.empty((self.slots * self.slot_frames, *FRAME_SHAPE_HWC), np.uint8)
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
        out: Any
        if self.kind == "transitions":
            out = gather_transitions(
                self._pool,
                index,
                positions,
                self.actions,
                self.rewards,
                frame_stack=self.frame_stack,
                layout=self.layout,
            )
        else:
            assert self.rtg is not None
            out = gather_windows(
                self._pool,
                index,
                positions,
                self.actions,
                self.rewards,
                self.rtg,
                context=self.context,
                frame_stack=self.frame_stack,
                layout=self.layout,
                pad=self.pad,
            )
        self._k += 1
        self._advance_schedule()
        result: B = out
        return result

    def batch(self, k: int) -> B:
        """Batch number ``k``; moves the stream to ``k + 1`` (a pool cannot seek for free)."""
        if k != self._k:
            self.load_state_dict({**self.state_dict(), "batches": k})
        return next(self)

    def state_dict(self) -> dict[str, Any]:
        """Position in the stream plus what must match to resume it."""
        return {
            "kind": f"stream-{self.kind}",
            "batches": self._k,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "shard": [self.shard.index, self.shard.count],
            "units": len(self._units),
            "slots": self.slots,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume after ``state["batches"]`` batches (replays the pool schedule, then reads it)."""
        mine = self.state_dict()
        for key in ("kind", "seed", "batch_size", "shard", "units", "slots"):
            if _norm(state.get(key)) != _norm(mine[key]):
                raise ValueError(
                    f"state_dict mismatch on {key!r}: saved {state.get(key)!r}, this sampler has "
                    f"{mine[key]!r}; build the sampler with the same data and settings"
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
            f"StreamSampler(kind={self.kind!r}, units={len(self._units)}, slots={self.slots}, "
            f"slot_frames={self.slot_frames}, batch_size={self.batch_size}, seed={self.seed}, "
            f"shard={self.shard.index}/{self.shard.count})"
        )
