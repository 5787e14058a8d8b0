"""Batch arrays are reused only once nobody holds them: a held batch, a view of it or a tensor made
from it is never overwritten by a later batch."""

from __future__ import annotations

import gc
import mmap
from pathlib import Path

import numpy as np
import pytest

from offgen._compiled import compiled_kernel
from offgen.data.sampling.recycle import FrameTaker, _file_mapped


def _frames() -> np.ndarray:
    return np.arange(20 * 4 * 4 * 3, dtype=np.uint8).reshape(20, 4, 4, 3)


def test_an_array_is_reused_after_its_batch_is_dropped() -> None:
    take, frames = FrameTaker(), _frames()
    first = take(frames, np.array([[1, 2], [3, 4]]))
    address = first.ctypes.data
    np.testing.assert_array_equal(first, frames[[[1, 2], [3, 4]]])
    del first
    gc.collect()
    second = take(frames, np.array([[5, 6], [7, 8]]))
    assert second.ctypes.data == address  # recycled
    np.testing.assert_array_equal(second, frames[[[5, 6], [7, 8]]])


@pytest.mark.parametrize("holder", ["batch", "view", "tensor"])
def test_a_held_batch_is_never_overwritten(holder: str) -> None:
    take, frames = FrameTaker(), _frames()
    batch = take(frames, np.array([0, 1, 2]))
    if holder == "view":
        held = batch[1:]
        del batch
    elif holder == "tensor":
        torch = pytest.importorskip("torch")
        held = torch.from_numpy(batch)
        del batch
    else:
        held = batch
    before = np.array(held).copy()
    for start in range(3, 15):  # later batches of the same shape
        later = take(frames, np.array([start, start + 1, start + 2]))
        np.testing.assert_array_equal(later, frames[start : start + 3])
    np.testing.assert_array_equal(np.array(held), before)


def test_arrays_beyond_keep_are_fresh_and_shapes_change() -> None:
    take, frames = FrameTaker(keep=2), _frames()
    held = [take(frames, np.array([i])) for i in range(5)]  # all held: 3 are not kept
    assert len({a.ctypes.data for a in held}) == 5
    for i, a in enumerate(held):
        np.testing.assert_array_equal(a, frames[[i]])
    other = take(frames, np.array([1, 2, 3]))  # another shape
    np.testing.assert_array_equal(other, frames[[1, 2, 3]])


def test_out_of_range_indices_are_refused() -> None:
    take, frames = FrameTaker(), _frames()
    with pytest.raises(IndexError, match=r"outside \[0, 20\)"):
        take(frames, np.array([0, 20]))
    with pytest.raises(IndexError):
        take(frames, np.array([-1]))
    assert take(frames, np.zeros((0, 3), dtype=np.int64)).shape == (0, 3, 4, 4, 3)


def test_a_pickled_taker_starts_empty() -> None:
    import pickle

    take, frames = FrameTaker(keep=3), _frames()
    kept = take(frames, np.array([1]))
    copy = pickle.loads(pickle.dumps(take))  # DataLoader workers get the sampler this way
    np.testing.assert_array_equal(copy(frames, np.array([2])), frames[[2]])
    assert kept[0, 0, 0, 0] == frames[1, 0, 0, 0]


@pytest.mark.skipif(compiled_kernel("will_need_rows") is None, reason="offgen._decode not built")
def test_read_ahead_advice_merges_runs_and_skips_rows_outside() -> None:
    advise = compiled_kernel("will_need_rows")
    frames = np.zeros((100, 12288), dtype=np.uint8)
    rows = np.array([1, 2, 3, 7, 50, 51, 200, -1], dtype=np.int64)
    assert advise(frames, rows, 12288) == 3  # 1-3, 7, 50-51; 200 and -1 are not in the array
    assert advise(frames, np.array([[4, 5], [6, 9]], dtype=np.int64), 12288) == 2
    with pytest.raises(ValueError, match="int64"):
        advise(frames, rows.astype(np.int32), 12288)


def test_file_mappings_are_advised_and_gather_the_same_rows(tmp_path: Path) -> None:
    """The memmap and MAP_POPULATE views of the frame cache are advised, in-memory arrays not;
    the gather's result does not depend on it."""
    data = np.arange(20 * 48, dtype=np.uint8).reshape(20, 4, 4, 3)
    path = tmp_path / "frames.npy"
    np.save(path, data)
    memmap = np.load(path, mmap_mode="r")
    with open(path, "rb") as handle:
        mapping = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
    populated = np.frombuffer(mapping, np.uint8, count=data.size, offset=memmap.offset)
    populated = populated.reshape(data.shape)
    assert _file_mapped(memmap) and _file_mapped(populated) and not _file_mapped(data)
    index = np.array([[3, 4, 5], [19, 0, 7]], dtype=np.int64)
    for frames in (memmap, populated, data):
        np.testing.assert_array_equal(FrameTaker()(frames, index), data[index])
