"""Folder layouts for metric downloads, as templates.

A layout is configuration: a path template plus the run-config keys its placeholders read
and the defaults of its flags. The three built-in layouts reproduce the original download
scripts (tag-based, cost-scale, safety-bound); a new layout is a YAML/JSON file passed with
``--layout-file``, not a new script::

    my_layout:
      path: "{env}/{algo}/level_{level}/lr_{lr}/seed_{seed}/{metric}{suffix}.json"
      config_keys: {env: env, algo: algo, level: level, seed: seed, lr: learning_rate}
      defaults: {output: data/lr, algos: [PPO], wandb_tags: []}
      hard_constraint: false

Placeholders: every name in ``config_keys`` (read from the run config), ``{tag}`` (the first
requested tag the run carries, or the default tag), ``{metric}`` (the metric's file stem) and
``{suffix}`` (``_hard`` in hard-constraint mode, else empty).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offgen_tools._optional import require
from offgen_tools.errors import LayoutError

ENVS = (
    "armament_burden",
    "volcanic_venture",
    "remedy_rush",
    "collateral_damage",
    "precipice_plunge",
    "detonators_dilemma",
)
ALGOS = ("PPO", "PPOCost", "PPOLag", "PPOSaute", "PPOPID", "P3O", "TRPO", "TRPOLag", "TRPOPID")
METRICS = ("reward/reward=reward", "policy_stats/avg_cost=cost")
STATES = ("finished", "crashed", "running")
FORBIDDEN_TAGS = ("TEST",)

#: Run-config keys of the original experiments.
BASE_CONFIG_KEYS = {"env": "env", "algo": "algo", "level": "level", "seed": "seed"}
SPECIAL_FIELDS = ("tag", "metric", "suffix")


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
        """Build from a config mapping (see the module docstring).

        Raises:
            LayoutError: Naming the layout and key.
        """
        known = {"path", "config_keys", "defaults", "hard_constraint", "help"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise LayoutError(f"layout {name!r}: unknown key(s) {unknown}; known: {sorted(known)}")
        if "path" not in spec or not isinstance(spec["path"], str):
            raise LayoutError(f"layout {name!r}: key 'path' (a template string) is required")
        keys = spec.get("config_keys", {})
        if not isinstance(keys, Mapping):
            raise LayoutError(f"layout {name!r}: key 'config_keys' must be a mapping")
        return cls(
            name=name,
            path=spec["path"],
            config_keys={**BASE_CONFIG_KEYS, **dict(keys)},
            defaults=dict(spec.get("defaults", {})),
            hard_constraint=bool(spec.get("hard_constraint", True)),
            help=str(spec.get("help", "")),
        )


DEFAULT_FLAGS: dict[str, Any] = {
    "output": "data",
    "levels": [1, 2, 3],
    "seeds": [1, 2, 3],
    "envs": list(ENVS),
    "algos": list(ALGOS),
    "metrics": list(METRICS),
    "wandb_tags": [],
    "states": list(STATES),
    "forbidden_tags": list(FORBIDDEN_TAGS),
    "default_tag": "main",
    "hard_constraint_key": "hard_constraint",
}

BUILTIN_SPECS: dict[str, dict[str, Any]] = {
    "tags": {
        "help": "Tag-based experiments: <out>/<tag>/<env>/<algo>/level_<l>/seed_<s>/<metric>.json",
        "path": "{tag}/{env}/{algo}/level_{level}/seed_{seed}/{metric}{suffix}.json",
        "defaults": {"output": "data"},
        "hard_constraint": True,
    },
    "cost-scale": {
        "help": "Cost-scaling experiments: <out>/<env>/<algo>/level_<l>/scale_<x>/seed_<s>/<metric>.json",
        "path": "{env}/{algo}/level_{level}/scale_{scale}/seed_{seed}/{metric}{suffix}.json",
        "config_keys": {"scale": "penalty_scaling"},
        "defaults": {
            "output": "data/cost_scale",
            "algos": ["PPOCost"],
            "wandb_tags": ["COST_SCALING"],
        },
        "hard_constraint": False,
    },
    "safety-bound": {
        "help": "Safety-bound experiments: <out>/<env>/<algo>/level_<l>/bound_<x>/seed_<s>/<metric>.json",
        "path": "{env}/{algo}/level_{level}/bound_{bound}/seed_{seed}/{metric}{suffix}.json",
        "config_keys": {"bound": "safety_bound"},
        "defaults": {"output": "data/main"},
        "hard_constraint": True,
    },
}

BUILTIN_LAYOUTS: dict[str, Layout] = {
    n: Layout.from_mapping(n, s) for n, s in BUILTIN_SPECS.items()
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
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else require("yaml", "wandb").safe_load(text)
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
