"""Vectorised Procgen environments through envpool, with named level splits.

Observation layout and episode semantics (what the collector relies on):

* envpool's default observation layout is **CHW**, ``(num_envs, 3, 64, 64)`` ``uint8``. Stores hold
  **HWC** (``offgen.data.schema``), so :func:`make_env` asks envpool for ``channel_first=False``
  and gets ``(num_envs, 64, 64, 3)`` ``uint8`` directly: the same pixels, no transpose per frame
  (a strided CHW->HWC copy measured slower than stepping the game). ``layout="CHW"`` gives
  envpool's default.
* On the step that ends an episode (``terminated`` or ``truncated``; the game's own time limit is
  ``truncated``) the observation is the episode's **true final frame**, and ``info["level_seed"]``
  (and ``info["prev_level_seed"]``) hold the finished episode's level seed.
* The **next** step of that environment is a reset step: its action is ignored, it returns the next
  episode's first frame with reward 0, a new ``info["level_seed"]`` and ``info["elapsed_step"] == 0``.
* An episode is fully determined by its level seed and its actions (the game's RNG is reseeded
  from the level seed at each reset), which is what :mod:`offgen.envs.replay` checks.

Level splits (``start_level``, ``num_levels``):

========== =========================== ===========================================================
name       levels                      use
========== =========================== ===========================================================
train      0-199 (0, 200)              training levels of every published dataset
validation 200-249 (200, 50)           model selection
test       250-2^31-2 (250, 2^31-251)  unseen levels, disjoint from train and validation
full       whole distribution (0, 0)   what the predecessor called "test" (it overlaps train)
level_K    0..K-1 (0, K)               K-level sets (``level_1``, ``level_40``: the 100k datasets)
========== =========================== ===========================================================

``num_levels=0`` means the full distribution in Procgen and ignores ``start_level``, which is why
``test`` uses a large ``num_levels`` instead.

Distribution modes. Not every game has every mode: Procgen defines ``memory``, ``extreme`` and
``exploration`` for a subset of games only, and :func:`make_env` checks the combination against
envpool's own registry (:func:`available_modes`) before starting anything, so an unsupported one is
an :class:`EnvSpecError` listing the game's modes instead of envpool's bare ``AssertionError``.
``exploration`` plays **one fixed level per game** (Procgen's exploration level seed);
envpool refuses any level range there with a C++ CHECK failure that *aborts the Python process*,
so :class:`EnvSpec` only accepts ``start_level=0, num_levels=0`` (the ``full`` split) in that mode
and raises :class:`EnvSpecError` for anything else, before envpool is called.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast, get_args

from offgen.data.schema import Layout
from offgen.errors import EnvironmentUnavailableError, EnvSpecError, UnknownNameError
from offgen.registry import GAMES, resolve_game

__all__ = [
    "DISTRIBUTION_MODES",
    "SPLITS",
    "EnvSpec",
    "EnvSpecError",
    "LevelRange",
    "available_modes",
    "check_available",
    "envpool_id",
    "import_envpool",
    "make_env",
    "resolve_distribution_mode",
    "resolve_split",
]


DistributionMode = Literal["easy", "hard", "extreme", "memory", "exploration"]
DISTRIBUTION_MODES: tuple[DistributionMode, ...] = get_args(DistributionMode)

_MAX_LEVEL = 2**31 - 1


@dataclass(frozen=True)
class LevelRange:
    """A set of Procgen levels: seeds ``start_level .. start_level + num_levels - 1``.

    ``num_levels == 0`` is Procgen's "full distribution" (every 31-bit seed).
    """

    start_level: int
    num_levels: int

    def contains(self, level_seed: int) -> bool:
        """Whether ``level_seed`` can be drawn from this range."""
        if self.num_levels == 0:
            return 0 <= level_seed <= _MAX_LEVEL
        return self.start_level <= level_seed < self.start_level + self.num_levels

    def overlaps(self, other: LevelRange) -> bool:
        """Whether the two ranges share at least one level."""
        if self.num_levels == 0 or other.num_levels == 0:
            return True
        return (
            self.start_level < other.start_level + other.num_levels
            and other.start_level < self.start_level + self.num_levels
        )


SPLITS: dict[str, LevelRange] = {
    "train": LevelRange(0, 200),
    "validation": LevelRange(200, 50),
    "test": LevelRange(250, _MAX_LEVEL - 250),
    "full": LevelRange(0, 0),
}
"""The named splits; ``level_<K>`` names are resolved by :func:`resolve_split`."""

_LEVEL_K = re.compile(r"^level_?(\d+)$")


def resolve_split(name: str) -> LevelRange:
    """The level range of a named split (``train``, ``validation``, ``test``, ``full``, ``level_K``).

    Raises:
        UnknownNameError: For any other name.
    """
    key = name.strip().lower().replace("-", "_")
    if key == "val":
        key = "validation"
    if key in SPLITS:
        return SPLITS[key]
    match = _LEVEL_K.match(key)
    if match and int(match[1]) >= 1:
        return LevelRange(0, int(match[1]))
    raise UnknownNameError(
        f"unknown level split {name!r}; use one of {', '.join(SPLITS)} or level_<K> "
        "(e.g. level_1, level_40), or give --start_level/--num_levels"
    )


def resolve_distribution_mode(name: str) -> DistributionMode:
    """The distribution mode called ``name`` (case-insensitive), e.g. ``"Easy"`` -> ``"easy"``.

    Raises:
        UnknownNameError: If it is not one of the five modes.
    """
    mode = name.lower()
    for known in get_args(DistributionMode):
        if mode == known:
            return cast(DistributionMode, known)
    raise UnknownNameError(
        f"unknown distribution mode {name!r}; use one of {', '.join(DISTRIBUTION_MODES)}"
    )


def envpool_id(game: str, distribution_mode: DistributionMode = "easy") -> str:
    """envpool task id of a game and distribution mode, e.g. ``"CoinrunEasy-v0"``.

    Naming only: whether envpool provides the task is checked by :func:`check_available`.

    Raises:
        UnknownNameError: For an unknown game or distribution mode.
    """
    spec = resolve_game(game)
    mode = resolve_distribution_mode(distribution_mode)
    return f"{spec.name.capitalize()}{mode.capitalize()}-v0"


@dataclass(frozen=True)
class EnvSpec:
    """Everything that defines which episodes an environment produces (except the seed).

    Attributes:
        game: Lower-case game name (one of the 16).
        distribution_mode: ``easy`` (the published data), ``hard``, ``extreme``, ``memory`` or
            ``exploration`` (not every game has every mode, see :func:`available_modes`;
            ``exploration`` is one fixed level and needs ``start_level=num_levels=0``).
        start_level: First level seed of the range.
        num_levels: Number of levels (0: the full distribution).
        split: The split name the range came from, if any (informational).
    """

    game: str
    distribution_mode: DistributionMode = "easy"
    start_level: int = 0
    num_levels: int = 200
    split: str | None = "train"

    def __post_init__(self) -> None:
        object.__setattr__(self, "game", resolve_game(self.game).name)
        object.__setattr__(
            self, "distribution_mode", resolve_distribution_mode(self.distribution_mode)
        )
        if self.start_level < 0 or self.num_levels < 0:
            raise EnvSpecError("start_level and num_levels must be >= 0")
        if self.start_level + self.num_levels > _MAX_LEVEL + 1:
            raise EnvSpecError(f"start_level + num_levels must not exceed 2^31 ({_MAX_LEVEL + 1})")
        # envpool CHECK-fails (aborting the whole interpreter, no exception) on any other level
        # range in exploration mode, so this must be refused here, before envpool is ever called.
        exploration = self.distribution_mode == "exploration"
        if exploration and (self.start_level, self.num_levels) != (0, 0):
            where = f"split {self.split!r}" if self.split else "the given level range"
            raise EnvSpecError(
                f"exploration mode plays one fixed level per game and takes no level range, but "
                f"{where} asks for start_level={self.start_level}, num_levels={self.num_levels}. "
                "Use the 'full' split (--split full, or start_level=0 and num_levels=0; "
                "--eval_split full in ratio mode), or another distribution mode."
            )

    @classmethod
    def from_split(
        cls, game: str, split: str, distribution_mode: DistributionMode = "easy"
    ) -> EnvSpec:
        """The spec of a named split (see :func:`resolve_split`)."""
        levels = resolve_split(split)
        return cls(game, distribution_mode, levels.start_level, levels.num_levels, split)

    @property
    def levels(self) -> LevelRange:
        """The level range."""
        return LevelRange(self.start_level, self.num_levels)

    @property
    def max_episode_steps(self) -> int:
        """The game's own time limit (easy-mode values; 1000 unless listed in the registry)."""
        return GAMES[self.game].max_episode_steps

    @property
    def task_id(self) -> str:
        """The envpool id, e.g. ``"CoinrunEasy-v0"``."""
        return envpool_id(self.game, self.distribution_mode)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as recorded in a store's ``info.json`` under ``env``."""
        return asdict(self)


