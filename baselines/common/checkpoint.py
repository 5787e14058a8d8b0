"""Checkpoints of a training run: the predecessor's layout, offgen's safe format.

Layout under ``<model_saving_dir>/<game>/<xpid>/``::

    rolling/model.pt                      everything needed to resume (rewritten every update)
    checkpoint/model_<update>_<ret>.pt    weights every --archive_interval updates
    final/model_<ret>.pt                  weights at the end of training

Every file is written by :func:`offgen.policies.save_checkpoint` (atomically: a crash leaves the
previous file or none, never a truncated one) and holds only tensors and plain Python values, so
``torch.load(weights_only=True)`` reads it and :func:`offgen.policies.load_policy`,
``offgen-collect --checkpoint_path`` and ratio mode load it as a policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offgen._optional import require
from offgen.policies import CheckpointError, save_checkpoint

__all__ = [
    "TrainingState",
    "archive_name",
    "final_name",
    "load_training_state",
    "save_policy",
    "save_training_state",
]

_TRAINING_KEYS = ("model_state_dict", "optimizer_state_dict", "update", "config", "trainer")


def _format_return(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"a checkpoint name needs a finite return, got {value}")
    return f"{value:.2f}"


def archive_name(update: int, measured_return: float) -> str:
    """``model_<update>_<return:.2f>.pt`` (the predecessor's archive name)."""
    return f"model_{update}_{_format_return(measured_return)}.pt"


def final_name(measured_return: float) -> str:
    """``model_<return:.2f>.pt`` (the predecessor's final name)."""
    return f"model_{_format_return(measured_return)}.pt"


@dataclass(frozen=True)
class TrainingState:
    """What ``rolling/model.pt`` holds beyond the weights.

    Attributes:
        model_state_dict: Network weights.
        optimizer_state_dict: Optimizer state (Adam moments and step counts).
        update: Number of completed updates.
        config: The run's settings (plain values) as saved.
        trainer: The trainer's own state (normaliser, RNG, counters), plain values and tensors.
    """

    model_state_dict: Mapping[str, Any]
    optimizer_state_dict: Mapping[str, Any]
    update: int
    config: Mapping[str, Any]
    trainer: Mapping[str, Any]


def save_training_state(
    path: Path,
    model: Any,
    optimizer: Any,
    *,
    update: int,
    config: Mapping[str, Any],
    trainer: Mapping[str, Any],
) -> Path:
    """Write ``rolling/model.pt`` atomically: weights, optimizer, update, settings, trainer state."""
    return save_checkpoint(
        path,
        model,
        step=update,
        optimizer=optimizer,
        extra={
            "step_unit": "update",
            "update": int(update),
            "config": dict(config),
            "trainer": dict(trainer),
        },
    )


def save_policy(
    path: Path, model: Any, *, update: int, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write a weights-only policy checkpoint (``checkpoint/`` and ``final/``) atomically."""
    return save_checkpoint(
        path, model, step=update, extra={"step_unit": "update", **dict(extra or {})}
    )


def load_training_state(path: Path) -> TrainingState:
    """Read ``rolling/model.pt`` with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: If the file is unreadable or is not a training state of a baselines run.
    """
    torch = require("torch", "torch")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: cannot load the resume state with torch.load(weights_only=True) "
            f"({type(exc).__name__}); delete the run folder's rolling/ to start over, or drop "
            "--resume and pick a new --xpid"
        ) from exc
    missing = [k for k in _TRAINING_KEYS if not isinstance(raw, Mapping) or k not in raw]
    if missing:
        raise CheckpointError(
            f"{path}: not a baselines training state (missing {', '.join(missing)}); it cannot be "
            "resumed. Pick a new --xpid or remove the folder."
        )
    return TrainingState(
        model_state_dict=raw["model_state_dict"],
        optimizer_state_dict=raw["optimizer_state_dict"],
        update=int(raw["update"]),
        config=dict(raw["config"]),
        trainer=dict(raw["trainer"]),
    )
