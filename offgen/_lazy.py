"""Names a package offers without importing their modules until first use.

``import offgen`` must stay light (no numpy, zarr or huggingface_hub), yet ``offgen.mix`` or
``offgen.hub.push_store`` should work as attributes. A package lists where each such name lives and
installs the two module hooks this builds (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, homes: Mapping[str, str], public: Sequence[str], namespace: Mapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, importing ``homes[name]`` on first use.

    Args:
        package: The package's name, for the error message.
        homes: Attribute name -> module that defines it.
        public: The package's ``__all__``.
        namespace: The package's ``globals()``, for ``dir()``.
    """

    def __getattr__(name: str) -> Any:
        module = homes.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__
