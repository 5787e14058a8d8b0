"""Write an episode exactly as the predecessor's collector did (one ``.npz`` per episode)."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np

from offgen._io import atomic_open
from offgen.data.legacy.names import TIMESTAMP, LegacyName
from offgen.data.schema import Episode

__all__ = ["write_npz_episode"]


def write_npz_episode(
    directory: str | os.PathLike[str],
    episode: Episode,
    index: int,
    timestamp: _dt.datetime | str | None = None,
) -> Path:
    """Write ``episode`` as the predecessor's collector did: one ``np.savez_compressed`` file.

    The keys, shapes, dtypes and file name match the published data (see
    :mod:`offgen.data.legacy`), so existing code reads the result. The write is atomic.

    Args:
        directory: Folder to write into (created if missing).
        episode: The episode.
        index: Episode counter written into the file name.
        timestamp: Time in the name; a datetime, a ``YYYYmmddTHHMMSS`` string, or now (UTC).

    Returns:
        The path of the written file.
    """
    if timestamp is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime(TIMESTAMP)
    elif isinstance(timestamp, _dt.datetime):
        stamp = timestamp.strftime(TIMESTAMP)
    else:
        stamp = timestamp
    name = LegacyName(
        index=index,
        timestamp=stamp,
        length=episode.length,
        level_seed=episode.level_seed,
        episode_return=episode.episode_return,
    )
    LegacyName.parse(name.format())  # refuses a malformed timestamp before anything is written
    steps = episode.length
    dones = np.zeros(steps, dtype=np.float32)
    dones[-1] = 1.0
    arrays = {
        "observations": np.moveaxis(episode.observations, -1, 1).astype(np.float32),
        "actions": episode.actions.astype(np.int64).reshape(steps, 1),
        "rewards": episode.rewards.astype(np.float32).reshape(steps, 1),
        "dones": dones,
    }
    path = Path(directory) / name.format()
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
    return path
