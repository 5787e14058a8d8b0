"""Where offgen keeps data on this machine.

Everything lives under :func:`offgen_home`: ``$OFFGEN_HOME`` if set, else ``~/.cache/offgen``::

    <home>/datasets/<dataset>/<game>/   one offgen store per (dataset, game)
    <home>/cache/                       rebuildable caches (decoded memmaps, partial downloads)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "dataset_dir", "datasets_root", "offgen_home"]


def offgen_home() -> Path:
    """The offgen data directory: ``$OFFGEN_HOME`` or ``~/.cache/offgen`` (not created)."""
    env = os.environ.get("OFFGEN_HOME")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/offgen").expanduser()


def datasets_root() -> Path:
    """``<home>/datasets``: the parent of every local store of a registered dataset."""
    return offgen_home() / "datasets"


def dataset_dir(dataset: str, game: str) -> Path:
    """Store directory of ``dataset`` for ``game``: ``<home>/datasets/<dataset>/<game>``.

    Args:
        dataset: Canonical dataset name (resolve aliases with
            :func:`offgen.registry.resolve_dataset` first).
        game: Game name.
    """
    return datasets_root() / dataset / game


def cache_dir(*parts: str) -> Path:
    """``<home>/cache[/parts...]``: rebuildable data such as decoded memmaps (not created)."""
    return offgen_home().joinpath("cache", *parts)
