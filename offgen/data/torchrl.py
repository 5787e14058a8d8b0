"""An offgen store as a TorchRL replay-buffer storage, in TorchRL's own GenDGRL layout.

Importing this module needs TorchRL (``pip install 'offgen[torchrl]'``). The one-line swap::

    # from torchrl.data.datasets import GenDGRLExperienceReplay
    # rb = GenDGRLExperienceReplay("coinrun-1M_E", batch_size=32)
    from offgen.data.torchrl import OffgenExperienceReplay
    rb = OffgenExperienceReplay("coinrun-1M_E", batch_size=32)
    batch = rb.sample()

Each sample is a ``TensorDict`` with the keys and dtypes ``GenDGRLExperienceReplay`` writes
(TorchRL's TED convention): ``observation`` and ``("next", "observation")`` ``(B, 3, 64, 64)``
uint8 (channel first, as its loader casts the published float32 frames), ``action`` ``(B, 1)``
int64, ``("next", "reward")`` ``(B, 1)`` float32, ``("next", "done" | "terminated" |
"truncated")`` and root ``done`` / ``terminated`` / ``truncated`` ``(B, 1)`` bool, plus the
``index`` every ``TensorDictReplayBuffer`` adds. Where GenDGRL, reading files that only record
``dones``, sets ``terminated = done`` and ``truncated = False``, offgen's stores know why an
episode ended: ``("next", "terminated")`` is true at the last step of an episode that ended in the
game, ``("next", "truncated")`` at the last step of one cut by the step limit, and ``done`` is
their union. Root flags are false (no transition starts from a terminal state).

Nothing is copied up front: the storage reads transitions from the store through offgen's
map-style :meth:`~offgen.data.dataset.OffgenDataset.transition_rows` (decoded into RAM or a
memmap cache once, as the samplers do), where GenDGRL first unpacks the archive into a ~25 GB
memory-mapped copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen._optional import require
from offgen.data.dataset import OffgenDataset
from offgen.data.sampling.batches import TransitionBatch
from offgen.data.sampling.strategy import Strategy

torch = require("torch", "torchrl")
_tensordict = require("tensordict", "torchrl")
_rb = require("torchrl.data.replay_buffers", "torchrl")
_Storage: Any = _rb.Storage
_TensorDictReplayBuffer: Any = _rb.TensorDictReplayBuffer

__all__ = ["OffgenExperienceReplay", "OffgenStorage", "batch_to_tensordict", "open_dataset_id"]


def open_dataset_id(
    dataset_id: str | os.PathLike[str] | OffgenDataset,
    game: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> OffgenDataset:
    """The dataset a GenDGRL id (``"coinrun-1M_E"``: ``<game>-<category>``) or any
    ``offgen.load`` argument names.

    Raises:
        UnknownNameError: Unknown game or dataset (the message suggests the closest).
        DatasetNotFoundError: The dataset is not present and no source has it.
    """
    import offgen
    from offgen.registry import GAMES

    if isinstance(dataset_id, OffgenDataset):
        return dataset_id
    text = os.fspath(dataset_id)
    head, sep, tail = text.partition("-")
    if game is None and sep and head in GAMES and "/" not in text:
        return offgen.load(tail, game=head, storage_options=storage_options)
    return offgen.load(dataset_id, game=game, storage_options=storage_options)


def batch_to_tensordict(batch: TransitionBatch) -> Any:
    """A CHW :class:`~offgen.data.sampling.TransitionBatch` as a TED ``TensorDict`` (GenDGRL keys)."""
    n = len(batch)
    terminated = torch.from_numpy(batch.terminated).reshape(n, 1)
    truncated = torch.from_numpy(batch.truncated).reshape(n, 1)
    not_yet = torch.zeros((n, 1), dtype=torch.bool)
    return _tensordict.TensorDict(
        {
            "observation": torch.from_numpy(batch.obs),
            "action": torch.from_numpy(batch.action).reshape(n, 1),
            "done": not_yet,
            "terminated": not_yet.clone(),
            "truncated": not_yet.clone(),
            "next": {
                "observation": torch.from_numpy(batch.next_obs),
                "reward": torch.from_numpy(batch.reward).reshape(n, 1),
                "done": terminated | truncated,
                "terminated": terminated,
                "truncated": truncated,
            },
        },
        batch_size=[n],
    )


class OffgenStorage(_Storage):  # type: ignore[misc]  # TorchRL is untyped
    """A read-only TorchRL ``Storage`` over every selected transition of an offgen dataset.

    Position ``i`` is transition ``i`` of the selection (episode after episode), as in
    :meth:`~offgen.data.dataset.OffgenDataset.transition_rows`. Use it in any TorchRL replay
    buffer; ``extend`` / ``add`` are refused (the store is immutable).

    Args:
        dataset: The selection to serve (``offgen.load(...)``, ``ds.filter(...)``).
        strategy: Where decoded frames live: ``"ram"``, ``"memmap"`` (a cache file on local
            disk) or ``"auto"`` (RAM if it fits the memory budget).
        memory_budget: Bytes ``"auto"`` may use for RAM frames (default: offgen's).
    """

    def __init__(
        self,
        dataset: OffgenDataset,
        *,
        strategy: Strategy = "auto",
        memory_budget: int | str | None = None,
    ) -> None:
        self.dataset = dataset
        self.rows = dataset.transition_rows(
            layout="CHW", strategy=strategy, memory_budget=memory_budget
        )
        super().__init__(max_size=len(self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def _positions(self, index: Any) -> npt.NDArray[np.int64]:
        if isinstance(index, slice):
            return np.arange(*index.indices(len(self)), dtype=np.int64)
        if isinstance(index, torch.Tensor):
            index = index.detach().cpu().numpy()
        return np.asarray(index, dtype=np.int64)

    def get(self, index: Any) -> Any:
        """The transitions at ``index`` (int, sequence, slice or tensor) as a TED ``TensorDict``;
        an int gives one transition without a batch dimension."""
        positions = self._positions(index)
        out = batch_to_tensordict(self.rows[positions.reshape(-1)])
        if positions.ndim == 0:
            return out[0]
        return out.reshape(positions.shape) if positions.ndim > 1 else out

    def set(self, cursor: Any, data: Any, *, set_cursor: bool = True) -> None:
        raise RuntimeError("an offgen store is read-only; write new data with offgen.StoreWriter")

    def state_dict(self) -> dict[str, Any]:
        return {}  # the data is the store: nothing to save

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        return None

    def _empty(self) -> None:
        raise RuntimeError("an offgen store is read-only; it cannot be emptied")

    def contains(self, item: Any) -> Any:
        positions = torch.as_tensor(self._positions(item))
        return (positions >= -len(self)) & (positions < len(self))


def _identity(batch: Any) -> Any:
    return batch


class OffgenExperienceReplay(_TensorDictReplayBuffer):  # type: ignore[misc]
    """``GenDGRLExperienceReplay`` on offgen: same ids, same sample keys, no unpacked copy.

    Args:
        dataset_id: A GenDGRL id (``"coinrun-1M_E"``, ``"bigfish-level_1_S"``), or anything
            ``offgen.load`` takes (``"expert_1M"`` with ``game``, ``"my_random"``,
            ``"hf://ORG/REPO"``, a store path, ``"s3://..."``), or an ``OffgenDataset``.
        batch_size: Default batch size of :meth:`sample`.
        game: The game, when ``dataset_id`` is a dataset name.
        storage_options: fsspec options for URLs.
        strategy: Where decoded frames live (see :class:`OffgenStorage`).
        memory_budget: Bytes ``"auto"`` may use for RAM frames.
        **kwargs: Passed to ``TensorDictReplayBuffer`` (``sampler``, ``transform``, ``prefetch``,
            ``pin_memory``, ...); the default sampler is TorchRL's ``RandomSampler``.

    Example:
        >>> rb = OffgenExperienceReplay("coinrun-1M_E", batch_size=32)  # doctest: +SKIP
        >>> rb.sample()["next", "reward"].shape
        torch.Size([32, 1])
    """

    def __init__(
        self,
        dataset_id: str | os.PathLike[str] | OffgenDataset,
        batch_size: int | None = None,
        *,
        game: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        strategy: Strategy = "auto",
        memory_budget: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        self.dataset = open_dataset_id(dataset_id, game, storage_options)
        storage = OffgenStorage(self.dataset, strategy=strategy, memory_budget=memory_budget)
        kwargs.setdefault("sampler", _rb.RandomSampler())
        kwargs.setdefault("writer", _rb.ImmutableDatasetWriter())
        kwargs.setdefault("collate_fn", _identity)
        super().__init__(storage=storage, batch_size=batch_size, **kwargs)
