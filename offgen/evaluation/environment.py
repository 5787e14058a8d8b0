"""Which Procgen environment a policy is evaluated in, and how it sees its observations.

:func:`environment_of` rebuilds the environment a store's episodes came from (as Minari's
``recover_environment()`` does): the game and distribution mode from ``info.json``, the level
range from ``info.json["env"]`` (stores written by the collector or the rollout recorder) or, for
stores converted or downloaded from the published archives, whose ``env`` lacks the game and may
lack the range, from the dataset registry (``expert_1M`` was collected on levels 0-199,
``level_40_E`` on 0-39). The recovered range is what ``train`` means when evaluating against that
dataset; ``validation``, ``test``, ``full`` and ``level_K`` keep their fixed meanings.

The observation format is the sampler's (:mod:`offgen.data.sampling.gather`): ``HWC`` or ``CHW``
frames, and with ``frame_stack = k > 1`` a stack axis after the batch axis holding the last ``k``
frames oldest first, the positions before an episode's first frame repeating that first frame. A
policy trained on ``ds.transitions(frame_stack=4, layout="CHW")`` is evaluated with
``environment_of(ds, frame_stack=4, layout="CHW")`` and sees arrays built the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.data.info import StoreInfo
from offgen.data.schema import Layout
from offgen.envs.procgen import (
    EnvSpec,
    LevelRange,
    make_env,
    resolve_distribution_mode,
    resolve_split,
)
from offgen.errors import EnvSpecError, UnknownNameError
from offgen.registry import resolve_dataset, resolve_game

__all__ = ["EvalEnvironment", "FrameStacker", "environment_of", "registered_environment"]

_TRAIN = LevelRange(0, 200)


@dataclass(frozen=True)
class EvalEnvironment:
    """Game, distribution mode, training levels and observation format of an evaluation.

    Attributes:
        game: Lower-case game name.
        distribution_mode: Procgen distribution mode.
        train_levels: The levels the ``train`` split plays (the dataset's own range when recovered
            from a store; levels 0-199 otherwise).
        layout: ``"HWC"`` or ``"CHW"`` frames, as the policy was trained on.
        frame_stack: Frames per observation (``1``: a single frame, no stack axis).
        source: Where the facts came from (``"argument"``, ``"info.json"``, ``"registry:<name>"``).
    """

    game: str
    distribution_mode: str = "easy"
    train_levels: LevelRange = _TRAIN
    layout: Layout = "HWC"
    frame_stack: int = 1
    source: str = "argument"

    def __post_init__(self) -> None:
        object.__setattr__(self, "game", resolve_game(self.game).name)
        if self.layout not in ("HWC", "CHW"):
            raise UnknownNameError(f"unknown layout {self.layout!r}; use HWC or CHW")
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {self.frame_stack}")
        self.spec("train")  # an impossible game / mode / range fails here, before any episode

    def levels(self, split: str) -> LevelRange:
        """The level range a split plays (``train``: :attr:`train_levels`).

        Raises:
            UnknownNameError: For an unknown split name.
        """
        key = resolve_split(split)
        if split.strip().lower() == "train":
            return self.train_levels
        return key

    def spec(self, split: str) -> EnvSpec:
        """The :class:`~offgen.envs.EnvSpec` of a split (game, mode, level range)."""
        levels = self.levels(split)
        return EnvSpec(
            self.game,
            resolve_distribution_mode(self.distribution_mode),
            levels.start_level,
            levels.num_levels,
            split,
        )

    def make(self, num_envs: int = 1, seed: int = 0, split: str = "train") -> Any:
        """The envpool environment of a split in this format's layout (the recovered environment)."""
        return make_env(self.spec(split), num_envs, seed, layout=self.layout)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as written into evaluation reports."""
        return {
            "game": self.game,
            "distribution_mode": self.distribution_mode,
            "train_levels": {
                "start_level": self.train_levels.start_level,
                "num_levels": self.train_levels.num_levels,
            },
            "layout": self.layout,
            "frame_stack": self.frame_stack,
            "source": self.source,
        }


def _info_of(dataset: Any) -> tuple[StoreInfo, str]:
    if isinstance(dataset, (str, os.PathLike)):
        from offgen.data.store import OffgenStore

        store = OffgenStore(Path(dataset))
        return store.info, str(dataset)
    info = getattr(dataset, "info", None)
    if not isinstance(info, StoreInfo):
        raise TypeError(f"not a dataset or store: {type(dataset).__name__}")
    root = getattr(getattr(dataset, "store", dataset), "location", None)
    return info, str(root if root is not None else "the dataset")


def environment_of(
    dataset: Any, *, frame_stack: int = 1, layout: Layout = "HWC"
) -> EvalEnvironment:
    """The environment a store's episodes came from, to evaluate policies trained on it.

    Args:
        dataset: An :class:`~offgen.data.OffgenDataset`, an :class:`~offgen.data.OffgenStore`, or a
            store path.
        frame_stack: Frames per observation the policy was trained with.
        layout: Frame layout the policy was trained with.

    Raises:
        EnvSpecError: If neither the store nor the registry knows the level range (a converted
            store of an unnamed dataset); the message says how to give it.
    """
    info, where = _info_of(dataset)
    env = info.env.to_json()
    game = str(env.get("game") or info.game)
    mode = str(env.get("distribution_mode") or "easy")
    source = "info.json"
    if "start_level" not in env or "num_levels" not in env:
        name = info.dataset
        if not name:
            raise EnvSpecError(
                f"{where}: the store records no level range (info.json env has no start_level / "
                "num_levels) and names no published dataset; evaluate with "
                "evaluate(policy, game=...) and the split you mean, or reconvert with --dataset"
            )
        try:
            registered = resolve_dataset(str(name))
        except UnknownNameError as exc:
            raise EnvSpecError(
                f"{where}: the store records no level range and its dataset {name!r} is not in "
                "the registry; evaluate with evaluate(policy, game=...) and the split you mean"
            ) from exc
        env = {**registered.env_options, **env}
        source = f"registry:{registered.name}"
    train = LevelRange(int(env["start_level"]), int(env["num_levels"]))
    return EvalEnvironment(game, mode, train, layout, frame_stack, source)


def registered_environment(
    name: str, game: str, *, frame_stack: int = 1, layout: Layout = "HWC"
) -> EvalEnvironment:
    """The environment of a published dataset by name (``expert_1M``, ``level_40_E``, ...), for
    evaluating without its files: the registry knows every published dataset's level range.

    Raises:
        UnknownNameError: For an unknown dataset or game.
    """
    spec = resolve_dataset(name)
    levels = LevelRange(spec.start_level, spec.num_levels)
    return EvalEnvironment(game, "easy", levels, layout, frame_stack, f"registry:{spec.name}")


class FrameStacker:
    """Builds the policy's observation batch from the environments' latest frames.

    Keeps each slot's last ``k`` HWC frames; :meth:`start` fills a slot with copies of an episode's
    first frame (the sampler's padding), :meth:`push` appends a frame.
    """

    def __init__(self, slots: int, frame_stack: int, layout: Layout) -> None:
        self.k = frame_stack
        self.layout = layout
        self.frames = np.zeros((slots, frame_stack, 64, 64, 3), dtype=np.uint8)

    def start(self, slot: int, frame: npt.NDArray[np.uint8]) -> None:
        """Begin an episode in ``slot`` with its first frame."""
        self.frames[slot] = frame

    def push(self, slot: int, frame: npt.NDArray[np.uint8]) -> None:
        """Append the slot's newest frame (dropping the oldest)."""
        if self.k > 1:
            self.frames[slot, :-1] = self.frames[slot, 1:]
        self.frames[slot, -1] = frame

    def batch(self, slots: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """The observations of ``slots``: ``(B, [k,] 64, 64, 3)`` or ``(B, [k,] 3, 64, 64)``."""
        out = self.frames[slots]
        if self.k == 1:
            out = out[:, 0]
        if self.layout == "CHW":
            out = np.ascontiguousarray(np.moveaxis(out, -1, -3))
        return out
