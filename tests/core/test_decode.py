"""Decoding the predecessor's float frames: the compiled kernel, the numpy path and ``pread``.

Both decode paths must give the same frames and refuse the same values; ``.npy`` frames are read
from the file (not through the mapping) and a file that changes under the reader is an error.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import offgen.data.legacy as legacy
import offgen.data.legacy.frames as legacy_frames
from offgen.data.legacy.npy_walk import FileRegion, file_identity, mapped_region, read_pickled_npy
from offgen.errors import CorruptStoreError, SchemaError

PATHS = ["compiled", "numpy"]


@pytest.fixture(params=PATHS)
def decode_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "compiled":
        if not legacy.COMPILED_DECODE:
            pytest.skip("offgen._decode was not built (no C compiler)")
    else:
        monkeypatch.setattr(legacy_frames, "_compiled_decode", None)
    return str(request.param)


def _decode(frames: np.ndarray) -> np.ndarray:
    out = np.empty((len(frames), 64, 64, 3), dtype=np.uint8)
    legacy_frames.decode_into(frames, out, Path("episode.npy"))
    return out


def _expected(frames: np.ndarray) -> np.ndarray:
    return frames.transpose(0, 2, 3, 1).astype(np.uint8)


def test_compiled_kernel_is_built_where_a_compiler_exists() -> None:
    has_compiler = shutil.which("cc") or shutil.which("gcc")
    has_headers = Path(sysconfig.get_paths()["include"], "Python.h").exists()
    if not (has_compiler and has_headers):
        pytest.skip("no C compiler or Python headers: offgen uses its numpy decode")
    assert legacy.COMPILED_DECODE, "pip install -e . should have built offgen._decode"


def test_every_value_and_random_frames_decode_exactly(decode_path: str) -> None:
    every_value = np.tile(np.arange(256, dtype=np.float32), 48).reshape(1, 3, 64, 64)
    random = np.random.default_rng(0).integers(0, 256, (37, 3, 64, 64)).astype(np.float32)
    for frames in (every_value, random, random[5:6], random[:0]):
        np.testing.assert_array_equal(_decode(frames), _expected(frames))


def test_negative_zero_is_zero(decode_path: str) -> None:
    frames = np.full((2, 3, 64, 64), 255.0, dtype=np.float32)
    frames[0, 1, 2, 3] = -0.0
    decoded = _decode(frames)
    assert decoded[0, 2, 3, 1] == 0 and decoded[1].min() == 255


# Fractions, negatives, out of range, the kernel's 1.5 * 2^23 constant, NaN and infinities.
BAD_VALUES = [0.5, 255.5, 254.99998, 256.0, -1.0, -0.5, 1e-45, 1e10, -1e10, 2.0**23, 12582912.0]
BAD_VALUES += [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize("where", [(0, 0, 0, 0), (3, 2, 63, 63), (2, 1, 30, 40)])
def test_both_paths_refuse_the_same_values(
    decode_path: str, bad: float, where: tuple[int, int, int, int]
) -> None:
    frames = np.full((4, 3, 64, 64), 7.0, dtype=np.float32)
    frames[where] = bad
    with pytest.raises(SchemaError, match=r"episode\.npy.*whole numbers"):
        _decode(frames)


@pytest.mark.skipif(not legacy.COMPILED_DECODE, reason="offgen._decode was not built")
def test_kernel_refuses_mismatched_buffers() -> None:
    from offgen._decode import chw_float32_to_hwc_uint8

    src = np.zeros((2, 3, 64, 64), dtype=np.float32)
    dst = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    assert chw_float32_to_hwc_uint8(src, dst, 2, 4096) == -1
    with pytest.raises(ValueError, match="native float32"):
        chw_float32_to_hwc_uint8(src.astype(np.float64), dst, 2, 4096)
    with pytest.raises(ValueError, match="source must hold"):
        chw_float32_to_hwc_uint8(src, dst, 3, 4096)
    with pytest.raises(ValueError, match="destination must hold"):
        chw_float32_to_hwc_uint8(src, dst[:1], 2, 4096)
    with pytest.raises(ValueError, match="pixels"):
        chw_float32_to_hwc_uint8(src, dst, 2, 8192)
    with pytest.raises((BufferError, ValueError), match="contiguous"):
        chw_float32_to_hwc_uint8(src, dst[:, ::2], 2, 2048)  # not contiguous
    with pytest.raises(BufferError, match="not writable"):
        chw_float32_to_hwc_uint8(src, dst.tobytes(), 2, 4096)  # not writable
    frames = np.full((3, 3, 64, 64), 9.0, dtype=np.float32)
    frames[1, 0, 0, 0] = 0.5
    out = np.zeros((3, 64, 64, 3), dtype=np.uint8)
    assert chw_float32_to_hwc_uint8(frames, out, 3, 4096) == 1  # the first bad frame
    assert out[0].min() == 9  # frames before it are written


def _save_npy(path: Path, frames: np.ndarray) -> Path:
    steps = len(frames) - 1
    episode = {
        "observations": frames,
        "actions": np.zeros((steps, 1), dtype=np.int64),
        "rewards": np.zeros((steps, 1), dtype=np.float32),
        "dones": np.eye(1, steps, steps - 1, dtype=np.float32)[0],
    }
    np.save(path, np.array(episode, dtype=object), allow_pickle=True)
    return path


def _frames(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 3, 64, 64)).astype(np.float32)


def test_mapped_region_is_the_position_in_the_file(tmp_path: Path) -> None:
    path = _save_npy(tmp_path / "20230101T000000_0_40_3_0.00.npy", _frames(41))
    arrays = read_pickled_npy(path)
    assert arrays is not None
    raw = path.read_bytes()
    for array in arrays.values():
        region = mapped_region(array)
        assert region is not None
        assert region.identity == file_identity(path.stat())
        stored = np.frombuffer(raw, array.dtype, count=array.size, offset=region.offset)
        np.testing.assert_array_equal(stored.reshape(array.shape), array)
    assert mapped_region(np.zeros(3)) is None
    assert mapped_region(arrays["observations"][:, 1]) is None  # not contiguous


def test_npy_frames_are_read_from_the_file(tmp_path: Path, decode_path: str) -> None:
    frames = _frames(41)  # more than two 16-frame read blocks
    path = _save_npy(tmp_path / "20230101T000000_0_40_3_0.00.npy", frames)
    _episode, source = legacy.open_legacy_episode(path, "coinrun")
    assert source.region is not None
    np.testing.assert_array_equal(source.decode(), _expected(frames))
    part = np.empty((20, 64, 64, 3), dtype=np.uint8)
    source.fill(7, part)  # a slice that starts and ends inside read blocks
    np.testing.assert_array_equal(part, _expected(frames[7:27]))


def test_npy_replaced_after_opening_is_an_error(tmp_path: Path) -> None:
    path = _save_npy(tmp_path / "20230101T000000_0_40_3_0.00.npy", _frames(41))
    _episode, source = legacy.open_legacy_episode(path, "coinrun")
    other = _save_npy(tmp_path / "other.npy", _frames(41, seed=1))
    os.replace(other, path)  # e.g. archive re-extracted while the conversion runs
    with pytest.raises(CorruptStoreError, match=r"changed while it was being converted"):
        source.decode()


def test_npy_shrunk_after_opening_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = _save_npy(tmp_path / "20230101T000000_0_40_3_0.00.npy", _frames(41))
    _episode, source = legacy.open_legacy_episode(path, "coinrun")
    os.truncate(path, path.stat().st_size // 2)  # through the mapping this would be SIGBUS
    with pytest.raises(CorruptStoreError, match=r"changed while it was being converted"):
        source.decode()
    # A region that runs past the end of an unchanged file (a lying header): a short read.
    region = FileRegion(path.stat().st_size - 100, file_identity(path.stat()))
    short = legacy.LegacyFrames(source.stored, path, region)
    with pytest.raises(CorruptStoreError, match=r"frames end before the header says"):
        short.decode()