def import_envpool() -> Any:
    """Import envpool, turning a missing package or Qt runtime into a clear error.

    Raises:
        EnvironmentUnavailableError: If envpool or its Qt runtime is missing.
    """
    try:
        import envpool
    except ImportError as exc:
        text = str(exc)
        if "Qt" in text or "libQt" in text or "qt5" in text.lower():
            raise EnvironmentUnavailableError(
                f"envpool's Procgen needs the Qt5 runtime, which is missing ({text}). Install it "
                "with: sudo apt-get install libqt5gui5"
            ) from exc
        raise EnvironmentUnavailableError(
            f"envpool is not installed or failed to import ({text}). Install it with: "
            "pip install 'offgen[collect]' (and, on Debian/Ubuntu, apt-get install libqt5gui5)"
        ) from exc
    return envpool


@functools.lru_cache(maxsize=1)
def _registered_procgen_ids() -> frozenset[str] | None:
    # Asked once per process: the registry is fixed for an installed envpool. None means this
    # envpool cannot list its tasks (very old builds); then make_gymnasium is left to decide.
    lister = getattr(import_envpool(), "list_all_envs", None)
    return frozenset(lister()) if callable(lister) else None


def available_modes(game: str) -> tuple[str, ...] | None:
    """The distribution modes the installed envpool provides for ``game``, in canonical order.

    Procgen defines ``memory``, ``extreme`` and ``exploration`` for some games only (envpool 1.2.5
    has e.g. no ``CoinrunMemory-v0``), so this asks envpool's registry rather than assuming all
    combinations exist. ``None`` if envpool cannot list its tasks.

    Raises:
        EnvironmentUnavailableError: If envpool or its Qt runtime is missing.
        UnknownNameError: For an unknown game.
    """
    registered = _registered_procgen_ids()
    if registered is None:
        return None
    return tuple(m for m in DISTRIBUTION_MODES if envpool_id(game, m) in registered)


