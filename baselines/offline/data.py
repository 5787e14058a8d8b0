"""Training batches for the offline loop, from offgen only, prefetched in the background.

``--dataset`` names one or several datasets: ``offgen.load`` names (``expert_1M`` with
``--env_name coinrun``), store paths or URLs, comma-separated. Several are mixed by
:func:`offgen.data.mix` in the proportions given as ``NAME:WEIGHT`` (``a:0.7,b:0.3``), or in
proportion to their sizes when no weight is given (what concatenating them would give).
``--dataset_size N --percentile p`` keeps, in each dataset, only its highest-return episodes holding
``N x p`` steps (:meth:`offgen.data.OffgenDataset.top_returns`; the predecessor's loader did this
silently, here it is asked for).

Batches are numpy arrays gathered by offgen's samplers (uniform draws with replacement, seeded by
``--seed``; resumable by their batch counter) and turned into torch tensors by a
:class:`Prefetcher` thread a few batches ahead of the network, pinned and copied non-blocking when
training on a GPU.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import offgen
from baselines.common.errors import ConfigError
from baselines.offline.algorithm import DataKind
from baselines.offline.config import OfflineConfig
from offgen.data import mix
from offgen.data.dataset import OffgenDataset
from offgen.data.sampling import Sampler
from offgen.data.torch import batch_to_torch
from offgen.registry import resolve_target

__all__ = ["DatasetEntry", "Prefetcher", "TrainingData", "open_training_data", "parse_datasets"]

PREFETCH_DEPTH = 4
"""Batches prepared ahead of the network (bounded: a slow network never piles up memory)."""


@dataclass(frozen=True)
class DatasetEntry:
    """One item of ``--dataset``: where it is and its mixing weight (``None``: by size)."""

    location: str
    weight: float | None


def parse_datasets(text: str) -> list[DatasetEntry]:
    """``"a.zarr:0.7,b.zarr:0.3"`` -> entries; a ``:suffix`` that is no number is part of a URL.

    Raises:
        ConfigError: For an empty item, a weight that is not positive, or weights on only some.
    """
    entries: list[DatasetEntry] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ConfigError(f"--dataset {text!r} has an empty item; separate datasets by commas")
        location, _, suffix = item.rpartition(":")
        try:
            weight: float | None = float(suffix) if location else None
        except ValueError:
            weight = None
        if weight is None:
            location = item
        elif not (math.isfinite(weight) and weight > 0):
            raise ConfigError(f"--dataset {item!r}: a mixing weight must be > 0")
        entries.append(DatasetEntry(location, weight))
    if len({e.weight is None for e in entries}) > 1:
        raise ConfigError(
            f"--dataset {text!r}: give a weight to every dataset (NAME:WEIGHT) or to none"
        )
    return entries


def _open_one(entry: DatasetEntry, cfg: OfflineConfig) -> OffgenDataset:
    """Open one dataset, check its game, apply the top-return selection."""
    is_path = resolve_target(entry.location).kind == "path"
    ds = offgen.load(entry.location, None if is_path else (cfg.env_name or None))
    if cfg.env_name and ds.game != cfg.env_name:
        raise ConfigError(
            f"--dataset {entry.location} holds game {ds.game!r}, not --env_name {cfg.env_name!r}; "
            f"pass --env_name {ds.game} or a {cfg.env_name} dataset"
        )
    if cfg.dataset_size:
        ds = ds.top_returns(max(1, int(cfg.dataset_size * cfg.percentile)))
    if ds.num_transitions == 0:
        raise ConfigError(f"--dataset {entry.location}: no steps selected; check the filters")
    return ds


@dataclass(frozen=True)
class TrainingData:
    """The opened datasets and the facts the loop needs about them.

    Attributes:
        game: The datasets' game.
        datasets: ``(dataset, weight)`` pairs after selection (weights normalised).
        num_transitions: Selected steps over all datasets (an epoch is this // batch size).
        max_return: The highest episode return selected (DT's target return unit).
    """

    game: str
    datasets: tuple[tuple[OffgenDataset, float], ...]
    num_transitions: int
    max_return: float

    def sampler(
        self, kind: DataKind, cfg: OfflineConfig, batch_size: int | None = None
    ) -> Sampler[Any]:
        """A seeded, resumable sampler of CHW batches of ``kind``, of ``batch_size`` rows
        (default ``--batch_size``; one rank's share of it under ``torchrun``)."""
        batch_size = batch_size or cfg.batch_size
        options: dict[str, Any] = {
            "seed": cfg.seed,
            "layout": "CHW",
            "strategy": cfg.data_strategy,
            "progress": cfg.progress,
        }
        context = cfg.dt_context_length
        if len(self.datasets) > 1:
            return mix(
                list(self.datasets), batch_size=batch_size, kind=kind, context=context,
                **options,
            )  # fmt: skip
        ds = self.datasets[0][0]
        if kind == "windows":
            return ds.windows(context, batch_size, **options)
        return ds.transitions(batch_size, **options)


def open_training_data(cfg: OfflineConfig, kind: DataKind) -> TrainingData:
    """Open ``--dataset`` and check it against the flags (game, context length).

    Raises:
        ConfigError: Datasets of different games or of another game than ``--env_name``, an empty
            selection, or a DT / BCT context longer than every episode.
        OffgenError: Unknown dataset names or games, missing stores (from :func:`offgen.load`).
    """
    entries = parse_datasets(cfg.dataset)
    datasets = [_open_one(entry, cfg) for entry in entries]
    games = sorted({ds.game for ds in datasets})
    if len(games) > 1:
        raise ConfigError(f"--dataset mixes games {', '.join(games)}; train on one game at a time")
    if kind == "windows":
        for entry, ds in zip(entries, datasets, strict=True):
            longest = int(ds.table.lengths.max())
            if cfg.dt_context_length > longest:
                raise ConfigError(
                    f"--dt_context_length {cfg.dt_context_length} is longer than every episode of "
                    f"{entry.location} (longest {longest} steps); lower it"
                )
    weights = [e.weight if e.weight is not None else ds.num_transitions for e, ds in
               zip(entries, datasets, strict=True)]  # fmt: skip
    total = float(sum(weights))
    return TrainingData(
        game=games[0],
        datasets=tuple((ds, w / total) for ds, w in zip(datasets, weights, strict=True)),
        num_transitions=sum(ds.num_transitions for ds in datasets),
        max_return=max(float(ds.table.returns.max()) for ds in datasets),
    )


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetcher:
    """Batches of a sampler as torch tensors on ``device``, prepared by a background thread.

    The thread gathers batch ``k + 1 .. k + depth`` (numpy releases the GIL while copying frames)
    and converts it to tensors (pinned on CUDA) while the network trains on batch ``k``;
    :meth:`next` then only copies to the device (non-blocking from pinned memory).
    :meth:`state_dict` is the sampler's state at the batches *consumed*, not those prepared, so a
    checkpoint resumes at the next batch the network would have seen.

    Args:
        sampler: A sampler, already moved to the position to start from.
        device: The training ``torch.device``.
        depth: Batches prepared ahead.
    """

    def __init__(self, sampler: Sampler[Any], device: Any, depth: int = PREFETCH_DEPTH) -> None:
        self._sampler = sampler
        self._state = sampler.state_dict()
        self._consumed = int(self._state["batches"])
        self._device = device
        self._pin = getattr(device, "type", "cpu") == "cuda"
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="offgen-prefetch", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                batch = batch_to_torch(next(self._sampler))
                if self._pin:
                    batch = {k: v.pin_memory() for k, v in batch.items()}
                self._put(batch)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> dict[str, Any]:
        """The next batch, on the device."""
        item = self._queue.get()
        if isinstance(item, _Failure):
            raise item.error
        self._consumed += 1
        return {k: v.to(self._device, non_blocking=True) for k, v in item.items()}

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state after the batches consumed so far (JSON-serialisable)."""
        return {**self._state, "batches": self._consumed}

    def close(self) -> None:
        """Stop the thread (batches prepared but not consumed are dropped)."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=10)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def summary(data: TrainingData) -> Mapping[str, Any]:
    """What the run's metadata records about its data."""
    return {
        "game": data.game,
        "num_transitions": data.num_transitions,
        "max_return": data.max_return,
        "datasets": [
            {
                "location": str(ds.store.location),
                "episodes": len(ds),
                "weight": w,
                "transitions": ds.num_transitions,
            }
            for ds, w in data.datasets
        ],
    }
