"""Where offgen keeps data on this machine.

Everything lives under :func:`offgen_home`: ``$OFFGEN_HOME`` if set, else ``~/.cache/offgen``::

    <home>/datasets/<dataset>/<game>/   one offgen store per (dataset, game)
    <home>/datasets/<ns>/<dataset>/<game>/  the same, for a namespaced name (my-lab/coinrun-random)
    <home>/hub/<org>/<repo>/            commits pinned by ``hf://ORG/REPO`` loads
    <home>/cache/                       rebuildable caches (decoded memmaps, partial downloads)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "dataset_dir", "datasets_root", "hub_dir", "offgen_home"]


def offgen_home() -> Path:
    """The offgen data directory: ``$OFFGEN_HOME`` or ``~/.cache/offgen`` (not created)."""
    env = os.environ.get("OFFGEN_HOME")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/offgen").expanduser()


def datasets_root() -> Path:
    """``<home>/datasets``: the parent of every local store (registered datasets and your own)."""
    return offgen_home() / "datasets"


def dataset_dir(dataset: str, game: str) -> Path:
    """Store directory of ``dataset`` for ``game``: ``<home>/datasets/<dataset>/<game>``.

    Args:
        dataset: Canonical dataset name (resolve aliases with
            :func:`offgen.registry.resolve_dataset` first).
        game: Game name.
    """
    return datasets_root() / dataset / game


def hub_dir(repo: str) -> Path:
    """``<home>/hub/<org>/<repo>``: where ``hf://ORG/REPO`` loads pin their commits."""
    return offgen_home() / "hub" / repo


def cache_dir(*parts: str) -> Path:
    """``<home>/cache[/parts...]``: rebuildable data such as decoded memmaps (not created)."""
    return offgen_home().joinpath("cache", *parts)
