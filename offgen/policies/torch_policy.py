"""PyTorch behaviour policies loaded from checkpoints (always ``torch.load(weights_only=True)``).

Accepted checkpoint layouts (a ``.pt`` file):

* the predecessor's PPO: a dict with ``"model_state_dict"`` (or ``"model"`` / ``"state_dict"``),
  optionally ``"optimizer_state_dict"``/``"optimizer"`` and ``"epoch"``/``"update"``; state-dict
  keys as in :mod:`offgen.policies.impala` (a ``module.`` prefix from DataParallel is stripped);
* offgen's own (:func:`save_checkpoint`): ``{"format": "offgen-policy", "format_version": 1,
  "model_state_dict": ..., "arch": {...}, "step": int}``;
* a bare state dict.

The training step comes from ``step``/``update``/``epoch`` in the file, else from the predecessor's
file name ``model_<update>_<return>.pt``. A file that cannot be loaded, or whose weights do not fit
the network, raises :class:`CheckpointError` - never a silent random policy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from offgen._io import atomic_open, sha256_file
from offgen._optional import require
from offgen.errors import OffgenError
from offgen.policies.base import Actions, Obs, Uniforms, sample_categorical
from offgen.policies.impala import build_impala, impala_arch_from_state_dict

__all__ = [
    "OFFGEN_CHECKPOINT_FORMAT",
    "CheckpointError",
    "Precision",
    "TorchPolicy",
    "load_policy",
    "load_state_dict",
    "save_checkpoint",
]

OFFGEN_CHECKPOINT_FORMAT = "offgen-policy"
_STATE_KEYS = ("model_state_dict", "model", "state_dict")
_STEP_KEYS = ("step", "update", "epoch")
Precision = Literal["fp32", "bf16"]
"""Inference arithmetic: ``fp32`` (exact, the default) or ``bf16`` (``torch.autocast`` to
bfloat16: IMPALA inference ran 1.9x faster at batch 64 on this project's CPU, which has AMX; on a
CPU without bfloat16 instructions it is slower). A greedy policy's action can differ from fp32 where
two actions are nearly tied."""

_NAME = re.compile(r"^model_(?:(?P<update>\d+)_)?(?P<ret>-?\d+(?:\.\d+)?)\.pt$")


class CheckpointError(OffgenError):
    """A policy checkpoint is missing, unreadable, or does not fit the network."""


def _parse_name(path: Path) -> tuple[int | None, float | None]:
    match = _NAME.match(path.name)
    if not match:
        return None, None
    update = int(match["update"]) if match["update"] else None
    return update, float(match["ret"])


def load_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load a checkpoint's model weights and its metadata (step, arch, format) safely.

    Returns:
        ``(state_dict, metadata)``.

    Raises:
        CheckpointError: If the file is missing, not loadable with ``weights_only=True``, or holds no
            recognisable state dict.
    """
    torch = require("torch", "torch")
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{file}: checkpoint not found; check --checkpoint_path")
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{file}: cannot load the checkpoint with torch.load(weights_only=True) "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). offgen never "
            "unpickles code; re-save the weights as a plain state dict (torch.save(model."
            "state_dict(), path))."
        ) from exc
    meta: dict[str, Any] = {}
    state: Any = None
    if isinstance(raw, Mapping):
        for key in _STATE_KEYS:
            if isinstance(raw.get(key), Mapping):
                state = raw[key]
                break
        if state is None and raw and all(torch.is_tensor(v) for v in raw.values()):
            state = raw
        for key in _STEP_KEYS:
            value = raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                meta["step"] = int(value)
                break
        if isinstance(raw.get("arch"), Mapping):
            meta["arch"] = dict(raw["arch"])
        meta["format"] = raw.get("format", "predecessor")
    if state is None:
        raise CheckpointError(
            f"{file}: no model weights found; expected a dict with one of {list(_STATE_KEYS)} or "
            "a bare state dict"
        )
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    update, name_return = _parse_name(file)
    if "step" not in meta and update is not None:
        meta["step"] = update
    if name_return is not None:
        meta["name_return"] = name_return
    return state, meta


