"""Lazy imports of optional dependencies with an error that names the extra to install.

``offgen_tools`` never imports ``offgen``, so this mirrors ``offgen._optional`` rather than
reusing it. The extras are offgen's (``pip install 'offgen[wandb]'``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from offgen_tools.errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an error saying which offgen extra provides it.

    Args:
        module: Importable module name, e.g. ``"yaml"`` or ``"matplotlib.pyplot"``.
        extra: The ``offgen[...]`` extra that installs it: ``wandb`` (wandb, pyyaml,
            protobuf), ``plots`` (matplotlib) or ``slurm`` (submitit).

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: If the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this feature needs the optional dependency '{module.partition('.')[0]}', which is "
            f"not installed ({exc}). Install it with: pip install 'offgen[{extra}]'"
        ) from exc
