"""Names offgen knows: the 16 Procgen games and the published offline datasets.

Every dataset has one canonical offgen name (``expert_1M``, ``mixed_1M``, ...) and aliases, among
them the predecessor's download-script category (``1M_E``, ``1M_S``, ``10M``, ``25M``,
``level_1_E``, ...). Name lookup ignores case and treats ``-`` like ``_``; an unknown name raises
:class:`~offgen.errors.UnknownNameError` suggesting the closest valid one.

Both published URL schemes are recorded per dataset (see :meth:`DatasetSpec.sources`). Neither
publishes checksums or sizes. In the first scheme the four 100k datasets are one ``.tar`` holding
every game, so :attr:`SourceArchive.all_games` is true for them.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from offgen.errors import UnknownNameError

__all__ = [
    "DATASETS",
    "GAMES",
    "Behaviour",
    "DatasetSpec",
    "GameSpec",
    "LocalDataset",
    "SourceArchive",
    "Target",
    "dataset_name",
    "local_dataset",
    "local_datasets",
    "normalized_return",
    "registered_clash",
    "resolve_dataset",
    "resolve_game",
    "resolve_target",
]

Behaviour = Literal["expert", "mixed", "suboptimal"]

_DGRL = "https://dl.fbaipublicfiles.com/DGRL"


@dataclass(frozen=True)
class GameSpec:
    """One Procgen game (easy distribution mode).

    Attributes:
        name: Lower-case game name, e.g. ``"coinrun"``.
        max_episode_steps: The game's own time limit; an episode this long was truncated.
        return_min: ``Rmin`` of the normalised return (easy mode).
        return_max: ``Rmax`` of the normalised return (easy mode).
    """

    name: str
    max_episode_steps: int
    return_min: float
    return_max: float

    @property
    def envpool_id(self) -> str:
        """The envpool task id, e.g. ``"CoinrunEasy-v0"``."""
        return f"{self.name.capitalize()}Easy-v0"

    def normalized_return(self, episode_return: float) -> float:
        """``(R - Rmin) / (Rmax - Rmin)``: 0 at the minimum, 1 at the maximum reference return."""
        return (episode_return - self.return_min) / (self.return_max - self.return_min)


def _game(name: str, rmin: float, rmax: float, steps: int = 1000) -> GameSpec:
    return GameSpec(name=name, max_episode_steps=steps, return_min=rmin, return_max=rmax)


GAMES: dict[str, GameSpec] = {
    g.name: g
    for g in (
        _game("bigfish", 1, 40, 6000),
        _game("bossfight", 0.5, 13, 4000),
        _game("caveflyer", 3.5, 12),
        _game("chaser", 0.5, 13),
        _game("climber", 2, 12.6),
        _game("coinrun", 5, 10),
        _game("dodgeball", 1.5, 19),
        _game("fruitbot", -1.5, 32.4),
        _game("heist", 3.5, 10),
        _game("jumper", 1, 10),
        _game("leaper", 1.5, 10, 500),
        _game("maze", 5, 10, 500),
        _game("miner", 1.5, 13),
        _game("ninja", 3.5, 10),
        _game("plunder", 4.5, 30, 4000),
        _game("starpilot", 2.5, 64),
    )
}
"""The 16 Procgen games, by name."""


@dataclass(frozen=True)
class SourceArchive:
    """Where the predecessor published one dataset's files for one game.

    Attributes:
        url: Archive URL.
        scheme: ``"dgrl"`` (first scheme) or ``"dgrl-procgen"`` (second scheme).
        archive: ``"tar.xz"`` or ``"tar"``.
        all_games: True when the archive holds every game (``<game>/<file>`` inside), so one
            download serves all 16 games.
    """

    url: str
    scheme: str
    archive: str
    all_games: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """One published offline dataset (the same recipe for each of the 16 games).

    Attributes:
        name: Canonical offgen name, e.g. ``"expert_1M"``.
        legacy_category: The predecessor's download-script category, e.g. ``"1M_E"``.
        aliases: Other accepted names (the legacy category is accepted too).
        behaviour: ``"expert"`` (final PPO checkpoint), ``"mixed"`` (expert and earlier checkpoints,
            mean return ~75% of expert) or ``"suboptimal"`` (PPO's whole training log).
        transitions_per_game: Steps per game.
        start_level: First Procgen level of the collection.
        num_levels: Number of levels collected on (``start_level`` ... ``+ num_levels - 1``).
        description: One line for listings.
    """

    name: str
    legacy_category: str
    aliases: tuple[str, ...]
    behaviour: Behaviour
    transitions_per_game: int
    start_level: int
    num_levels: int
    description: str
    _path_a: str
    _path_b: str

    @property
    def env_options(self) -> dict[str, object]:
        """Procgen options the data was collected with (recorded in converted stores)."""
        return {
            "distribution_mode": "easy",
            "start_level": self.start_level,
            "num_levels": self.num_levels,
        }

    @property
    def single_archive(self) -> bool:
        """Whether the first URL scheme publishes one archive for all games."""
        return self._path_a.endswith(".tar")

    def sources(self, game: str) -> tuple[SourceArchive, ...]:
        """Both published archives for ``game``, first scheme first.

        Raises:
            UnknownNameError: If ``game`` is not one of the 16 games.
        """
        name = resolve_game(game).name
        if self.single_archive:
            first = SourceArchive(f"{_DGRL}/{self._path_a}", "dgrl", "tar", all_games=True)
        else:
            first = SourceArchive(f"{_DGRL}/{self._path_a}/{name}.tar.xz", "dgrl", "tar.xz")
        second = SourceArchive(
            f"{_DGRL}/Procgen/Datasets/Compressed/{self._path_b}/{name}.tar.xz",
            "dgrl-procgen",
            "tar.xz",
        )
        return (first, second)


def _ds(
    name: str,
    category: str,
    aliases: tuple[str, ...],
    behaviour: Behaviour,
    transitions: int,
    num_levels: int,
    description: str,
    path_a: str,
    path_b: str,
) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        legacy_category=category,
        aliases=aliases,
        behaviour=behaviour,
        transitions_per_game=transitions,
        start_level=0,
        num_levels=num_levels,
        description=description,
        _path_a=path_a,
        _path_b=path_b,
    )


DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in (
        _ds(
            "expert_1M", "1M_E", ("expert", "1m_expert", "expert_data_1M"), "expert",
            1_000_000, 200, "final PPO checkpoint, levels 0-199",
            "1M/expert", "1M/level_200/expert",
        ),
        _ds(
            "mixed_1M", "1M_S", ("mixed", "1m_mixed", "1m_suboptimal"), "mixed",
            1_000_000, 200, "PPO checkpoints with mean return ~75% of expert, levels 0-199",
            "1M/suboptimal", "1M/level_200/suboptimal",
        ),
        _ds(
            "expert_10M", "10M", ("10m_expert", "expert_data_10M"), "expert",
            10_000_000, 200, "final PPO checkpoint, levels 0-199",
            "10M", "10M/level_200/expert",
        ),
        _ds(
            "suboptimal_25M", "25M", ("25m_suboptimal", "suboptimal", "suboptimal_data_25M"),
            "suboptimal", 25_000_000, 200, "PPO's whole training log (all rollouts), levels 0-199",
            "25M", "25M/level_200/suboptimal",
        ),
        _ds(
            "level1_expert_100k", "level_1_E", ("100k_level1_expert",), "expert",
            100_000, 1, "final PPO checkpoint on a single level",
            "100k_procgen_dataset_1.tar", "100k/level_1/expert",
        ),
        _ds(
            "level1_mixed_100k", "level_1_S", ("100k_level1_mixed", "level1_suboptimal_100k"),
            "mixed", 100_000, 1, "mixed expert-suboptimal checkpoints on a single level",
            "100k_procgen_dataset_1_suboptimal.tar", "100k/level_1/suboptimal",
        ),
        _ds(
            "level40_expert_100k", "level_40_E", ("100k_level40_expert",), "expert",
            100_000, 40, "final PPO checkpoint on 40 levels",
            "100k_procgen_dataset_40.tar", "100k/level_40/expert",
        ),
        _ds(
            "level40_mixed_100k", "level_40_S", ("100k_level40_mixed", "level40_suboptimal_100k"),
            "mixed", 100_000, 40, "mixed expert-suboptimal checkpoints on 40 levels",
            "100k_procgen_dataset_40_suboptimal.tar", "100k/level_40/suboptimal",
        ),
    )
}  # fmt: skip
"""The published datasets, by canonical name."""


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


_DATASET_INDEX: dict[str, str] = {}
for _spec in DATASETS.values():
    for _alias in (_spec.name, _spec.legacy_category, *_spec.aliases):
        _DATASET_INDEX[_key(_alias)] = _spec.name


def _unknown(kind: str, name: str, valid: list[str], hint: str) -> UnknownNameError:
    close = difflib.get_close_matches(_key(name), valid, n=1, cutoff=0.5)
    suggestion = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{suggestion} {hint}")


def resolve_dataset(name: str) -> DatasetSpec:
    """The dataset called ``name`` (canonical name, legacy category or alias; case-insensitive).

    Raises:
        UnknownNameError: If no dataset has that name; the message suggests the closest one.

    Example:
        >>> resolve_dataset("1M_E").name
        'expert_1M'
    """
    canonical = _DATASET_INDEX.get(_key(name))
    if canonical is None:
        best = difflib.get_close_matches(_key(name), list(_DATASET_INDEX), n=1, cutoff=0.5)
        suggestion = f" Did you mean {_DATASET_INDEX[best[0]]!r}?" if best else ""
        raise UnknownNameError(
            f"unknown dataset {name!r}.{suggestion} Valid names: {', '.join(DATASETS)} "
            "(run `offgen list`)."
        )
    return DATASETS[canonical]


def resolve_game(name: str) -> GameSpec:
    """The Procgen game called ``name`` (case-insensitive; ``"CoinrunEasy-v0"`` works too).

    Raises:
        UnknownNameError: If it is not one of the 16 games; the message suggests the closest one.
    """
    key = _key(name)
    if key.endswith("easy_v0"):
        key = key.removesuffix("easy_v0")
    spec = GAMES.get(key)
    if spec is None:
        raise _unknown("game", name, list(GAMES), f"Games: {', '.join(GAMES)}.")
    return spec


def normalized_return(game: str, episode_return: float) -> float:
    """Normalised return of ``episode_return`` in ``game`` (see :meth:`GameSpec.normalized_return`)."""
    return resolve_game(game).normalized_return(episode_return)


# ------------------------------------------------------------------------------- local datasets
_LOCAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


@dataclass(frozen=True)
class LocalDataset:
    """A dataset of your own: stores under ``$OFFGEN_HOME/datasets/<name>/<game>``.

    Attributes:
        name: The folder's path under ``datasets/``, e.g. ``"my_random"`` or
            ``"my-lab/coinrun-random"`` (one namespace level).
        folder: ``$OFFGEN_HOME/datasets/<name>``.
        games: Games with a store (an ``info.json``) in the folder, in game order.
    """

    name: str
    folder: Path
    games: tuple[str, ...]


def _games_in(folder: Path) -> tuple[str, ...]:
    return tuple(g for g in GAMES if (folder / g / "info.json").is_file())


def local_dataset(name: str) -> LocalDataset | None:
    """The local dataset called ``name`` (its exact folder name), or None if no store is there."""
    from offgen.paths import datasets_root

    if not _LOCAL_NAME.fullmatch(name):
        return None
    folder = datasets_root() / name
    games = _games_in(folder)
    return LocalDataset(name, folder, games) if games else None


def local_datasets() -> list[LocalDataset]:
    """Every folder under ``$OFFGEN_HOME/datasets`` holding stores, registered names included.

    A folder is a dataset when it has ``<game>/info.json`` children; a folder without any is
    looked into once more for namespaced datasets (``my-lab/coinrun-random``).
    """
    from offgen.paths import datasets_root

    found: list[LocalDataset] = []
    root = datasets_root()
    for top in sorted(p for p in root.glob("*") if p.is_dir()):
        games = _games_in(top)
        if games:
            found.append(LocalDataset(top.name, top, games))
            continue
        for inner in sorted(p for p in top.glob("*") if p.is_dir()):
            games = _games_in(inner)
            if games:
                found.append(LocalDataset(f"{top.name}/{inner.name}", inner, games))
    return found


def registered_clash(name: str) -> DatasetSpec | None:
    """The registered dataset a local folder name would take, unless it is that dataset's own.

    ``datasets/expert_1M`` is the registered dataset's local copy; ``datasets/1M_E`` or
    ``datasets/Expert`` spell a registered name without being its folder, so they are refused.
    """
    canonical = _DATASET_INDEX.get(_key(name))
    return DATASETS[canonical] if canonical is not None and canonical != name else None


def dataset_name(name: str) -> str:
    """The dataset name to file a store under: a registered name's canonical form, else ``name``.

    Raises:
        UnknownNameError: If ``name`` is not a valid dataset name (letters, digits, ``_ . -``,
            at most one ``/`` for a namespace).
    """
    canonical = _DATASET_INDEX.get(_key(name))
    if canonical is not None:
        return canonical
    if not _LOCAL_NAME.fullmatch(name):
        raise UnknownNameError(
            f"{name!r} is not a dataset name: use letters, digits, '_', '.', '-' and at most one "
            "'/' for a namespace (e.g. my_random, my-lab/coinrun-random)."
        )
    return name


# ------------------------------------------------------------------------------- name or path
TargetKind = Literal["registered", "local", "hub", "path"]
HUB_PREFIX = "hf://"


@dataclass(frozen=True)
class Target:
    """What a user's dataset argument names.

    Attributes:
        kind: ``"registered"`` (a published dataset, :attr:`spec`), ``"local"`` (a dataset of your
            own under ``$OFFGEN_HOME/datasets``, :attr:`local`), ``"hub"`` (a hub repository,
            :attr:`repo`, and maybe the dataset in it, :attr:`name`) or ``"path"`` (a store
            directory or a URL fsspec understands, :attr:`text`).
        text: The argument as given (``os.fspath`` of a path).
        spec: The registered dataset, for ``"registered"``.
        local: The local dataset, for ``"local"``.
        repo: ``ORG/NAME`` of the hub repository, for ``"hub"``.
        name: The dataset name: canonical for ``"registered"``, the folder name for ``"local"``,
            the dataset folder in the repository for ``"hub"`` (None: the only one there).
    """

    kind: TargetKind
    text: str
    spec: DatasetSpec | None = None
    local: LocalDataset | None = None
    repo: str | None = None
    name: str | None = None


def _looks_like_path(text: str) -> bool:
    """A path or URL by its spelling: a scheme, the OS separator, a leading ``/``, ``.`` or ``~``."""
    return "://" in text or (os.sep != "/" and os.sep in text) or text.startswith(("/", ".", "~"))


def _hub_target(text: str) -> Target:
    parts = [p for p in text[len(HUB_PREFIX) :].split("/") if p]
    if len(parts) < 2:
        raise UnknownNameError(
            f"{text!r}: a hub name is hf://ORG/REPO (or hf://ORG/REPO/<dataset> when the "
            "repository holds several datasets)."
        )
    rest = "/".join(parts[2:])
    return Target("hub", text, repo="/".join(parts[:2]), name=dataset_name(rest) if rest else None)


def _unknown_dataset(text: str) -> UnknownNameError:
    local = [d.name for d in local_datasets() if d.name not in DATASETS]
    names = {**_DATASET_INDEX, **{_key(n): n for n in local}}
    best = difflib.get_close_matches(_key(text), list(names), n=1, cutoff=0.5)
    suggestion = f" Did you mean {names[best[0]]!r}?" if best else ""
    mine = f"; local datasets: {', '.join(local)}" if local else ""
    return UnknownNameError(
        f"unknown dataset {text!r}.{suggestion} Valid names: {', '.join(DATASETS)}{mine} (run "
        "`offgen list`), a store folder under $OFFGEN_HOME/datasets/<name>/<game>, "
        "hf://ORG/REPO, or a store path."
    )


def resolve_target(name_or_path: str | os.PathLike[str]) -> Target:
    """Decide whether ``name_or_path`` is a dataset name or a store path / URL.

    The one rule every entry point uses (``offgen.load``, ``offgen info / verify / push / card``):

    * an :class:`os.PathLike` is a path;
    * ``hf://ORG/REPO[/<dataset>]`` names a hub repository;
    * a string spelled like a path or URL (a scheme, a leading ``/``, ``.`` or ``~``) is a path;
    * a registered name or alias is that dataset, even where a folder of that name exists;
    * a name with stores under ``$OFFGEN_HOME/datasets/<name>/<game>`` (``my_random``,
      ``my-lab/coinrun-random``) is that local dataset, unless it spells a registered name;
    * any other string is a path if it exists or has a ``/``, else an unknown name.

    Write ``./name`` for a folder that a name would shadow.

    Raises:
        UnknownNameError: A string without ``/`` that is no name and no existing path (the message
            suggests the closest name), or a malformed ``hf://`` name.

    Example:
        >>> resolve_target("1M_E").spec.name
        'expert_1M'
        >>> resolve_target("./stores/coinrun").kind
        'path'
    """
    text = os.fspath(name_or_path)
    if not isinstance(name_or_path, str):
        return Target("path", text)
    if text.startswith(HUB_PREFIX):
        return _hub_target(text)
    if _looks_like_path(text):
        return Target("path", text)
    canonical = _DATASET_INDEX.get(_key(text)) if "/" not in text else None
    if canonical is not None:
        return Target("registered", text, spec=DATASETS[canonical], name=canonical)
    local = local_dataset(text)
    if local is not None:
        return Target("local", text, local=local, name=local.name)
    if "/" in text or Path(text).exists():
        return Target("path", text)
    raise _unknown_dataset(text)
