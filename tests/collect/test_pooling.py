"""The compiled inference max pool equals torch's, bit for bit, and stays out of training."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from offgen._compiled import compiled_kernel  # noqa: E402
from offgen.policies import build_impala  # noqa: E402
from offgen.policies.pooling import max_pool_3x3_s2  # noqa: E402

needs_kernel = pytest.mark.skipif(
    compiled_kernel("max_pool_3x3_s2") is None, reason="offgen._decode was not built"
)


def _frames(shape: tuple[int, ...], dtype: object, seed: int = 0) -> object:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    x[0, -1, 1, 1] = float("nan")  # NaN propagates as in torch
    x[-1, -1, -1, -1] = float("inf")
    x[-1, 0, 0, 0] = -float("inf")
    return x


@needs_kernel
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize(
    "shape", [(64, 16, 64, 64), (3, 32, 16, 16), (2, 5, 7, 9), (1, 1, 2, 2), (5, 3, 3, 2)]
)
def test_equals_torch_bit_for_bit(dtype: str, shape: tuple[int, ...]) -> None:
    x = _frames(shape, getattr(torch, dtype))
    with torch.inference_mode():
        ours = max_pool_3x3_s2(x)
        ref = torch.nn.functional.max_pool2d(x, 3, 2, 1)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    assert ours.is_contiguous(memory_format=torch.channels_last)
    bits = torch.int32 if dtype == "float32" else torch.int16
    nan = ref.isnan()
    assert torch.equal(ours.isnan(), nan)
    assert torch.equal(ours[~nan].view(bits), ref[~nan].view(bits))


def test_training_and_other_layouts_use_torch() -> None:
    """A gradient flows through the pool in training; NCHW input is pooled (by torch) too."""
    x = torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_()
    max_pool_3x3_s2(x).sum().backward()
    assert x.grad is not None and x.grad.sum() == 2 * 4 * 4 * 4
    nchw = torch.randn(2, 4, 8, 8)
    assert torch.equal(max_pool_3x3_s2(nchw), torch.nn.functional.max_pool2d(nchw, 3, 2, 1))


@needs_kernel
def test_network_gives_the_same_outputs_with_the_compiled_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import offgen.policies.pooling as pooling

    torch.manual_seed(0)
    model = build_impala().eval()
    frames = torch.randint(0, 256, (6, 64, 64, 3), dtype=torch.uint8).permute(0, 3, 1, 2)
    for bf16 in (False, True):
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            compiled = model(frames)
            monkeypatch.setattr(pooling, "_kernel", None)
            reference = model(frames)
            monkeypatch.undo()
        assert all(torch.equal(a, b) for a, b in zip(compiled, reference, strict=True))
