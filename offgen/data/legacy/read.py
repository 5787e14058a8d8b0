"""Read one legacy episode file into an :class:`~offgen.data.schema.Episode`, checked."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.data.exact import cast_exactly
from offgen.data.legacy._errors import reading
from offgen.data.legacy.frames import LegacyFrames, check_frames_shape
from offgen.data.legacy.names import LEGACY_KEYS, SUFFIXES, LegacyName
from offgen.data.legacy.npy import load_npy
from offgen.data.legacy.npy_walk import mapped_region
from offgen.data.legacy.npz import load_npz
from offgen.data.schema import NUM_ACTIONS, Episode, frames_placeholder
from offgen.errors import SchemaError
from offgen.registry import resolve_game

__all__ = ["legacy_arrays", "open_legacy_episode", "read_legacy_episode"]


def legacy_arrays(
    path: str | os.PathLike[str], data: bytes | bytearray | memoryview | None = None
) -> dict[str, npt.NDArray[Any]]:
    """The raw arrays of a legacy ``.npz`` / ``.npy`` episode file, loaded safely.

    Args:
        path: The file.
        data: Its bytes when already in memory (a member streamed out of an archive); ``path``
            is then only the name used for its suffix and in errors.

    Raises:
        UnsafeFileError: If the file holds anything but plain arrays and dicts.
        CorruptStoreError: If the file is truncated or corrupt.
        SchemaError: If a key is missing or an array is not a plain numeric array.
    """
    file = Path(path)
    if file.suffix not in SUFFIXES:
        raise SchemaError(f"{file}: not a legacy episode file (expected .npz or .npy)")
    with reading(file, "unreadable legacy episode file"):
        arrays = load_npy(file, data) if file.suffix == ".npy" else load_npz(file, data)
    missing = [key for key in LEGACY_KEYS if key not in arrays]
    if missing:
        raise SchemaError(
            f"{file}: missing keys {missing}; a legacy episode has {list(LEGACY_KEYS)}"
        )
    out: dict[str, npt.NDArray[Any]] = {}
    for key in LEGACY_KEYS:
        arr = arrays[key]
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiub":
            raise SchemaError(f"{file}: {key} must be a numeric array, got {type(arr).__name__}")
        out[key] = arr
    return out


def read_legacy_episode(
    path: str | os.PathLike[str], game: str, *, policy_id: str = "unknown"
) -> Episode:
    """Read one legacy ``.npz`` or ``.npy`` episode file into an :class:`Episode`.

    Frames are cast to uint8 and moved to HWC; the level seed comes from the file name (``-1`` when
    the name does not follow the legacy pattern); ``truncated`` is inferred from the game's time
    limit; ``final_frame_is_true`` is false (row ``T`` is the next level's first frame).

    Raises:
        UnsafeFileError: If the file holds anything but plain arrays and dicts (never executed).
        CorruptStoreError: If the file is truncated or corrupt.
        SchemaError: If its arrays do not form a valid episode or disagree with its name.
    """
    episode, frames = open_legacy_episode(path, game, policy_id=policy_id)
    return dataclasses.replace(episode, observations=frames.decode())


def open_legacy_episode(
    path: str | os.PathLike[str],
    game: str,
    *,
    policy_id: str = "unknown",
    data: bytes | bytearray | memoryview | None = None,
) -> tuple[Episode, LegacyFrames]:
    """Read a legacy episode file's steps now and leave its frames to be decoded later.

    As :func:`read_legacy_episode`, except that the episode's ``observations`` are
    :func:`~offgen.data.schema.frames_placeholder` zeros and the real frames come back as a
    :class:`LegacyFrames` (for ``StoreWriter.write(episode, frames=...)``): a ``.npy`` file's
    frames are not read until they are decoded, and an invalid frame value is only found then.

    With ``data`` (the file's bytes, e.g. a member streamed out of an archive; ``path`` is then
    only its name) the frames are views of ``data`` and are decoded from memory.

    Raises:
        UnsafeFileError, CorruptStoreError, SchemaError: As :func:`read_legacy_episode`, except
            for frame values.
    """
    file = Path(path)
    spec = resolve_game(game)
    try:
        name: LegacyName | None = LegacyName.parse(file.name)
    except SchemaError:
        name = None
    arrays = legacy_arrays(file, data)
    actions = arrays["actions"].reshape(-1)
    steps = actions.shape[0]
    if name is not None and name.length != steps:
        raise SchemaError(f"{file}: the name says {name.length} steps but the file holds {steps}")
    if arrays["rewards"].size != steps or arrays["dones"].size != steps:
        raise SchemaError(
            f"{file}: {steps} actions but {arrays['rewards'].size} rewards and "
            f"{arrays['dones'].size} dones"
        )
    observations = arrays["observations"]
    check_frames_shape(observations, file)
    truncated = steps >= spec.max_episode_steps
    try:
        episode = Episode(
            observations=frames_placeholder(observations.shape[0]),
            actions=_checked_actions(actions, file),
            rewards=arrays["rewards"].reshape(-1).astype(np.float32),
            terminated=not truncated,
            truncated=truncated,
            level_seed=name.level_seed if name is not None else -1,
            game=spec.name,
            policy_id=policy_id,
            final_frame_is_true=False,
            provenance={"source_file": file.name},
        )
    except SchemaError as exc:
        raise SchemaError(f"{file}: {exc}") from exc
    return episode, LegacyFrames(observations, file, mapped_region(observations))


def _checked_actions(actions: npt.NDArray[Any], source: Path) -> npt.NDArray[np.uint8]:
    checked = np.empty(actions.shape, dtype=np.uint8)
    if not cast_exactly(actions, checked) or (checked.size and checked.max() >= NUM_ACTIONS):
        raise SchemaError(f"{source}: actions must be whole numbers in [0, {NUM_ACTIONS})")
    return checked
