"""Minari interop: export a selection to a Minari dataset, import a Minari dataset into a store.

Needs the ``minari`` extra (``pip install 'offgen[minari]'``). Exported datasets record the
gymnasium id ``offgen/<game>-v0`` (:mod:`offgen.envs.gym`) with the store's level range, so
``dataset.recover_environment()`` gives the Procgen environment the data came from (envpool needed
to step it). Frames are stored losslessly (no JPEG) as ``(T + 1, 64, 64, 3)`` uint8; each step's
level seed travels in ``infos["level_seed"]`` (shape ``(T + 1, 1)``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from offgen._optional import require
from offgen.data.dataset import OffgenDataset
from offgen.data.schema import Layout, make_episode
from offgen.data.store import OffgenStore
from offgen.data.writer import StoreWriter
from offgen.errors import SchemaError

__all__ = ["from_minari", "to_minari"]


def _env_spec(ds: OffgenDataset) -> Any:
    gym_env = require("offgen.envs.gym", "collect")
    gymnasium = require("gymnasium", "collect")
    env = ds.info.env.to_json()
    kwargs: dict[str, Any] = {"game": ds.game}
    for key in ("start_level", "num_levels", "distribution_mode"):
        if key in env:
            kwargs[key] = env[key]
    return dataclasses.replace(gymnasium.spec(gym_env.env_id(ds.game)), kwargs=kwargs)


def to_minari(
    ds: OffgenDataset,
    dataset_id: str,
    *,
    author: str | None = None,
    description: str | None = None,
) -> Any:
    """Write the selected episodes as the local Minari dataset ``dataset_id``.

    Args:
        ds: The selection to export (all its episodes are held in memory while writing).
        dataset_id: Minari id, e.g. ``"offgen/coinrun/expert-v0"``.
        author: Recorded in the Minari metadata.
        description: Recorded in the Minari metadata (default: the store's dataset and game).

    Returns:
        The new ``minari.MinariDataset`` (in ``$MINARI_DATASETS_PATH``, default ``~/.minari``).
    """
    minari = require("minari", "minari")
    buffers = []
    for i, episode in enumerate(ds.iter_episodes()):
        steps = episode.length
        ends = np.zeros(steps, dtype=bool)
        buffers.append(
            minari.data_collector.EpisodeBuffer(
                id=i,
                observations=episode.observations,
                actions=episode.actions.astype(np.int64),
                rewards=episode.rewards,
                terminations=np.where(np.arange(steps) == steps - 1, episode.terminated, ends),
                truncations=np.where(np.arange(steps) == steps - 1, episode.truncated, ends),
                # (T + 1, 1): minari's arrow storage cannot decode per-step scalars (shape ())
                infos={"level_seed": np.full((steps + 1, 1), episode.level_seed, dtype=np.int64)},
            )
        )
    policies = sorted(set(ds.table.policy_names()))
    return minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=_env_spec(ds),
        algorithm_name=",".join(policies),
        author=author,
        description=description
        or f"offgen {ds.info.dataset or 'store'} ({ds.game}), {len(ds)} episodes",
        data_format="arrow",  # pyarrow comes with the extra; hdf5 would need h5py
        jpeg_encoding=False,  # lossless frames: the data, not a preview
    )


def from_minari(
    dataset: Any,
    output: str | os.PathLike[str],
    *,
    game: str | None = None,
    policy_id: str | None = None,
) -> OffgenStore:
    """Write a Minari dataset with 64x64 RGB image observations into a new offgen store.

    Args:
        dataset: A ``minari.MinariDataset`` or a local Minari dataset id.
        output: Store directory to create.
        game: Procgen game; default: read from the dataset's ``offgen/<game>-v0`` environment.
        policy_id: Policy id of the episodes (default ``minari:<dataset id>``).

    Raises:
        SchemaError: If the game is unknown and not given, or observations are not 64x64x3
            uint8 images (in HWC or CHW).
    """
    minari = require("minari", "minari")
    data = minari.load_dataset(dataset) if isinstance(dataset, str) else dataset
    game = game or _game_of(data)
    policy = policy_id or f"minari:{data.spec.dataset_id}"
    with StoreWriter(output, game=game, final_frame_is_true=True) as writer:
        writer.add_policy(policy, source=f"minari dataset {data.spec.dataset_id}")
        for ep in data.iterate_episodes():
            obs = np.asarray(ep.observations)
            layout: Layout = "CHW" if obs.ndim == 4 and obs.shape[1] == 3 else "HWC"
            seeds = np.asarray((ep.infos or {}).get("level_seed", []), dtype=np.int64).reshape(-1)
            writer.write(
                make_episode(
                    obs,
                    np.asarray(ep.actions).reshape(-1),
                    np.asarray(ep.rewards, dtype=np.float32),
                    game=game,
                    level_seed=int(seeds[0]) if len(seeds) else -1,
                    terminated=bool(np.asarray(ep.terminations)[-1]),
                    truncated=bool(np.asarray(ep.truncations)[-1]),
                    policy_id=policy,
                    layout=layout,
                )
            )
    return OffgenStore(output)


def _game_of(data: Any) -> str:
    spec = data.spec.env_spec
    env = getattr(spec, "id", "") or ""
    if env.startswith("offgen/") and env.endswith("-v0"):
        return str(env[len("offgen/") : -len("-v0")])
    raise SchemaError(
        f"Minari dataset {data.spec.dataset_id}: environment {env or 'unknown'!r} is not an offgen "
        "Procgen environment; pass game= (e.g. game='coinrun')"
    )
