"""Decoding frames out of a store: whole selected episodes, read in large slices, in a layout.

zarr costs about 1 ms per call, so frames are read in slices of up to a shard (16384 frames) that
cover several consecutive selected episodes at once, never frame by frame.

The store holds HWC frames. Frames are converted to the layout a sampler asks for here, once, as
they are decoded (into the RAM array, the memmap cache file of that layout, or a stream unit), so a
batch is the same plain row gather in both layouts instead of a transpose per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen._progress import progress_bar
from offgen.data.layout import in_layout
from offgen.data.sampling.index import I64
from offgen.data.schema import FRAME_SHAPE_CHW, FRAME_SHAPE_HWC, Layout
from offgen.data.store import OffgenStore

__all__ = [
    "FRAME_BYTES",
    "SelectedEpisodes",
    "decode_episodes",
    "frame_shape",
    "iter_read_plan",
    "read_in_layout",
]

FRAME_BYTES = int(np.prod(FRAME_SHAPE_HWC))
"""Bytes of one decoded 64x64x3 uint8 frame."""


@dataclass(frozen=True, eq=False)
class SelectedEpisodes:
    """What samplers read: a store and the rows of its episode table that are selected.

    Attributes:
        store: The opened store.
        rows: The selected episode table rows, in selection order.
        positions: Table position of each row in the store.
    """

    store: OffgenStore
    rows: npt.NDArray[Any]
    positions: I64

    @property
    def num_frames(self) -> int:
        """Frames of the selected episodes (``T + 1`` each)."""
        return int((self.rows["length"].astype(np.int64) + 1).sum())

    @property
    def num_steps(self) -> int:
        """Steps of the selected episodes."""
        return int(self.rows["length"].astype(np.int64).sum())


def frame_shape(layout: Layout) -> tuple[int, int, int]:
    """Shape of one frame in ``layout``."""
    return FRAME_SHAPE_CHW if layout == "CHW" else FRAME_SHAPE_HWC


def read_in_layout(
    store: OffgenStore, start: int, stop: int, layout: Layout
) -> npt.NDArray[np.uint8]:
    """Store frames ``[start, stop)`` as one contiguous array in ``layout``."""
    return in_layout(store.read_frames(start, stop), "HWC", layout)


def iter_read_plan(
    starts: npt.NDArray[np.int64], counts: npt.NDArray[np.int64], read_frames: int
) -> Iterator[tuple[int, int, list[int]]]:
    """Group frame ranges into few large reads.

    Args:
        starts: First frame of each range.
        counts: Frames in each range.
        read_frames: Target frames per read (a range longer than this gets a read of its own).

    Yields:
        ``(read_start, read_stop, members)``: one read covering ranges ``members`` (indices into
        ``starts``), in increasing frame order. A gap of more than ``read_frames // 4`` unselected
        frames starts a new read, so sparse selections do not decode much they do not need.
    """
    order = np.argsort(starts, kind="stable")
    members: list[int] = []
    lo = hi = 0
    for i in order.tolist():
        a, b = int(starts[i]), int(starts[i] + counts[i])
        if members and (b - lo > read_frames or a - hi > read_frames // 4):
            yield lo, hi, members
            members = []
        if not members:
            lo = a
        members.append(i)
        hi = max(hi, b)
    if members:
        yield lo, hi, members


def decode_episodes(
    episodes: SelectedEpisodes,
    *,
    layout: Layout = "HWC",
    progress: bool = True,
) -> tuple[npt.NDArray[np.uint8], I64]:
    """Decode every frame of the selected episodes into one array, episodes back to back.

    Args:
        episodes: The selection, in the order wanted in the output.
        layout: Layout of the frames in the output.
        progress: Show a progress bar.

    Returns:
        ``(frames, ep_frame)``: a ``(sum(T + 1), 64, 64, 3)`` (or ``(.., 3, 64, 64)``) uint8 array
        and the row of each episode's first frame in it.
    """
    store, rows = episodes.store, episodes.rows
    counts = rows["length"].astype(np.int64) + 1
    ep_frame = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(counts[:-1], out=ep_frame[1:])
    out = np.empty((int(counts.sum()), *frame_shape(layout)), dtype=np.uint8)
    starts = rows["frame_offset"].astype(np.int64)
    read_frames = store.info.codec.shard_frames
    with progress_bar(
        total=len(out), unit="frame", desc="decoding frames", enabled=progress, leave=False
    ) as bar:
        for lo, hi, members in iter_read_plan(starts, counts, read_frames):
            block = store.read_frames(lo, hi)
            for i in members:
                a = int(starts[i]) - lo
                # One copy straight into place (compiled for CHW: offgen.data.layout).
                in_layout(
                    block[a : a + counts[i]],
                    "HWC",
                    layout,
                    out[ep_frame[i] : ep_frame[i] + counts[i]],
                )
            bar.update(int(counts[members].sum()))
    return out, ep_frame
