"""The offgen episode schema.

An :class:`Episode` is one Procgen episode of ``T`` steps:

* ``observations``: ``(T + 1, 64, 64, 3)`` ``uint8``, **HWC**. Row ``T`` is the frame after the last
  action. Episodes collected by offgen (envpool) hold the true final frame there; episodes read from
  the predecessor's files hold the next level's first frame (Procgen auto-reset) and are flagged with
  ``final_frame_is_true=False``.
* ``actions``: ``(T,)`` ``uint8`` in ``[0, 15)``.
* ``rewards``: ``(T,)`` ``float32``.
* ``terminated`` / ``truncated``: how the episode ended (the game's own time limit is ``truncated``).
* ``level_seed``, ``game`` (one of the 16 canonical names of :data:`offgen.registry.GAMES`),
  ``policy_id`` and free-form ``provenance``.

Why HWC: consecutive 64x64x3 frames compress 1.3-1.4x better with zstd in HWC than in CHW on our
measurements (the three colour planes of a pixel are stored together), and HWC is what envpool's
renderer and image tools use. Samplers convert to CHW on request (``layout="CHW"``) once, as they
decode frames (the RAM array, a memmap cache file per layout, each stream unit), so CHW batches
cost what HWC batches cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from offgen.data.exact import cast_exactly
from offgen.errors import SchemaError, UnknownNameError
from offgen.registry import GAMES, resolve_game

__all__ = [
    "FRAME_SHAPE_CHW",
    "FRAME_SHAPE_HWC",
    "NUM_ACTIONS",
    "Episode",
    "FrameSource",
    "Layout",
    "frames_placeholder",
    "make_episode",
    "to_layout",
]

FRAME_SHAPE_HWC: tuple[int, int, int] = (64, 64, 3)
FRAME_SHAPE_CHW: tuple[int, int, int] = (3, 64, 64)
NUM_ACTIONS = 15

Layout = Literal["HWC", "CHW"]

UInt8Array = npt.NDArray[np.uint8]
Float32Array = npt.NDArray[np.float32]


class FrameSource(Protocol):
    """An episode's frames, produced on demand instead of held in memory.

    :meth:`offgen.data.StoreWriter.write` accepts one (``frames=``) and calls :meth:`fill` in a
    compression thread once the chunk the frames land in is complete, so the frames are made
    straight in the chunk buffer they are compressed from (legacy conversion decodes the
    predecessor's float frames this way).
    """

    def __len__(self) -> int:
        """Number of frames (``T + 1``)."""
        ...

    def fill(self, start: int, out: UInt8Array) -> None:
        """Write frames ``start .. start + len(out)`` into ``out`` (``(n, 64, 64, 3)`` uint8 HWC).

        Raises:
            SchemaError: If the frames are invalid (the message names their source).
        """
        ...


def frames_placeholder(count: int) -> UInt8Array:
    """Read-only all-zero ``(count, 64, 64, 3)`` uint8 frames that take no memory.

    The ``observations`` of an :class:`Episode` whose real frames come from a
    :class:`FrameSource`: the episode stays valid (shapes and dtypes) without holding its frames.
    """
    return np.broadcast_to(np.zeros((), dtype=np.uint8), (count, *FRAME_SHAPE_HWC))


class StepTotals:
    """``length`` and ``episode_return`` of anything holding ``actions`` and ``rewards`` per step
    (an :class:`Episode`, or a collected episode before it is validated)."""

    actions: npt.NDArray[Any]
    rewards: npt.NDArray[Any]

    @property
    def length(self) -> int:
        """Number of steps ``T``."""
        return int(self.actions.shape[0])

    @property
    def episode_return(self) -> float:
        """Undiscounted sum of rewards (accumulated in float64)."""
        return float(self.rewards.sum(dtype=np.float64))


@dataclass(frozen=True)
class Episode(StepTotals):
    """One validated episode (see the module docstring for the exact shapes and dtypes).

    Build one with :func:`make_episode`, which converts common inputs (CHW frames, float frames
    from the predecessor's files, ``(T, 1)`` action columns) before validating.
    """

    observations: UInt8Array
    actions: UInt8Array
    rewards: Float32Array
    terminated: bool
    truncated: bool
    level_seed: int
    game: str
    policy_id: str = "unknown"
    final_frame_is_true: bool = True
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)


def _validate(ep: Episode) -> None:
    obs, act, rew = ep.observations, ep.actions, ep.rewards
    for name, arr in (("observations", obs), ("actions", act), ("rewards", rew)):
        if not isinstance(arr, np.ndarray):
            raise SchemaError(f"episode {name} must be a numpy array, got {type(arr).__name__}")
    if obs.dtype != np.uint8:
        raise SchemaError(
            f"observations must be uint8, got {obs.dtype}; use make_episode() to cast frames "
            "stored as float 0-255 (the predecessor's files)"
        )
    if obs.ndim != 4 or obs.shape[1:] != FRAME_SHAPE_HWC:
        raise SchemaError(
            f"observations must have shape (T+1, 64, 64, 3) (HWC), got {obs.shape}; "
            "use make_episode(..., layout='CHW') for channel-first frames"
        )
    if act.ndim != 1 or act.dtype != np.uint8:
        raise SchemaError(f"actions must be a 1-D uint8 array, got {act.dtype} {act.shape}")
    if rew.ndim != 1 or rew.dtype != np.float32:
        raise SchemaError(f"rewards must be a 1-D float32 array, got {rew.dtype} {rew.shape}")
    steps = act.shape[0]
    if steps < 1:
        raise SchemaError("an episode needs at least one step")
    if rew.shape[0] != steps:
        raise SchemaError(f"length mismatch: {steps} actions but {rew.shape[0]} rewards")
    if obs.shape[0] != steps + 1:
        raise SchemaError(
            f"length mismatch: {steps} actions need {steps + 1} observations (T+1), "
            f"got {obs.shape[0]}"
        )
    if steps and int(act.max()) >= NUM_ACTIONS:
        raise SchemaError(f"action {int(act.max())} out of range [0, {NUM_ACTIONS})")
    if not np.isfinite(rew).all():
        raise SchemaError("rewards contain NaN or infinity")
    if ep.terminated and ep.truncated:
        raise SchemaError("an episode cannot be both terminated and truncated")
    if not isinstance(ep.game, str) or ep.game not in GAMES:
        raise SchemaError(_game_problem(ep.game))


def _game_problem(game: object) -> str:
    """Why ``game`` is not a canonical game name (with the closest valid one)."""
    if not isinstance(game, str) or not game:
        return f"episode game must be one of the 16 Procgen games, got {game!r}"
    try:
        canonical = resolve_game(game).name
    except UnknownNameError as exc:
        return f"episode {exc}"
    return f"episode game must be the canonical name {canonical!r}, got {game!r}"


def to_layout(frames: npt.NDArray[Any], source: Layout, target: Layout) -> npt.NDArray[Any]:
    """Return ``frames`` (``(..., H, W, C)`` or ``(..., C, H, W)``) in the ``target`` layout."""
    if source == target:
        return frames
    if source == "CHW":
        return np.moveaxis(frames, -3, -1)
    return np.moveaxis(frames, -1, -3)


def make_episode(
    observations: npt.ArrayLike,
    actions: npt.ArrayLike,
    rewards: npt.ArrayLike,
    *,
    game: str,
    level_seed: int = -1,
    terminated: bool = True,
    truncated: bool = False,
    policy_id: str = "unknown",
    layout: Layout = "HWC",
    final_frame_is_true: bool = True,
    provenance: Mapping[str, Any] | None = None,
) -> Episode:
    """Build a validated :class:`Episode` from loosely typed arrays.

    Frames in CHW are moved to HWC; float frames holding 0-255 (the predecessor's files) are cast to
    uint8 after checking they are whole numbers in range; ``(T, 1)`` action and reward columns are
    flattened; integer actions are checked against ``[0, 15)`` before narrowing to uint8; a game
    alias (``"CoinrunEasy-v0"``) becomes its canonical name.

    Raises:
        SchemaError: If the inputs cannot form a valid episode.
    """
    obs = np.asarray(observations)
    if obs.ndim == 4 and layout == "CHW":
        obs = np.moveaxis(obs, 1, -1)
    if obs.dtype != np.uint8:
        if obs.dtype.kind not in "fiu":
            raise SchemaError(f"observations have unsupported dtype {obs.dtype}")
        frames = np.empty(obs.shape, dtype=np.uint8)
        if not cast_exactly(obs, frames):
            if obs.dtype.kind == "f":
                raise SchemaError("float observations must hold whole numbers in [0, 255]")
            raise SchemaError("integer observations must lie in [0, 255]")
        obs = frames
    obs = np.ascontiguousarray(obs)
    act = np.asarray(actions)
    if act.ndim == 2 and act.shape[1] == 1:
        act = act[:, 0]
    if act.dtype.kind == "f":
        whole = np.empty(act.shape, dtype=np.int64)
        if not cast_exactly(act, whole):
            raise SchemaError("actions must be whole numbers")
        act = whole
    elif act.dtype.kind not in "iub":
        raise SchemaError(f"actions have unsupported dtype {act.dtype}")
    if act.size and (act.min() < 0 or act.max() >= NUM_ACTIONS):
        raise SchemaError(
            f"action out of range [0, {NUM_ACTIONS}): min {act.min()}, max {act.max()}"
        )
    rew = np.asarray(rewards)
    if rew.ndim == 2 and rew.shape[1] == 1:
        rew = rew[:, 0]
    if isinstance(game, str) and game not in GAMES:
        try:
            game = resolve_game(game).name  # "CoinrunEasy-v0", "Coinrun" -> "coinrun"
        except UnknownNameError as exc:
            raise SchemaError(f"episode {exc}") from exc
    return Episode(
        observations=obs,
        actions=act.astype(np.uint8),
        rewards=rew.astype(np.float32),
        terminated=bool(terminated),
        truncated=bool(truncated),
        level_seed=int(level_seed),
        game=game,
        policy_id=policy_id,
        final_frame_is_true=final_frame_is_true,
        provenance=dict(provenance or {}),
    )
