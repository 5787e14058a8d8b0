"""``offgen.data.layout.in_layout``: the compiled HWC -> CHW copy and numpy's give the same bytes,
and the kernel refuses buffers it cannot fill."""

from __future__ import annotations

import numpy as np
import pytest

import offgen.data.layout as layout


@pytest.fixture(params=["compiled", "numpy"])
def copy_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "compiled":
        if not layout.COMPILED_TRANSPOSE:
            pytest.skip("offgen._decode was not built (no C compiler)")
    else:
        monkeypatch.setattr(layout, "_hwc_to_chw", None)
    return str(request.param)


def _frames(count: int) -> np.ndarray:
    return np.random.default_rng(count).integers(0, 256, (count, 64, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("count", [0, 1, 7, 130])
def test_chw_copy_is_the_transpose(copy_path: str, count: int) -> None:
    frames = _frames(count)
    chw = layout.in_layout(frames, "HWC", "CHW")
    assert chw.shape == (count, 3, 64, 64) and chw.flags.c_contiguous
    np.testing.assert_array_equal(chw, frames.transpose(0, 3, 1, 2))
    back = layout.in_layout(chw, "CHW", "HWC")
    assert back.flags.c_contiguous
    np.testing.assert_array_equal(back, frames)


def test_copy_into_a_slice_of_a_larger_array(copy_path: str) -> None:
    frames = _frames(5)
    out = np.zeros((9, 3, 64, 64), dtype=np.uint8)
    assert layout.in_layout(frames, "HWC", "CHW", out[2:7]) is not None
    np.testing.assert_array_equal(out[2:7], frames.transpose(0, 3, 1, 2))
    assert not out[:2].any() and not out[7:].any()  # nothing written outside the slice


def test_same_layout_is_not_copied_unless_asked(copy_path: str) -> None:
    frames = _frames(3)
    assert layout.in_layout(frames, "HWC", "HWC") is frames
    strided = frames[::2]
    same = layout.in_layout(strided, "HWC", "HWC")
    assert same.flags.c_contiguous and np.array_equal(same, strided)
    out = np.empty_like(frames)
    assert layout.in_layout(frames, "HWC", "HWC", out) is out and np.array_equal(out, frames)


def test_strided_input_takes_the_numpy_path_with_the_same_result(copy_path: str) -> None:
    frames = _frames(6)[::2]  # not C-contiguous: the kernel is not given it
    np.testing.assert_array_equal(
        layout.in_layout(frames, "HWC", "CHW"), frames.transpose(0, 3, 1, 2)
    )


@pytest.mark.skipif(not layout.COMPILED_TRANSPOSE, reason="offgen._decode was not built")
def test_kernel_refuses_mismatched_or_overlapping_buffers() -> None:
    from offgen._decode import hwc_to_chw_uint8

    src = _frames(2)
    dst = np.zeros((2, 3, 64, 64), dtype=np.uint8)
    assert hwc_to_chw_uint8(src, dst, 2, 4096) is None
    with pytest.raises(ValueError, match="frames x pixels x 3"):
        hwc_to_chw_uint8(src, dst[:1], 2, 4096)
    with pytest.raises(ValueError, match="frames x pixels x 3"):
        hwc_to_chw_uint8(src, dst, 3, 4096)
    with pytest.raises(ValueError, match=">= 1"):
        hwc_to_chw_uint8(src, dst, 2, 0)
    with pytest.raises(ValueError, match="overlap"):
        hwc_to_chw_uint8(src, src, 2, 4096)
    with pytest.raises(BufferError, match="not writable"):
        hwc_to_chw_uint8(src, dst.tobytes(), 2, 4096)
