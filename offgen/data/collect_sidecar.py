"""What ``offgen-collect --format npz`` records beside its ``.npz`` files, read back for conversion.

The predecessor's per-episode files carry no policy id and no level range. When offgen's own
collector writes them it also writes :data:`COLLECT_SIDECAR` in the same folder: the Procgen options
(game, distribution mode, start level, number of levels) and the policy ids of the collection.
:func:`read_collect_sidecar` turns that file into what a converted store records, so converting
offgen's own ``.npz`` output keeps them (and the true final frames those files hold).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offgen.errors import CorruptStoreError, SchemaError

__all__ = ["COLLECT_SIDECAR", "CollectSidecar", "read_collect_sidecar"]

COLLECT_SIDECAR = "offgen-collect.json"
"""Name of the collector's record in a folder of ``.npz`` episode files."""


@dataclass(frozen=True)
class CollectSidecar:
    """The collection a folder of ``.npz`` files came from.

    Attributes:
        path: The sidecar file.
        env: Procgen options of the collection (``EnvSpec.to_dict()``: game, distribution mode,
            start level, number of levels, split).
        policy_ids: Policy ids that produced episodes, in the collection's order.
        complete: Whether the collection finished (an interrupted one is still convertible).
        collection: The whole ``collection`` record, kept as provenance.
    """

    path: Path
    env: dict[str, Any]
    policy_ids: tuple[str, ...]
    complete: bool
    collection: dict[str, Any]

    @property
    def policy_id(self) -> str:
        """The id every converted episode gets: the policy's own, or a ``mixture:`` of them when
        several policies shared the run (the files do not say which one played which episode)."""
        if len(self.policy_ids) == 1:
            return self.policy_ids[0]
        return "mixture:" + "+".join(self.policy_ids)


def read_collect_sidecar(folder: Path, game: str) -> CollectSidecar | None:
    """The sidecar of a folder of ``.npz`` files, or ``None`` when it has none (the predecessor's
    files).

    Raises:
        CorruptStoreError: If the sidecar is not valid JSON or lacks the collection record.
        SchemaError: If it records another game than ``game``.
    """
    path = folder / COLLECT_SIDECAR
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        collection = dict(record["collection"])
        env = dict(collection["env"])
        ids = [str(p) for p in collection["policies"]]
        slots = [int(s) for s in collection.get("slot_policy", range(len(ids)))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptStoreError(
            f"{path}: unreadable collection record ({exc}); restore it or delete it to convert the "
            "files without their policy ids and level range"
        ) from exc
    if env.get("game") != game:
        raise SchemaError(
            f"{path}: the files were collected on {env.get('game')!r}, not {game!r}; "
            f"convert them with --game {env.get('game')}"
        )
    used = sorted({s for s in slots if 0 <= s < len(ids)}) or list(range(len(ids)))
    return CollectSidecar(
        path=path,
        env=env,
        policy_ids=tuple(ids[s] for s in used),
        complete=record.get("status") == "complete",
        collection=collection,
    )