def check_available(spec: EnvSpec) -> None:
    """Raise a clear error if the installed envpool does not provide ``spec``'s game and mode.

    Called by :func:`make_env`, and by the collector before it creates its output, so an
    unsupported combination never leaves a half-created store behind.

    Raises:
        EnvSpecError: If envpool has no task for this game in this mode (lists the modes it has).
        EnvironmentUnavailableError: If envpool or its Qt runtime is missing.
    """
    modes = available_modes(spec.game)
    if modes is None or spec.distribution_mode.lower() in modes:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        where = f"envpool {version('envpool')}"
    except PackageNotFoundError:
        where = "the installed envpool"
    mode = spec.distribution_mode.lower()
    raise EnvSpecError(
        f"{spec.game} has no {mode!r} distribution mode ({where} registers no {spec.task_id}); "
        f"{spec.game} is available in: {', '.join(modes)}. Pass one of those with "
        "--distribution_mode."
    )


def make_env(spec: EnvSpec, num_envs: int, seed: int, *, layout: Layout = "HWC") -> Any:
    """A synchronous vectorised gymnasium environment for ``spec`` (envpool).

    Args:
        spec: Game, mode and levels.
        num_envs: Number of parallel environments.
        seed: envpool seed; the same seed gives every environment the same sequence of levels.
        layout: ``"HWC"`` (default, the store's layout) or ``"CHW"`` (envpool's default).

    Returns:
        The envpool environment (gymnasium API, ``uint8`` observations in ``layout``).

    Raises:
        EnvironmentUnavailableError: If envpool or its Qt runtime is missing.
        EnvSpecError: If envpool has no task for the game in this distribution mode.
    """
    if num_envs < 1:
        raise ValueError("num_envs must be >= 1")
    envpool = import_envpool()
    check_available(spec)
    try:
        return envpool.make_gymnasium(
            spec.task_id,
            num_envs=num_envs,
            num_levels=spec.num_levels,
            start_level=spec.start_level,
            seed=int(seed) & 0x7FFFFFFF,
            channel_first=layout == "CHW",
        )
    except ImportError as exc:  # the Qt library is loaded lazily by some builds
        raise EnvironmentUnavailableError(
            f"cannot start {spec.task_id} ({exc}). Install the Qt5 runtime: "
            "sudo apt-get install libqt5gui5"
        ) from exc
