"""Torch device selection and a deliberate torch thread count beside envpool.

Why threads matter: envpool steps the games on its own threads. With torch's default (one thread
per core) on a 2-core machine, batched policy inference beside envpool ran 2.7-20x slower than with
one thread (measured while evaluating and collecting), because the two thread pools fight for the
same cores. The PPO update, in contrast, runs while envpool is idle and gains from every core. So a
:class:`ThreadPlan` uses one thread while the environments run (rollouts, evaluation) and all cores
for the update, unless ``--torch_threads N`` fixes both to ``N``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from baselines.common.errors import ConfigError, DeviceError
from offgen._allocator import heap_allocations
from offgen._optional import require

__all__ = ["DEVICES", "ThreadPlan", "flush_denormals", "offline_updates", "select_device"]

DEVICES = ("cpu", "cuda", "auto")


def select_device(name: str) -> Any:
    """The ``torch.device`` for ``cpu``, ``cuda`` (or ``cuda:K``) or ``auto`` (cuda if present).

    Raises:
        DeviceError: If cuda is asked for and torch sees no CUDA GPU.
        ConfigError: For any other name.
    """
    torch = require("torch", "torch")
    key = name.strip().lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "cuda" or key.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = (
                "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            )
            raise DeviceError(
                f"--device {name}: torch {torch.__version__} ({build}) sees no CUDA GPU on this "
                "machine; use --device cpu (or auto), or install a CUDA build of torch"
            )
        return torch.device(key)
    raise ConfigError(f"unknown --device {name!r}; use one of {', '.join(DEVICES)}")


@dataclass(frozen=True)
class ThreadPlan:
    """Torch intra-op threads while environments run and while the network trains.

    Attributes:
        acting: Threads during rollouts and evaluation (beside envpool).
        learning: Threads during the gradient update (envpool idle).
    """

    acting: int
    learning: int

    @classmethod
    def choose(cls, torch_threads: int) -> ThreadPlan:
        """``torch_threads > 0`` fixes both; ``0`` (auto) is 1 while acting, all cores learning.

        Raises:
            ConfigError: If ``torch_threads`` is negative.
        """
        if torch_threads < 0:
            raise ConfigError(f"--torch_threads must be >= 0 (0 = auto), got {torch_threads}")
        if torch_threads:
            return cls(torch_threads, torch_threads)
        return cls(1, max(1, len(os.sched_getaffinity(0))))

    def acting_mode(self) -> None:
        """Switch torch to the acting thread count."""
        require("torch", "torch").set_num_threads(self.acting)

    def learning_mode(self) -> None:
        """Switch torch to the learning thread count."""
        require("torch", "torch").set_num_threads(self.learning)


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats as zero in this thread while training, and switch it off after.

    Small-batch IMPALA steps ran 10-25x slower on denormal floats on a 2-core CPU (REFERENCE
    section 7). The switch is process state (the thread's MXCSR) that outlives the trainer: left on,
    it changes float comparisons for everything the process does next (offgen's decoders compare
    bits for that reason), so it is scoped to training. torch has no getter, so on exit it goes back
    to torch's default, off.
    """
    torch = require("torch", "torch")
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextmanager
def offline_updates() -> Iterator[None]:
    """The process settings offline training runs its updates under (and its benchmark mirrors).

    Denormal floats flushed (:func:`flush_denormals`), and every allocation from glibc's heap:
    an update's largest activations otherwise came from a fresh ``mmap`` each update
    (``offgen._allocator.heap_allocations``). Both are restored on exit.
    """
    with flush_denormals(), heap_allocations():
        yield
