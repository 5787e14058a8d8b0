"""Folder layouts for metric downloads, as templates.

A layout is configuration: a path template plus the run-config keys its placeholders read
and the defaults of its flags. The default layout, ``download``, is offgen's own runs (the
baselines: Procgen games, algorithms ``bc bcq bct cql dt iql ppo``, config keys ``env_name``,
``algo``, ``seed``, ``xpid``). The seed project's layouts (tag-based, cost-scale,
safety-bound, with its environments, algorithms and config keys) stay as named presets. A new
layout is a YAML/JSON file passed with ``--layout-file``, not a new script; it starts from a
built-in layout's config keys and defaults (``base``, default ``download``)::

    lr_sweep:
      path: "{env}/{algo}/lr_{lr}/seed_{seed}/{metric}.json"
      config_keys: {lr: lr}
      defaults: {output: data/lr, algos: [bc]}

Placeholders: every name in ``config_keys`` (read from the run config), ``{tag}`` (the first
requested tag the run carries, or the default tag), ``{metric}`` (the metric's file stem) and
``{suffix}`` (``_hard`` in hard-constraint mode, else empty). The selection flags (``--envs``,
``--algos``, ``--seeds``, ``--levels``) filter on the config key of their placeholder (``env``,
``algo``, ``seed``, ``level``); an empty selection filters nothing.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offgen_tools._files import load_config_file
from offgen_tools.errors import LayoutError

#: The 16 Procgen games (offgen's ``env_name`` values).
PROCGEN_GAMES = (
    "bigfish",
    "bossfight",
    "caveflyer",
    "chaser",
    "climber",
    "coinrun",
    "dodgeball",
    "fruitbot",
    "heist",
    "jumper",
    "leaper",
    "maze",
    "miner",
    "ninja",
    "plunder",
    "starpilot",
)
#: The baselines' algorithms (their ``algo`` config value).
OFFGEN_ALGOS = ("bc", "bcq", "bct", "cql", "dt", "iql", "ppo")
#: The metrics the baselines log: the contract documented in docs/tools.md.
OFFGEN_METRICS = (
    "eval/train_return",
    "eval/validation_return",
    "eval/test_return",
    "train/mean_episode_return",
)
#: Placeholder to run-config key of offgen's runs.
OFFGEN_CONFIG_KEYS = {"env": "env_name", "algo": "algo", "seed": "seed", "xpid": "xpid"}

STATES = ("finished", "crashed", "running")

#: The seed project's (safety-doom / HASARD) environments, algorithms, metrics and config keys.
SEED_ENVS = (
    "armament_burden",
    "volcanic_venture",
    "remedy_rush",
    "collateral_damage",
    "precipice_plunge",
    "detonators_dilemma",
)
SEED_ALGOS = (
    "PPO",
    "PPOCost",
    "PPOLag",
    "PPOSaute",
    "PPOPID",
    "P3O",
    "TRPO",
    "TRPOLag",
    "TRPOPID",
)
SEED_METRICS = ("reward/reward=reward", "policy_stats/avg_cost=cost")
SEED_CONFIG_KEYS = {"env": "env", "algo": "algo", "level": "level", "seed": "seed"}

SPECIAL_FIELDS = ("tag", "metric", "suffix")

#: Selection flag to the placeholder whose config key it filters.
SELECTIONS = (("algos", "algo"), ("envs", "env"), ("seeds", "seed"), ("levels", "level"))

#: Flag defaults of every layout (offgen's runs); a layout's ``defaults`` override them.
DEFAULT_FLAGS: dict[str, Any] = {
    "output": "data",
    "levels": [],
    "seeds": [],
    "envs": list(PROCGEN_GAMES),
    "algos": list(OFFGEN_ALGOS),
    "metrics": list(OFFGEN_METRICS),
    "wandb_tags": [],
    "states": list(STATES),
    "forbidden_tags": [],
    "default_tag": "main",
    "hard_constraint_key": "hard_constraint",
}

_SEED_DEFAULTS: dict[str, Any] = {
    "levels": [1, 2, 3],
    "seeds": [1, 2, 3],
    "envs": list(SEED_ENVS),
    "algos": list(SEED_ALGOS),
    "metrics": list(SEED_METRICS),
    "forbidden_tags": ["TEST"],
}


@dataclass(frozen=True)
class Layout:
    """A folder layout.

    Attributes:
        name: Layout name (the CLI subcommand for built-ins).
        path: Path template relative to the output folder.
        config_keys: Placeholder to run-config key.
        defaults: Defaults of the download flags (``output``, ``algos``, ``wandb_tags``...).
        hard_constraint: Whether the layout offers ``--hard-constraint``.
        help: One-line description.
    """

    name: str
    path: str
    config_keys: Mapping[str, str]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    hard_constraint: bool = True
    help: str = ""

    def __post_init__(self) -> None:
        names = {f for _, f, _, _ in string.Formatter().parse(self.path) if f}
        unknown = sorted(names - set(self.config_keys) - set(SPECIAL_FIELDS))
        if unknown:
            raise LayoutError(
                f"layout {self.name!r}: placeholders {unknown} in path are neither config_keys "
                f"{sorted(self.config_keys)} nor {list(SPECIAL_FIELDS)}"
            )
        if "metric" not in names:
            raise LayoutError(f"layout {self.name!r}: path must contain {{metric}}")
        bad = sorted(set(self.defaults) - set(DEFAULT_FLAGS))
        if bad:
            raise LayoutError(
                f"layout {self.name!r}: unknown defaults {bad}; known: {sorted(DEFAULT_FLAGS)}"
            )

    @property
    def placeholders(self) -> list[str]:
        """Config placeholders used by the path, in order."""
        return [
            f for _, f, _, _ in string.Formatter().parse(self.path) if f and f in self.config_keys
        ]

    def default(self, flag: str) -> Any:
        """A flag's default for this layout."""
        return self.defaults.get(flag, DEFAULT_FLAGS[flag])

    @classmethod
    def from_mapping(cls, name: str, spec: Mapping[str, Any]) -> Layout:
        """Build a layout file's entry on top of its ``base`` built-in layout.

        The entry's ``config_keys`` and ``defaults`` are added to the base's; ``hard_constraint``
        and ``help`` replace the base's when given.

        Raises:
            LayoutError: Naming the layout and key.
        """
        known = {"path", "base", "config_keys", "defaults", "hard_constraint", "help"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise LayoutError(f"layout {name!r}: unknown key(s) {unknown}; known: {sorted(known)}")
        if "path" not in spec or not isinstance(spec["path"], str):
            raise LayoutError(f"layout {name!r}: key 'path' (a template string) is required")
        base_name = spec.get("base", "download")
        if base_name not in BUILTIN_LAYOUTS:
            raise LayoutError(
                f"layout {name!r}: base {base_name!r} is not a built-in layout; "
                f"choose one of {sorted(BUILTIN_LAYOUTS)}"
            )
        base = BUILTIN_LAYOUTS[base_name]
        keys = spec.get("config_keys", {})
        defaults = spec.get("defaults", {})
        if not isinstance(keys, Mapping) or not isinstance(defaults, Mapping):
            raise LayoutError(f"layout {name!r}: keys 'config_keys' and 'defaults' are mappings")
        return cls(
            name=name,
            path=spec["path"],
            config_keys={**base.config_keys, **{str(k): str(v) for k, v in keys.items()}},
            defaults={**base.defaults, **defaults},
            hard_constraint=bool(spec.get("hard_constraint", base.hard_constraint)),
            help=str(spec.get("help", "")),
        )


#: The built-in layouts: offgen's runs (``download``, the default) and the seed's presets.
BUILTIN_LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "download",
            "{env}/{algo}/{xpid}/seed_{seed}/{metric}.json",
            OFFGEN_CONFIG_KEYS,
            hard_constraint=False,
            help="offgen's own runs (the default): "
            "<out>/<env_name>/<algo>/<xpid>/seed_<s>/<metric>.json",
        ),
        Layout(
            "tags",
            "{tag}/{env}/{algo}/level_{level}/seed_{seed}/{metric}{suffix}.json",
            SEED_CONFIG_KEYS,
            _SEED_DEFAULTS,
            help="Seed preset, tag-based experiments: "
            "<out>/<tag>/<env>/<algo>/level_<l>/seed_<s>/<metric>.json",
        ),
        Layout(
            "cost-scale",
            "{env}/{algo}/level_{level}/scale_{scale}/seed_{seed}/{metric}{suffix}.json",
            {**SEED_CONFIG_KEYS, "scale": "penalty_scaling"},
            {
                **_SEED_DEFAULTS,
                "output": "data/cost_scale",
                "algos": ["PPOCost"],
                "wandb_tags": ["COST_SCALING"],
            },
            hard_constraint=False,
            help="Seed preset, cost-scaling experiments: "
            "<out>/<env>/<algo>/level_<l>/scale_<x>/seed_<s>/<metric>.json",
        ),
        Layout(
            "safety-bound",
            "{env}/{algo}/level_{level}/bound_{bound}/seed_{seed}/{metric}{suffix}.json",
            {**SEED_CONFIG_KEYS, "bound": "safety_bound"},
            {**_SEED_DEFAULTS, "output": "data/main"},
            help="Seed preset, safety-bound experiments: "
            "<out>/<env>/<algo>/level_<l>/bound_<x>/seed_<s>/<metric>.json",
        ),
    )
}


def load_layouts(path: str | Path) -> dict[str, Layout]:
    """Read layouts from a YAML or JSON file (top-level mapping of name to layout).

    Args:
        path: The file.

    Returns:
        Name to layout.

    Raises:
        LayoutError: On invalid content, naming the file and layout.
    """
    path = Path(path)
    data = load_config_file(path, LayoutError)
    if not isinstance(data, Mapping) or not data:
        raise LayoutError(f"{path}: expected a mapping of layout name to layout")
    out: dict[str, Layout] = {}
    for name, spec in data.items():
        if not isinstance(spec, Mapping):
            raise LayoutError(f"{path}: layout {name!r} must be a mapping")
        try:
            out[str(name)] = Layout.from_mapping(str(name), spec)
        except LayoutError as exc:
            raise LayoutError(f"{path}: {exc}") from exc
    return out
