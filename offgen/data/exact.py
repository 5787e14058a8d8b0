"""Cast numbers to a narrower integer type only when every value survives exactly.

Frames and actions arrive as floats in the predecessor's files and in user arrays. A value is
accepted only if it is a whole number that fits the target type; NaN, infinities, fractions and
out-of-range values are refused, and ``-0.0`` counts as ``0``.

Why bits and not float comparisons: a process whose floating-point unit has "denormals are zero"
set (any shared library linked with ``-ffast-math`` sets it when it is loaded, and which libraries
a user imports is not ours to choose) compares a denormal such as ``1e-45`` equal to ``0`` and sees
``1e-45 % 1`` as zero. Casting back and comparing the bit patterns gives the same answer in every
process. The compiled frame kernel (``offgen/_decode.c``) makes the same comparison on bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["cast_exactly"]


def _bits_dtype(dtype: np.dtype[Any]) -> np.dtype[Any] | None:
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        return None  # x87 long double: outside the SSE unit, unaffected by denormals-are-zero
    return np.dtype(f"u{dtype.itemsize}").newbyteorder(dtype.byteorder)


def cast_exactly(values: npt.NDArray[Any], out: npt.NDArray[Any]) -> bool:
    """Cast ``values`` into the integer array ``out`` (same shape); return whether it was exact.

    ``out`` is written either way; when this returns ``False`` its contents are meaningless.

    Args:
        values: Numbers of any numeric dtype and byte order, any strides.
        out: The integer (or bool) destination, e.g. ``np.empty(values.shape, np.uint8)``.

    Returns:
        ``True`` if every value is a whole number representable in ``out.dtype`` (``-0.0`` is ``0``).
    """
    with np.errstate(invalid="ignore", over="ignore"):  # out-of-range values fail the check below
        np.copyto(out, values, casting="unsafe")
    bits = _bits_dtype(values.dtype)
    if bits is None:
        return bool(np.array_equal(out, values))
    # `out` is always an exact integer, so its float image is exact too: equal bits means the value
    # was that integer. The only other whole number with different bits is -0.0.
    value_bits = values.view(bits)
    same = out.astype(values.dtype).view(bits) == value_bits
    if same.all():
        return True
    negative_zero = 1 << (8 * values.dtype.itemsize - 1)
    return bool((value_bits[~same] == negative_zero).all())
