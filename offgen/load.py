"""``offgen.load``: open a dataset by name (registered, your own, a hub repository) or path / URL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from offgen.errors import OffgenError, UnknownNameError
from offgen.registry import GAMES, resolve_game, resolve_target

if TYPE_CHECKING:
    from offgen.data.dataset import OffgenDataset

__all__ = ["load", "resolve_location"]


def resolve_location(
    name_or_path: str | os.PathLike[str], game: str | None = None, *, revision: str | None = None
) -> str:
    """Where ``name_or_path`` lives: a URL or path as given, or the store of a dataset name.

    Names and paths are told apart by :func:`offgen.registry.resolve_target`; where a named
    dataset comes from (this machine, a hub, the published archives) is decided by
    :func:`offgen.hub.sources.locate`, which fetches what is missing unless offline.

    Raises:
        UnknownNameError: If a bare name is neither a dataset nor an existing path, or ``game`` is
            unknown or missing for a name.
        DatasetNotFoundError: If no source has the named dataset for ``game``.
        OffgenError: If ``revision`` is given for something other than an ``hf://`` name.
    """
    target = resolve_target(name_or_path)
    if revision is not None and target.kind != "hub":
        raise OffgenError(
            f"revision={revision!r} applies to hub names (hf://ORG/REPO); {target.text!r} is a "
            f"{target.kind} {'path' if target.kind == 'path' else 'dataset'} (for a registered "
            "dataset's hub source, set OFFGEN_HUB_REVISION)."
        )
    if target.kind == "path":
        return target.text
    if game is None:
        have = f" It has: {', '.join(target.local.games)}." if target.local else ""
        raise UnknownNameError(
            f"dataset {target.name or target.text!r} needs a game (CLI: --game coinrun; Python: "
            f"offgen.load({target.text!r}, game='coinrun')). Games: {', '.join(GAMES)}.{have}"
        )
    from offgen.hub.sources import locate

    return str(locate(target, resolve_game(game), revision=revision))


def load(
    name_or_path: str | os.PathLike[str],
    game: str | None = None,
    *,
    allow_incomplete: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    revision: str | None = None,
) -> OffgenDataset:
    """Open an offline dataset.

    Args:
        name_or_path: A registered dataset name or alias (``"expert_1M"``, ``"1M_E"``), the name
            of a dataset of your own under ``$OFFGEN_HOME/datasets/<name>/<game>``
            (``"my_random"``, ``"my-lab/coinrun-random"``; see ``offgen list``), a hub repository
            (``"hf://ORG/REPO"``, or ``"hf://ORG/REPO/<dataset>"`` when it holds several), a store
            directory, or a URL fsspec understands (``s3://...``, ``https://...``).
        game: The game, required with a dataset name; with a path it is checked against the store.
        allow_incomplete: Open a store still being written and expose its committed episodes.
        storage_options: fsspec options for URLs (credentials, endpoints).
        revision: For ``hf://`` names: the branch, tag or commit to fetch. The commit it resolves
            to is pinned (``$OFFGEN_HOME/hub/ORG/REPO/offgen.lock.json``), and later loads
            without ``revision`` read that commit, from the hub cache.

    Returns:
        The dataset (all episodes selected).

    Raises:
        UnknownNameError: Unknown dataset or game name (the message suggests the closest).
        DatasetNotFoundError: A registered dataset is not present locally (the message says how to
            get it), or no store exists at the path.

    Example:
        >>> import offgen
        >>> ds = offgen.load("expert_1M", game="coinrun")  # doctest: +SKIP
        >>> ds = offgen.load("my-lab/coinrun-random", game="coinrun")  # doctest: +SKIP
        >>> ds = offgen.load("hf://my-lab/offgen-procgen", game="coinrun", revision="v1.0")  # doctest: +SKIP
        >>> ds = offgen.load("/data/stores/coinrun")  # doctest: +SKIP
    """
    from offgen.data.dataset import OffgenDataset

    location = resolve_location(name_or_path, game, revision=revision)
    dataset = OffgenDataset.open(
        location, allow_incomplete=allow_incomplete, storage_options=storage_options
    )
    if game is not None and resolve_game(game).name != dataset.game:
        raise UnknownNameError(
            f"{location}: the store holds game {dataset.game!r}, not {game!r}; drop game= or pass "
            f"game={dataset.game!r}."
        )
    return dataset
