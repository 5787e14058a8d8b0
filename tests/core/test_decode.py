"""Decoding the predecessor's float frames: the compiled kernel, the numpy path and ``pread``.

Both decode paths must give the same frames and refuse the same values; ``.npy`` frames are read
from the file (not through the mapping) and a file that changes under the reader is an error.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import offgen.data.legacy as legacy
import offgen.data.legacy.frames as legacy_frames
from offgen.data.legacy.npy_walk import FileRegion, file_identity, mapped_region, read_pickled_npy
from offgen.data.schema import make_episode
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


# Fractions, negatives, out of range, the kernel's 1.5 * 2^23 constant, NaN and infinities, as bit
# patterns: the smallest and largest denormals are written as bits because converting 1e-45 to
# float32 gives 0 in a process with flush-to-zero set (as CI's was, by some library it loaded).
BAD_FLOATS = [0.5, 255.5, 254.99998, 256.0, -1.0, -0.5, 1e10, -1e10, 2.0**23, 12582912.0]
BAD_FLOATS += [np.nan, np.inf, -np.inf]
BAD_BITS = [int(b) for b in np.array(BAD_FLOATS, dtype=np.float32).view(np.uint32)]
BAD_BITS += [0x00000001, 0x007FFFFF, 0x80000001]  # denormals: 1e-45, 1.2e-38, -1e-45


@pytest.mark.parametrize("bad", BAD_BITS, ids=hex)
@pytest.mark.parametrize("where", [(0, 0, 0, 0), (3, 2, 63, 63), (2, 1, 30, 40)])
def test_both_paths_refuse_the_same_values(
    decode_path: str, bad: int, where: tuple[int, int, int, int]
) -> None:
    frames = np.full((4, 3, 64, 64), 7.0, dtype=np.float32)
    frames.view(np.uint32)[where] = bad
    with pytest.raises(SchemaError, match=r"episode\.npy.*whole numbers"):
        _decode(frames)


_MXCSR_C = r"""
#include <xmmintrin.h>
unsigned get_csr(void) { return _mm_getcsr(); }
void set_csr(unsigned value) { _mm_setcsr(value); }
"""
_DAZ_FTZ = 0x8040  # MXCSR "denormals are zero" | "flush to zero", what -ffast-math sets at load


@pytest.fixture
def denormals_are_zero(tmp_path: Path) -> Iterator[None]:
    """This thread's SSE unit in the state a library linked with -ffast-math leaves it in."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if platform.machine() not in ("x86_64", "AMD64") or compiler is None:
        pytest.skip("needs x86-64 and a C compiler to set MXCSR")
    source = tmp_path / "mxcsr.c"
    source.write_text(_MXCSR_C)
    library = tmp_path / "mxcsr.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", str(source), "-o", str(library)], check=True
    )
    mxcsr = ctypes.CDLL(str(library))
    mxcsr.get_csr.restype = ctypes.c_uint
    mxcsr.set_csr.argtypes = [ctypes.c_uint]
    saved = mxcsr.get_csr()
    mxcsr.set_csr(saved | _DAZ_FTZ)
    try:
        # The state is real: float comparisons now see the denormal as zero.
        assert bool(np.array([1e-45], dtype=np.float32)[0] == 0)
        yield
    finally:
        mxcsr.set_csr(saved)


@pytest.mark.usefixtures("denormals_are_zero")
def test_denormals_are_refused_when_the_process_treats_them_as_zero(decode_path: str) -> None:
    frames = np.full((4, 3, 64, 64), 7.0, dtype=np.float32)
    frames.view(np.uint32)[2, 1, 30, 40] = 1  # 1e-45, set as bits (a float 1e-45 would flush to 0)
    with pytest.raises(SchemaError, match=r"episode\.npy.*whole numbers"):
        _decode(frames)
    frames[2, 1, 30, 40] = -0.0  # still a zero
    assert _decode(frames)[2, 30, 40, 1] == 0
    hwc = np.full((2, 64, 64, 3), 3.0, dtype=np.float64)
    hwc.view(np.uint64)[1, 5, 5, 2] = 1  # 5e-324
    with pytest.raises(SchemaError, match="whole numbers"):
        _decode(hwc)


@pytest.mark.usefixtures("denormals_are_zero")
def test_episode_arrays_refuse_denormals_when_the_process_treats_them_as_zero() -> None:
    observations = np.zeros((3, 64, 64, 3), dtype=np.float32)
    actions = np.zeros(2, dtype=np.float32)
    rewards = np.zeros(2, dtype=np.float32)
    make_episode(observations, actions, rewards, game="coinrun")  # whole numbers pass
    observations.view(np.uint32)[1, 2, 3, 0] = 1  # 1e-45
    with pytest.raises(SchemaError, match="float observations must hold whole numbers"):
        make_episode(observations, actions, rewards, game="coinrun")
    observations[1, 2, 3, 0] = 0.0
    actions.view(np.uint32)[1] = 1
    with pytest.raises(SchemaError, match="actions must be whole numbers"):
        make_episode(observations, actions, rewards, game="coinrun")


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
