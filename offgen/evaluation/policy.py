"""Turn what a user names (``random``, a checkpoint file, a run folder) into a policy to evaluate."""

from __future__ import annotations

import os
from pathlib import Path

from offgen.policies.base import Policy, RandomPolicy
from offgen.policies.torch_policy import CheckpointError, Precision, load_policy, load_state_dict

__all__ = ["resolve_policy"]

_ARCH = "impala"


def _checkpoint_in(folder: Path) -> Path:
    # A training run folder (predecessor layout, or baselines'): evaluate its final model.
    finals = sorted((folder / "final").glob("*.pt"))
    if len(finals) == 1:
        return finals[0]
    rolling = folder / "rolling" / "model.pt"
    if not finals and rolling.is_file():
        return rolling
    raise CheckpointError(
        f"{folder}: a folder, not a checkpoint, and it holds {len(finals)} final/*.pt models; pass "
        "one .pt file as CHECKPOINT_OR_POLICY"
    )


def resolve_policy(name: str | os.PathLike[str], precision: Precision = "fp32") -> Policy:
    """``"random"`` (uniform random actions), a ``.pt`` checkpoint, or a run folder's final model.

    ``precision`` is the checkpoint's inference arithmetic (:data:`offgen.policies.Precision`).

    Raises:
        CheckpointError: If the file is missing, is not a policy checkpoint, or was saved by
            another architecture than the IMPALA actor-critic (one line saying what to do).
    """
    if str(name).strip().lower() == "random":
        return RandomPolicy()
    path = Path(name)
    if path.is_dir():
        path = _checkpoint_in(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint; CHECKPOINT_OR_POLICY is a .pt file, a run folder with "
            "final/, or 'random'"
        )
    _state, meta = load_state_dict(path)
    arch = meta.get("arch", {}).get("name", _ARCH)
    if arch != _ARCH:
        raise CheckpointError(
            f"{path}: saved by architecture {arch!r}; offgen evaluate runs the IMPALA actor-critic "
            f"({_ARCH!r}) - evaluate this model with the code that trained it, through "
            "offgen.evaluation.evaluate(policy, ...)"
        )
    return load_policy(path, precision=precision)
