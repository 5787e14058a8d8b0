"""The IMPALA network's max pool (3 x 3, stride 2, padding 1), compiled for inference.

In inference torch's CPU max pool still computes and writes an int64 index per output, which no
one reads: it was 30% of a batch-64 bfloat16 IMPALA forward on this project's CPU (2.8 of 9.5 ms).
``offgen._decode.max_pool_3x3_s2`` pools channels-last frames without indices, in one thread; the
whole batch-64 bfloat16 forward then ran 1.05x faster with two torch threads (6,582 against 6,266
frames/s, medians of 8 alternating rounds) and 1.28x with one (pooling in two threads of its own
made it slower: they compete with torch's).
Results are bit-identical to torch's (a max is exact; NaN propagates as in torch; tested).

Used only where nothing needs a gradient through the pool and the tensor is one the kernel reads
directly: a CPU float32 or bfloat16 tensor in channels-last layout (the layout
:class:`~offgen.policies.TorchPolicy` gives the network, since it moves HWC frames to CHW by a
view). Everything else, training included, goes to ``torch.nn.functional.max_pool2d``.
"""

from __future__ import annotations

from typing import Any

from offgen._compiled import compiled_kernel
from offgen._optional import require

__all__ = ["max_pool_3x3_s2"]

_kernel = compiled_kernel("max_pool_3x3_s2")


def max_pool_3x3_s2(x: Any) -> Any:
    """``max_pool2d(x, kernel_size=3, stride=2, padding=1)``, compiled where it can be.

    Args:
        x: A ``(N, C, H, W)`` tensor.

    Returns:
        The pooled ``(N, C, (H + 1) // 2, (W + 1) // 2)`` tensor (channels-last when compiled).
    """
    torch = require("torch", "torch")
    if _kernel is None or not _direct(torch, x):
        return torch.nn.functional.max_pool2d(x, 3, 2, 1)
    n, c, h, w = x.shape
    out = torch.empty(
        (n, c, (h + 1) // 2, (w + 1) // 2), dtype=x.dtype, memory_format=torch.channels_last
    )
    src, dst = x.permute(0, 2, 3, 1), out.permute(0, 2, 3, 1)  # NHWC views, both contiguous
    bf16 = x.dtype == torch.bfloat16
    if bf16:
        src, dst = src.view(torch.int16), dst.view(torch.int16)
    _kernel(src.numpy(), dst.numpy(), n, h, w, c, bf16)
    return out


def _direct(torch: Any, x: Any) -> bool:
    """Whether the kernel can pool ``x``: no gradient, CPU, fp32/bf16, channels-last, H, W >= 2."""
    if x.requires_grad or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    return bool(
        x.device.type == "cpu"
        and x.dim() == 4
        and x.dtype in (torch.float32, torch.bfloat16)
        and x.shape[2] >= 2
        and x.shape[3] >= 2
        and x.is_contiguous(memory_format=torch.channels_last)
    )
