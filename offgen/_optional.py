"""Lazy imports of optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from offgen.errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an error saying which offgen extra provides it.

    Args:
        module: Importable module name, e.g. ``"torch"``.
        extra: The ``offgen[...]`` extra that installs it, e.g. ``"torch"``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: If the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this feature needs the optional dependency '{module}', which is not installed "
            f"({exc}). Install it with: pip install 'offgen[{extra}]'"
        ) from exc
