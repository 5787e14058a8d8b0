"""``offgen.load``: open a dataset by registered name (local store) or by path / URL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offgen.errors import UnknownNameError
from offgen.registry import GAMES, DatasetSpec, GameSpec, resolve_game, resolve_target

if TYPE_CHECKING:
    from offgen.data.dataset import OffgenDataset

__all__ = ["load", "resolve_location"]


def _locate(spec: DatasetSpec, game: GameSpec) -> Path:
    """The store directory of ``spec`` for ``game``, fetched if no preferred source has it.

    This is the single place that decides where a registered dataset comes from:
    :func:`offgen.hub.sources.locate_dataset` tries the local store, the hub repository and the
    published archives in the order of ``OFFGEN_SOURCES``, saying what it fetches and how big, and
    downloads nothing in offline mode (``OFFGEN_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``).

    Raises:
        DatasetNotFoundError: No source provided it; the message says how to get it.
    """
    from offgen.hub.sources import locate_dataset

    return locate_dataset(spec, game)


def resolve_location(name_or_path: str | os.PathLike[str], game: str | None = None) -> str:
    """Where ``name_or_path`` lives: a URL or path as given, or a registered name's local store.

    Names and paths are told apart by :func:`offgen.registry.resolve_target`.

    Raises:
        UnknownNameError: If a bare name is neither a dataset nor an existing path, or ``game`` is
            unknown or missing for a name.
        DatasetNotFoundError: If a registered dataset is not present locally.
    """
    target = resolve_target(name_or_path)
    if target.spec is None:
        return target.text
    if game is None:
        raise UnknownNameError(
            f"dataset {target.spec.name!r} needs a game (CLI: --game coinrun; Python: "
            f"offgen.load({target.text!r}, game='coinrun')). Games: {', '.join(GAMES)}."
        )
    return str(_locate(target.spec, resolve_game(game)))


def load(
    name_or_path: str | os.PathLike[str],
    game: str | None = None,
    *,
    allow_incomplete: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> OffgenDataset:
    """Open an offline dataset.

    Args:
        name_or_path: A registered dataset name or alias (``"expert_1M"``, ``"1M_E"``, see
            ``offgen list``), a store directory, or a URL fsspec understands (``s3://...``,
            ``https://...``).
        game: The game, required with a dataset name; with a path it is checked against the store.
        allow_incomplete: Open a store still being written and expose its committed episodes.
        storage_options: fsspec options for URLs (credentials, endpoints).

    Returns:
        The dataset (all episodes selected).

    Raises:
        UnknownNameError: Unknown dataset or game name (the message suggests the closest).
        DatasetNotFoundError: A registered dataset is not present locally (the message says how to
            get it), or no store exists at the path.

    Example:
        >>> import offgen
        >>> ds = offgen.load("expert_1M", game="coinrun")  # doctest: +SKIP
        >>> ds = offgen.load("/data/stores/coinrun")  # doctest: +SKIP
    """
    from offgen.data.dataset import OffgenDataset

    location = resolve_location(name_or_path, game)
    dataset = OffgenDataset.open(
        location, allow_incomplete=allow_incomplete, storage_options=storage_options
    )
    if game is not None and resolve_game(game).name != dataset.game:
        raise UnknownNameError(
            f"{location}: the store holds game {dataset.game!r}, not {game!r}; drop game= or pass "
            f"game={dataset.game!r}."
        )
    return dataset