def inference_rows(n: int) -> int:
    """The batch size a batch of ``n`` observations is run at: ``n`` up to 4, else ``n`` rounded
    up to a multiple of 8 (the extra rows are zero frames whose outputs are dropped).

    Why: oneDNN builds its convolution kernels for each new batch size, about 7 ms per size for
    the IMPALA network on this project's CPU. An evaluation's batch shrinks through every size as
    its last episodes end, which cost about 0.5 s of a 6.5 s run; with this rounding at most 12
    sizes up to 64 are ever built. The network computes every row on its own: the real rows'
    outputs equal an unpadded run's up to the last-bit rounding that any change of batch size can
    bring, because oneDNN chooses its kernels by batch size (tested; it is the same rounding that
    the shrinking batch of an unpadded evaluation already had).
    """
    return n if n <= 4 else -(-n // 8) * 8


class TorchPolicy:
    """A torch actor-critic used as a behaviour policy (batched, ``torch.inference_mode``).

    Args:
        model: A module mapping ``(N, 3, 64, 64)`` uint8 CHW frames to ``(logits, value)``
            (the policy moves the HWC batch it receives to CHW first).
        policy_id: Identifier recorded with every episode.
        metadata: Facts recorded in ``policies.json``.
        greedy: Take the most likely action instead of sampling.
        precision: Inference arithmetic (:data:`Precision`).

    Raises:
        ValueError: For an unknown precision.
    """

    def __init__(
        self,
        model: Any,
        *,
        policy_id: str,
        metadata: Mapping[str, Any] | None = None,
        greedy: bool = False,
        precision: Precision = "fp32",
    ) -> None:
        if precision not in get_args(Precision):
            raise ValueError(f"unknown precision {precision!r}; use fp32 or bf16")
        self.model = model.eval()
        self.policy_id = policy_id
        self.greedy = greedy
        self.precision: Precision = precision
        self.metadata: dict[str, Any] = {
            **(metadata or {}),
            "greedy": greedy,
            "precision": precision,
        }
        self._torch = require("torch", "torch")

    def with_precision(self, precision: Precision) -> TorchPolicy:
        """The same model and id, acting with ``precision``."""
        meta = {k: v for k, v in self.metadata.items() if k not in ("greedy", "precision")}
        return TorchPolicy(
            self.model,
            policy_id=self.policy_id,
            metadata=meta,
            greedy=self.greedy,
            precision=precision,
        )

    def probabilities(self, obs: Obs) -> npt.NDArray[np.float32]:
        """Action probabilities for a batch of HWC uint8 observations ``(N, 64, 64, 3)``."""
        torch = self._torch
        bf16 = self.precision == "bf16"
        n = len(obs)
        rows = inference_rows(n)
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            batch = torch.from_numpy(np.ascontiguousarray(obs))
            if rows > n:
                batch = torch.cat([batch, batch.new_zeros((rows - n, *batch.shape[1:]))])
            logits, _value = self.model(batch.permute(0, 3, 1, 2))
            probs = torch.softmax(logits[:n].float(), dim=1)
        out: npt.NDArray[np.float32] = probs.numpy()
        return out

    def act(self, obs: Obs, uniforms: Uniforms) -> Actions:
        """Sample (or, if greedy, take the argmax of) the policy's action distribution."""
        probs = self.probabilities(obs)
        if self.greedy:
            greedy: Actions = probs.argmax(axis=1).astype(np.int64)
            return greedy
        return sample_categorical(probs, uniforms)


def load_policy(
    path: str | os.PathLike[str], *, greedy: bool = False, precision: Precision = "fp32"
) -> TorchPolicy:
    """Load an IMPALA PPO checkpoint (predecessor's or offgen's) as a :class:`TorchPolicy`.

    Its id is ``ckpt:<first 12 hex of sha256>``; its metadata records the path, sha256, training step
    and the return written in the file name (not trusted, kept for reference).

    Raises:
        CheckpointError: If the file is missing, unsafe, or its weights do not fit.
    """
    file = Path(path)
    state, meta = load_state_dict(file)
    try:
        arch = impala_arch_from_state_dict(state)
    except KeyError as exc:
        raise CheckpointError(
            f"{file}: not an IMPALA actor-critic state dict (missing {exc}); expected the keys "
            "documented in offgen.policies.impala (base.layer1.0.weight, base.fc.weight, "
            "dist.linear.weight, ...)"
        ) from exc
    model = build_impala(**arch)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{file}: weights do not fit the IMPALA network ({str(exc).splitlines()[0]}...)"
        ) from exc
    sha = sha256_file(file)
    metadata = {
        "kind": "torch",
        "arch": "impala",
        "checkpoint": str(file.resolve()),
        "sha256": sha,
        "step": meta.get("step"),
        "name_return": meta.get("name_return"),
        "checkpoint_format": meta.get("format"),
    }
    return TorchPolicy(
        model,
        policy_id=f"ckpt:{sha[:12]}",
        metadata=metadata,
        greedy=greedy,
        precision=precision,
    )


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Any,
    *,
    step: int,
    optimizer: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` in offgen's checkpoint format (atomically), loadable by :func:`load_policy`.

    Args:
        path: Output ``.pt`` file.
        model: The IMPALA actor-critic (from :func:`build_impala`).
        step: Training step (environment steps or updates; say which in ``extra``).
        optimizer: Optional optimizer whose state is saved too (for resuming training).
        extra: Further JSON-like values (plain types only, so ``weights_only`` loading works).
    """
    torch = require("torch", "torch")
    payload: dict[str, Any] = {
        "format": OFFGEN_CHECKPOINT_FORMAT,
        "format_version": 1,
        "model_state_dict": model.state_dict(),
        "arch": dict(getattr(model, "arch", {"name": "impala"})),
        "step": int(step),
        **dict(extra or {}),
    }
    if optimizer is not None:
        payload["optimizer_state_dict"] = optimizer.state_dict()
    target = Path(path)
    with atomic_open(target, "wb") as handle:
        torch.save(payload, handle)
    return target
