"""Data-parallel training of the offline loop under ``torchrun`` (process group and gradient hooks).

``torchrun --nproc_per_node=N -m baselines.train_offline ...`` starts ``N`` copies of the trainer
with ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in their environment. The rules, written once here
for every algorithm:

* **Process group**: NCCL when training on CUDA (rank ``r`` on ``cuda:LOCAL_RANK``), gloo on the CPU.
* **Same start**: every module's state (parameters, buffers, target copies) is broadcast from
  rank 0 after the algorithm is built, so ranks start identical whatever their seeds did.
* **Averaged gradients**: an algorithm's ``update()`` runs backward and its optimizer steps itself,
  so the average cannot wrap the step. A post-accumulate-grad hook on every parameter that
  requires grad all-reduces that parameter's gradient and divides it by the world size as soon as
  backward has accumulated it: clipping and the step inside ``update()`` then see the same averaged
  gradient on every rank, and the parameters stay identical. (A gradient accumulated over two
  backward passes before one step is still right: averaging is linear and leaves an already
  averaged, identical part unchanged.)
* **One writer**: rank 0 evaluates, decides early stopping (broadcast, so all ranks stop at the same
  update), logs and writes checkpoints; every rank's sampler position and RNG state are gathered
  into rank 0's ``rolling/model.pt`` and each rank restores its own on ``--resume``.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every function here is a no-op.

``OFFGEN_DDP_TRACE=<dir>`` (tests): each rank writes ``rank<k>.sha256``, a digest of its modules'
parameters after training, and ``rank<k>.samples.npy``, the ``(update, source, episode, timestep)``
of every row it trained on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from baselines.common.errors import ConfigError

__all__ = ["Ranks", "setup"]

TRACE_ENV = "OFFGEN_DDP_TRACE"
WAIT = timedelta(hours=1)
"""How long a rank waits in a collective: the others wait while rank 0 evaluates the validation
split (NCCL's default of 10 minutes can be shorter than one evaluation)."""


@dataclass(frozen=True)
class Ranks:
    """This process's place among the data-parallel ranks (rank 0 of 1 without ``torchrun``)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """Whether several processes train together."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Whether this process evaluates, logs and writes checkpoints."""
        return self.rank == 0


def ranks_from_env() -> Ranks:
    """``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` as ``torchrun`` sets them (rank 0 of 1 if unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    return Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """``cuda:LOCAL_RANK`` for a CUDA run under ``torchrun``, else ``device`` unchanged."""
    if ranks.active and device.type == "cuda":
        if device.index not in (None, ranks.local_rank):
            raise ConfigError(
                f"--device {device} under torchrun: each rank uses cuda:LOCAL_RANK; pass "
                "--device cuda"
            )
        return torch.device("cuda", ranks.local_rank)
    return device


def setup(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group when launched by ``torchrun``; returns the ranks and this rank's
    device (``cuda:LOCAL_RANK`` on CUDA)."""
    ranks = ranks_from_env()
    if not ranks.active:
        return ranks, device
    device = rank_device(device, ranks)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            rank=ranks.rank,
            world_size=ranks.world,
            timeout=WAIT,
            device_id=device if device.type == "cuda" else None,
        )
    return ranks, device


def teardown(ranks: Ranks) -> None:
    """Leave the process group (after the last collective of this rank)."""
    if ranks.active and dist.is_initialized():
        dist.destroy_process_group()


def check_batch_size(batch_size: int, ranks: Ranks) -> int:
    """Rows per rank: ``--batch_size`` is the global batch, split evenly over the ranks.

    Raises:
        ConfigError: If ``--batch_size`` is not a multiple of the world size.
    """
    if batch_size % ranks.world:
        raise ConfigError(
            f"--batch_size {batch_size} is the global batch and must split evenly over "
            f"{ranks.world} ranks; pass a multiple of {ranks.world}"
        )
    return batch_size // ranks.world


def broadcast_modules(modules: Mapping[str, Any], ranks: Ranks) -> None:
    """Copy rank 0's parameters and buffers (target copies included) to every rank."""
    if not ranks.active:
        return
    with torch.no_grad():
        for module in modules.values():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)


def _average(grad: torch.Tensor, world: int) -> None:
    dist.all_reduce(grad, op=dist.ReduceOp.SUM)
    grad.div_(world)


def average_gradients(modules: Mapping[str, Any], ranks: Ranks) -> list[Any]:
    """Hook every distinct parameter that requires grad so backward leaves the ranks' mean.

    Returns:
        The hook handles (``handle.remove()`` undoes them); empty on one rank.
    """
    if not ranks.active:
        return []
    handles, seen = [], set()
    for module in modules.values():
        for param in module.parameters():
            if param.requires_grad and id(param) not in seen:  # shared once, else averaged twice
                seen.add(id(param))
                handles.append(
                    param.register_post_accumulate_grad_hook(
                        lambda p: _average(p.grad, ranks.world)
                    )
                )
    return handles


def broadcast_flag(value: bool, ranks: Ranks) -> bool:
    """Rank 0's ``value`` on every rank (the early-stopping decision)."""
    if not ranks.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def gather(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order, on every rank."""
    if not ranks.active:
        return [value]
    out: list[Any] = [None] * ranks.world
    dist.all_gather_object(out, value)
    return out


def mean_losses(losses: Mapping[str, float], ranks: Ranks) -> dict[str, float]:
    """Each loss averaged over the ranks (what the global batch's loss is, for the log)."""
    if not ranks.active or not losses:
        return dict(losses)
    keys = sorted(losses)
    values = torch.tensor([losses[k] for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        values = values.cuda()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return dict(zip(keys, (values / ranks.world).tolist(), strict=True))


def parameter_digest(modules: Mapping[str, Any]) -> str:
    """sha256 over every module's state (names and bytes, in a fixed order)."""
    digest = hashlib.sha256()
    for name, module in sorted(modules.items()):
        for key, value in module.state_dict().items():
            digest.update(f"{name}.{key}".encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class RankTrace:
    """What ``OFFGEN_DDP_TRACE`` asks each rank to record (nothing when it is unset)."""

    ranks: Ranks
    folder: Path | None = field(
        default_factory=lambda: Path(os.environ[TRACE_ENV]) if os.environ.get(TRACE_ENV) else None
    )
    rows: list[Any] = field(default_factory=list)

    def record(self, update: int, batch: Mapping[str, Any]) -> None:
        """Remember which rows update ``update`` trained on."""
        if self.folder is None or "timestep" not in batch:
            return  # transitions only: a window's rows are its whole span
        columns = [batch[k].cpu().numpy() for k in ("source", "episode", "timestep")]
        self.rows.append(np.stack([np.full_like(columns[0], update), *columns], axis=1))

    def write(self, modules: Mapping[str, Any]) -> None:
        """Write this rank's parameter digest and sampled rows."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / f"rank{self.ranks.rank}"
        stem.with_suffix(".sha256").write_text(parameter_digest(modules) + "\n")
        rows = np.concatenate(self.rows) if self.rows else np.zeros((0, 4), np.int64)
        np.save(stem.with_suffix(".samples.npy"), rows)
