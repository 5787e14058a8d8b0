"""Checkpoints of an offline run: the resumable state and the best model.

Layout under ``<save_path>/<game>/<xpid>/``::

    rolling/model.pt   everything to resume: every module and optimizer of the algorithm, the
                       sampler's position, torch's RNG states, the counters and the best model so
                       far (written every --ckpt_freq epochs and at the end)
    best/model.pt      the weights with the best validation return (the last ones when the run
                       never evaluated): what evaluate_offline evaluates

Both are written atomically (:func:`offgen._io.atomic_open`: a temporary file renamed over the old
one), so a run killed at any moment leaves the previous complete file or none, never one that loads
but is wrong. They hold only tensors and plain values (``torch.load(weights_only=True)`` reads
them). The weights of all modules are one flat ``model_state_dict`` keyed ``<module>.<param>``
and ``arch`` names ``offline-<algo>``, so ``offgen evaluate`` recognises the file and says, in one
line, to evaluate it with ``evaluate_offline`` instead of running it as a PPO network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from offgen._io import atomic_open
from offgen.policies import CheckpointError

__all__ = [
    "BEST",
    "ROLLING",
    "SavedRun",
    "load_run_file",
    "module_states",
    "restore_modules",
    "save_run_file",
]

ROLLING = Path("rolling") / "model.pt"
BEST = Path("best") / "model.pt"
FORMAT = "offgen-offline"


def module_states(modules: Mapping[str, Any]) -> dict[str, Any]:
    """One flat state dict ``<module>.<key>`` of every module (tensors cloned to the CPU)."""
    return {
        f"{name}.{key}": value.detach().to("cpu", copy=True)
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }


def restore_modules(modules: Mapping[str, Any], flat: Mapping[str, Any]) -> None:
    """Load a flat state from :func:`module_states` into ``modules`` (strict: every key used)."""
    parts: dict[str, dict[str, Any]] = {name: {} for name in modules}
    for key, value in flat.items():
        name, _, rest = key.partition(".")
        if name not in parts:
            raise CheckpointError(f"the checkpoint holds module {name!r}, not one of {list(parts)}")
        parts[name][rest] = value
    for name, module in modules.items():
        module.load_state_dict(parts[name])


@dataclass(frozen=True)
class SavedRun:
    """A checkpoint file's contents.

    Attributes:
        algo: The ``--algo`` that wrote it.
        kind: ``"rolling"`` or ``"best"``.
        update: Updates done when it was written.
        config: The run's settings (plain values).
        model_state_dict: Flat weights (:func:`module_states`).
        optimizers: Optimizer states by name (rolling only).
        trainer: The loop's own state (rolling only).
        extra: Further plain values (the best model's validation return).
    """

    algo: str
    kind: str
    update: int
    config: Mapping[str, Any]
    model_state_dict: Mapping[str, Any]
    optimizers: Mapping[str, Any]
    trainer: Mapping[str, Any]
    extra: Mapping[str, Any]


def save_run_file(path: Path, saved: SavedRun) -> Path:
    """Write ``saved`` to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "format_version": 1,
        "arch": {"name": f"offline-{saved.algo}"},
        "algo": saved.algo,
        "kind": saved.kind,
        "step": int(saved.update),
        "step_unit": "update",
        "config": dict(saved.config),
        "model_state_dict": dict(saved.model_state_dict),
        "optimizers": dict(saved.optimizers),
        "trainer": dict(saved.trainer),
        "extra": dict(saved.extra),
    }
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)
    return path


def load_run_file(path: Path) -> SavedRun:
    """Read a file written by :func:`save_run_file` (``weights_only=True``).

    Raises:
        CheckpointError: If the file is missing, unreadable or not an offline run's checkpoint.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint; train the run first (train_offline)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: cannot be loaded ({type(exc).__name__}); it is damaged: delete the run "
            "folder to start over, or choose another --xpid"
        ) from exc
    if not isinstance(raw, Mapping) or raw.get("format") != FORMAT:
        what = raw.get("arch", {}).get("name", "?") if isinstance(raw, Mapping) else "?"
        raise CheckpointError(
            f"{path}: not an offline-baselines checkpoint (architecture {what!r}); evaluate it with "
            "the code that trained it"
        )
    return SavedRun(
        algo=str(raw["algo"]),
        kind=str(raw["kind"]),
        update=int(raw["step"]),
        config=dict(raw["config"]),
        model_state_dict=raw["model_state_dict"],
        optimizers=dict(raw["optimizers"]),
        trainer=dict(raw["trainer"]),
        extra=dict(raw["extra"]),
    )
