"""Where ``offgen.load`` gets a registered dataset: this machine, a hub repository, the archives.

Sources, in the order of preference given by ``OFFGEN_SOURCES`` (default ``local,hub,archives``);
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

import os
import sys
from collections.abc import Callable
from pathlib import Path

from offgen.errors import DatasetNotFoundError, OffgenError, UnknownNameError
from offgen.hub.hf import is_offline, pull_store
from offgen.paths import dataset_dir, datasets_root
from offgen.registry import DatasetSpec, GameSpec

__all__ = ["DEFAULT_SOURCES", "locate_dataset", "source_order"]

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
