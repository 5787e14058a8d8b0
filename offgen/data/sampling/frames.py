"""Decoding frames out of a store: whole selected episodes into RAM, read in large slices.

zarr costs about 1 ms per call, so frames are read in slices of up to a shard (16384 frames) that
cover several consecutive selected episodes at once, never frame by frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm.auto import tqdm

from offgen.data.schema import FRAME_SHAPE_HWC
from offgen.data.store import OffgenStore

__all__ = ["FRAME_BYTES", "decode_episodes", "iter_read_plan"]

FRAME_BYTES = int(np.prod(FRAME_SHAPE_HWC))
"""Bytes of one decoded 64x64x3 uint8 frame."""


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
    store: OffgenStore,
    rows: npt.NDArray[Any],
    *,
    progress: bool = True,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Decode every frame of the episodes ``rows`` into one array, episodes back to back.

    Args:
        store: The store holding the episodes.
        rows: Episode table rows, in the order wanted in the output.
        progress: Show a progress bar.

    Returns:
        ``(frames, ep_frame)``: a ``(sum(T + 1), 64, 64, 3)`` uint8 array and the row of each
        episode's first frame in it.
    """
    counts = rows["length"].astype(np.int64) + 1
    ep_frame = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(counts[:-1], out=ep_frame[1:])
    out = np.empty((int(counts.sum()), *FRAME_SHAPE_HWC), dtype=np.uint8)
    starts = rows["frame_offset"].astype(np.int64)
    read_frames = int(store.info["codec"].get("shard_frames", 16384))
    with tqdm(
        total=len(out), unit="frame", desc="decoding frames", disable=not progress, leave=False
    ) as bar:
        for lo, hi, members in iter_read_plan(starts, counts, read_frames):
            block = store.read_frames(lo, hi)
            for i in members:
                a = int(starts[i]) - lo
                out[ep_frame[i] : ep_frame[i] + counts[i]] = block[a : a + counts[i]]
            bar.update(int(counts[members].sum()))
    return out, ep_frame
