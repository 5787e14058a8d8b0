"""Build archives in the predecessor's published layout from real episodes.

Files are written exactly as the predecessor did: a pickled 0-d object array wrapping the episode
dict (``.npy``), or ``np.savez_compressed`` (``.npz``), named
``<YYYYmmddTHHMMSS>_<index>_<T>_<level_seed>_<return:.2f>.<ext>`` under ``<game>/``.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from offgen.data import Episode


def legacy_arrays(ep: Episode) -> dict[str, np.ndarray]:
    return {
        "observations": np.moveaxis(ep.observations, -1, 1).astype(np.float32),  # CHW float32
        "actions": ep.actions.astype(np.int64)[:, None],
        "rewards": ep.rewards.astype(np.float32)[:, None],
        "dones": np.eye(1, ep.length, ep.length - 1, dtype=np.float32)[0],
    }


def legacy_name(ep: Episode, index: int, ext: str) -> str:
    return f"20230101T{index % 240000:06d}_{index}_{ep.length}_{ep.level_seed}_{ep.episode_return:.2f}.{ext}"


def write_legacy_files(
    episodes: Sequence[Episode], folder: Path, *, ext: str = "npy", start: int = 0
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ep in enumerate(episodes, start):
        path = folder / legacy_name(ep, i, ext)
        if ext == "npy":
            np.save(path, np.array(legacy_arrays(ep), dtype=object), allow_pickle=True)
        else:
            np.savez_compressed(path, **legacy_arrays(ep))
        paths.append(path)
    return paths


def build_game_archive(
    episodes: Sequence[Episode], game: str, out: Path, *, work: Path, ext: str = "npy"
) -> Path:
    """``out`` (``.tar.xz`` or ``.tar``) holding ``<game>/<episode files>``."""
    files = write_legacy_files(episodes, work / game, ext=ext)
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = "w:xz" if out.name.endswith(".xz") else "w"
    with tarfile.open(out, mode) as tar:
        for f in files:
            tar.add(f, arcname=f"{game}/{f.name}")
    return out


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))
