"""``offgen merge``: combine stores (collection shards) into one store.

Inputs must agree on game, Procgen options (``info.json`` ``env``), format version and final-frame
semantics; two inputs that are the same collection shard are refused (their episodes would be
duplicated). Episodes are copied input by input, in order, into a new store with a fresh episode
table and manifest; policies are the union of the inputs' policy tables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offgen._progress import progress_bar
from offgen.data.store import OffgenStore
from offgen.data.writer import StoreWriter
from offgen.errors import SchemaError

__all__ = ["MergeResult", "merge_stores"]


@dataclass(frozen=True)
class MergeResult:
    """The merged store's size."""

    output: Path
    episodes: int
    transitions: int


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def merge_stores(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = True,
    wait_for_lock: bool = False,
) -> MergeResult:
    """Merge finished stores into ``output``.

    ``wait_for_lock``: if another process is writing ``output``, wait for it instead of raising
    :class:`~offgen.errors.StoreLockedError`.

    Raises:
        SchemaError: If the inputs disagree on game, options or format, or repeat a shard.
        StoreExistsError: If ``output`` exists and ``overwrite`` is false.
    """
    if not inputs:
        raise SchemaError("offgen merge needs at least one input store")
    stores = [OffgenStore(p) for p in inputs]
    first = stores[0]
    keys: tuple[tuple[str, Callable[[OffgenStore], Any]], ...] = (
        ("game", lambda s: s.info.game),
        ("env options", lambda s: s.info.env.to_json()),
        ("format version", lambda s: s.info.format_version),
        ("final-frame semantics", lambda s: s.info.observation.final_frame),
    )
    for store in stores[1:]:
        for name, get in keys:
            if _canon(get(store)) != _canon(get(first)):
                raise SchemaError(
                    f"{store.location}: {name} {get(store)!r} differs from {first.location} "
                    f"({get(first)!r}); only stores of the same collection can be merged"
                )
    seen: dict[str, str] = {}
    for store in stores:
        shard = store.info.provenance.get("collection")
        if shard is not None:
            key = _canon(shard)
            if key in seen:
                raise SchemaError(
                    f"{store.location} is the same collection shard as {seen[key]}; merging both "
                    "would duplicate its episodes"
                )
            seen[key] = store.location
    sources = [
        {
            "location": s.location,
            "episodes": len(s.table),
            "fingerprint": s.fingerprint,
            "provenance": s.info.to_json()["provenance"],
        }
        for s in stores
    ]
    recipes = [None if s.info.recipe is None else s.info.recipe.to_json() for s in stores]
    total = sum(len(s.table) for s in stores)
    with StoreWriter(
        output,
        game=first.game,
        mode="overwrite" if overwrite else "create",
        dataset=first.info.dataset,
        env_options=first.info.env.to_json(),
        provenance={"merged_from": sources},
        final_frame_is_true=first.final_frame_is_true,
        wait_for_lock=wait_for_lock,
    ) as writer:
        if any(r is not None for r in recipes):
            same = all(_canon(r) == _canon(recipes[0]) for r in recipes)
            writer.update_info(recipe=recipes[0] if same else {"merged": recipes})
        with progress_bar(total=total, unit="episode", enabled=progress, desc="merge") as bar:
            for store in stores:
                for policy in store.policies:
                    writer.add_policy(
                        policy["id"], **{k: v for k, v in policy.items() if k != "id"}
                    )
                for episode in store.iter_episodes():
                    writer.write(episode)
                    bar.update(1)
        episodes, transitions = writer.num_episodes, writer.num_transitions
    return MergeResult(Path(output), episodes, transitions)
