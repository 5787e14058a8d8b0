"""The one place offgen's optional compiled kernels (``offgen/_decode.c``) are looked up.

The extension is optional: where no C compiler built it, every caller has a numpy path that gives
the same bytes, only slower (``setup.py``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["compiled_kernel"]


def compiled_kernel(name: str) -> Any | None:
    """The function ``name`` of ``offgen._decode``, or ``None`` if the extension was not built."""
    try:
        from offgen import _decode
    except ImportError:  # pragma: no cover - built without a C compiler (numpy paths)
        return None
    return getattr(_decode, name, None)
