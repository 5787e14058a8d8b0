"""Where ``offgen.load`` gets a named dataset: this machine, a hub repository, the archives.

A dataset of your own (``$OFFGEN_HOME/datasets/<name>/<game>``) is read where it is; an
``hf://ORG/REPO`` name is pulled from that repository (:func:`locate_hub`). A registered dataset
comes from the first source that has it:

the sources, in the order of preference given by ``OFFGEN_SOURCES`` (default ``local,hub,archives``);
the first that has the dataset wins, and a source left out of the list is never used:

* ``local``: the store under ``$OFFGEN_HOME/datasets/<dataset>/<game>``;
* ``hub``: the offgen store in the hub repository ``OFFGEN_HUB_REPO`` (``ORG/NAME``) at
  ``OFFGEN_HUB_REVISION`` (default: the commit pinned in the lockfile, else ``main``), fetched with
  ``snapshot_download`` into the hub cache and opened there;
* ``archives``: the predecessor's published archives (or ``OFFGEN_BASE_URL``), downloaded,
  verified and converted like ``offgen-download`` does.

With ``OFFGEN_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` nothing is downloaded: a store already in the hub
cache is still used, anything else is a :class:`~offgen.errors.DatasetNotFoundError`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from offgen.errors import DatasetNotFoundError, OffgenError, UnknownNameError
from offgen.hub.hf import is_offline, list_datasets_in_repo, pull_store
from offgen.hub.lockfile import Lockfile
from offgen.paths import dataset_dir, datasets_root, hub_dir
from offgen.registry import DatasetSpec, GameSpec, LocalDataset, Target, resolve_dataset

__all__ = ["DEFAULT_SOURCES", "locate", "locate_dataset", "locate_hub", "source_order"]

DEFAULT_SOURCES = ("local", "hub", "archives")
_KNOWN = frozenset(DEFAULT_SOURCES)


def source_order() -> list[str]:
    """The configured source order (``OFFGEN_SOURCES``, comma-separated).

    Raises:
        UnknownNameError: If it names an unknown source.
    """
    raw = os.environ.get("OFFGEN_SOURCES")
    if not raw:
        return list(DEFAULT_SOURCES)
    order = [s.strip().lower() for s in raw.split(",") if s.strip()]
    unknown = [s for s in order if s not in _KNOWN]
    if unknown:
        raise UnknownNameError(
            f"OFFGEN_SOURCES: unknown source(s) {unknown}; use a comma-separated order of "
            f"{', '.join(DEFAULT_SOURCES)}"
        )
    return order


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def locate_dataset(
    spec: DatasetSpec, game: GameSpec, *, log: Callable[[str], None] = _stderr
) -> Path:
    """The store of (``spec``, ``game``) from the first source that has it, fetched if needed.

    Raises:
        DatasetNotFoundError: No source provided it (offline, not configured, or not found); the
            message lists what was tried and how to get the data.
    """
    offline = is_offline()
    tried: list[str] = []
    order = source_order()
    for source in order:
        if source == "local":
            local = dataset_dir(spec.name, game.name)
            if (local / "info.json").is_file():  # offgen.data.format.INFO, kept lazy
                _check_label(local, spec)
                return local
            tried.append(f"local: no store at {local}")
            continue
        if source == "hub":
            repo = os.environ.get("OFFGEN_HUB_REPO")
            if not repo:
                tried.append("hub: no repository configured (set OFFGEN_HUB_REPO=ORG/NAME)")
                continue
            revision = os.environ.get("OFFGEN_HUB_REVISION") or None
            if not offline:
                log(f"offgen: fetching {spec.name}/{game.name} from hub repository {repo}")
            try:
                return pull_store(
                    repo,
                    dataset=spec.name,
                    game=game.name,
                    revision=revision,
                    lock_folder=datasets_root() / spec.name,
                ).store
            except OffgenError as exc:
                tried.append(f"hub {repo}: {exc}")
                continue
        if source == "archives":
            if offline:
                tried.append("archives: offline mode (OFFGEN_OFFLINE / HF_HUB_OFFLINE) is on")
                continue
            from offgen.hub.download import download_dataset, estimate_size, format_bytes

            url, size = estimate_size(spec.name, game.name)
            if url is None:
                tried.append("archives: no mirror reachable (check OFFGEN_BASE_URL)")
                continue
            log(
                f"offgen: {spec.name}/{game.name} is not on this machine; downloading "
                f"{format_bytes(size)} from {url} and converting it "
                "(set OFFGEN_OFFLINE=1 to never download)"
            )
            download_dataset(spec.name, [game.name], workers=1)
            return dataset_dir(spec.name, game.name)
    raise DatasetNotFoundError(
        f"dataset {spec.name!r} for game {game.name!r}: no source in OFFGEN_SOURCES "
        f"({','.join(order)}) provided it:\n  "
        + "\n  ".join(tried)
        + f"\nGet it with `offgen download --dataset {spec.name} --games {game.name}` "
        f"(or `offgen pull`), or convert files you have with `offgen convert <folder> "
        f"--game {game.name} --dataset {spec.name}`"
        + (" after unsetting OFFGEN_OFFLINE / HF_HUB_OFFLINE." if offline else ".")
    )


def _check_label(store: Path, spec: DatasetSpec) -> None:
    """Refuse a store filed under a registered name that says it is another dataset."""
    try:
        label = json.loads((store / "info.json").read_bytes()).get("dataset")
    except (OSError, ValueError, AttributeError):
        return  # opening the store reports a damaged info.json with its own message
    if not isinstance(label, str) or not label:
        return
    try:
        if resolve_dataset(label).name == spec.name:
            return
    except UnknownNameError:
        pass
    raise DatasetNotFoundError(
        f"{store}: this store is labelled dataset {label!r}, not {spec.name!r}; a dataset of "
        f"your own may not take a registered name. Move it to "
        f"{datasets_root() / label / store.name} and load it as {label!r}."
    )


def locate_local(local: LocalDataset, game: GameSpec) -> Path:
    """The store of a local dataset for ``game``.

    Raises:
        DatasetNotFoundError: The dataset has no store of that game; the message lists its games.
    """
    store = local.folder / game.name
    if game.name not in local.games:
        raise DatasetNotFoundError(
            f"dataset {local.name!r} has no store for {game.name!r} at {store}; it has "
            f"{', '.join(local.games)}. Collect one with `offgen-collect --env_name {game.name} "
            f"--dataset {local.name} --output {store}`."
        )
    return store


def _hub_dataset(repo: str, game: str, revision: str | None, lock: Lockfile) -> str:
    """The one dataset of ``repo`` holding ``game``: pinned earlier, else listed on the hub."""
    prefix, suffix = f"{repo}:", f"/{game}"
    pinned = sorted(
        key[len(prefix) : -len(suffix)]
        for key in lock.hub_keys()
        if key.startswith(prefix) and key.endswith(suffix)
    )
    if len(pinned) == 1 and revision is None:
        return pinned[0]
    if is_offline():
        found = pinned
        where = f"pinned in {lock.path}"
    else:
        found = list_datasets_in_repo(repo, game, revision=revision)
        where = f"in {repo}@{revision or 'main'}"
    if len(found) == 1:
        return found[0]
    if not found:
        raise DatasetNotFoundError(
            f"hf://{repo}: no dataset with a {game!r} store {where}; push one with "
            f"`offgen push <dataset> --game {game} --repo {repo}`."
        )
    raise UnknownNameError(
        f"hf://{repo} holds several datasets with a {game!r} store ({', '.join(found)}); name "
        f"one: hf://{repo}/{found[0]}"
    )


def locate_hub(
    repo: str, dataset: str | None, game: GameSpec, *, revision: str | None = None
) -> Path:
    """The store of ``<dataset>/<game>/`` in hub repository ``repo``, pulled into the hub cache.

    The commit ``revision`` (default ``main``) resolves to is pinned in
    ``$OFFGEN_HOME/hub/<repo>/offgen.lock.json``; later calls without ``revision`` read that commit
    (from the cache, offline too). Without ``dataset`` the repository must hold exactly one
    dataset with a store of ``game``.

    Raises:
        DatasetNotFoundError: The repository, revision or store does not exist, or it is not cached
            and offline mode is on.
        UnknownNameError: ``dataset`` is None and the repository holds several datasets.
        DownloadError: The hub could not be reached.
    """
    folder = hub_dir(repo)
    name = dataset or _hub_dataset(repo, game.name, revision, Lockfile(folder))
    return pull_store(
        repo, dataset=name, game=game.name, revision=revision, lock_folder=folder
    ).store


def locate(target: Target, game: GameSpec, *, revision: str | None = None) -> Path:
    """The store of a named ``target`` (see :func:`offgen.registry.resolve_target`) for ``game``.

    Raises:
        DatasetNotFoundError: No source has it; the message says how to get it.
        ValueError: ``target`` is a path, which needs no locating.
    """
    if target.spec is not None:
        return locate_dataset(target.spec, game)
    if target.local is not None:
        return locate_local(target.local, game)
    if target.repo is not None:
        return locate_hub(target.repo, target.name, game, revision=revision)
    raise ValueError(f"{target.text!r} is a path, not a name")
