"""The YAML configuration of the NumPy/CSV exporter (``DEFAULT`` plus named experiments).

Every key may sit in ``DEFAULT`` or in an experiment; the experiment's value wins. Required:
``entity``, ``project``, ``fields``, ``output_path``. Optional: ``groups``, ``job_types``,
``runs`` (run display names), ``output_data_type`` (``numpy`` or ``csv``, default numpy),
``history_samples`` (``all`` or a number, default 12000), ``config`` and ``summary``
(key -> ``{values: [...]}`` or ``{min: a, max: b}``), ``states`` (run states),
``align`` (``step``: columns are the union of steps; ``index``: row positions, NaN-padded)
and ``offline_dirs`` (read offline run folders instead of the server).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offgen_tools._files import load_config_file
from offgen_tools.errors import ConfigError
from offgen_tools.runs.filters import and_filters

REQUIRED = ("entity", "project", "fields", "output_path")
OPTIONAL = (
    "groups",
    "job_types",
    "runs",
    "output_data_type",
    "history_samples",
    "config",
    "summary",
    "states",
    "align",
    "offline_dirs",
)
DEFAULT_SAMPLES = 12000


@dataclass(frozen=True)
class Experiment:
    """One experiment of the exporter config, DEFAULT merged in.

    Attributes:
        name: Experiment name (output subfolder).
        entity: WandB entity.
        project: WandB project.
        fields: Metrics to export.
        output_path: Output base folder.
        groups: Allowed groups (empty: all).
        job_types: Allowed job types (empty: all).
        runs: Allowed run display names (empty: all).
        output_data_type: ``numpy`` or ``csv``.
        history_samples: None for the complete history, else sampled rows.
        config: Config filters.
        summary: Summary filters.
        states: Allowed run states (empty: all).
        align: ``step`` or ``index``.
        offline_dirs: Offline run folders (empty: use the WandB server).
    """

    name: str
    entity: str
    project: str
    fields: tuple[str, ...]
    output_path: Path
    groups: tuple[str, ...] = ()
    job_types: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()
    output_data_type: str = "numpy"
    history_samples: int | None = DEFAULT_SAMPLES
    config: Mapping[str, Mapping[str, Any]] | None = None
    summary: Mapping[str, Mapping[str, Any]] | None = None
    states: tuple[str, ...] = ()
    align: str = "step"
    offline_dirs: tuple[Path, ...] = ()

    @property
    def path(self) -> str:
        """``entity/project``."""
        return f"{self.entity}/{self.project}"

    @property
    def output_dir(self) -> Path:
        """``<output_path>/<name>``."""
        return self.output_path / self.name

    def filters(self) -> dict[str, Any]:
        """Server-side filters; every filter applies on its own (job types without groups too)."""
        parts: list[dict[str, Any]] = []
        if self.groups:
            parts.append({"group": {"$in": list(self.groups)}})
        if self.job_types:
            parts.append({"jobType": {"$in": list(self.job_types)}})
        if self.runs:
            parts.append({"display_name": {"$in": list(self.runs)}})
        if self.states:
            parts.append({"state": {"$in": list(self.states)}})
        for prefix, spec in (("config", self.config), ("summary_metrics", self.summary)):
            for key, cond in (spec or {}).items():
                parts.append({f"{prefix}.{key}": _condition(cond)})
        return and_filters(*parts)


def _condition(cond: Mapping[str, Any]) -> dict[str, Any]:
    if "values" in cond:
        return {"$in": list(cond["values"])}
    out: dict[str, Any] = {}
    if "min" in cond:
        out["$gte"] = cond["min"]
    if "max" in cond:
        out["$lte"] = cond["max"]
    return out


def _str_list(name: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str | int | float) for v in value):
        raise ConfigError(
            f"experiment {name!r}: key {key!r} must be a list of strings, got {value!r}"
        )
    return tuple(str(v) for v in value)


def _filters(name: str, key: str, value: Any) -> dict[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"experiment {name!r}: key {key!r} must be a mapping of entry -> condition"
        )
    out: dict[str, Mapping[str, Any]] = {}
    for entry, cond in value.items():
        where = f"experiment {name!r}: key '{key}.{entry}'"
        if not isinstance(cond, Mapping):
            raise ConfigError(
                f"{where} must be {{values: [...]}} or {{min: x, max: y}}, got {cond!r}"
            )
        extra = sorted(set(cond) - {"values", "min", "max"})
        if extra:
            raise ConfigError(f"{where}: unknown condition(s) {extra}; use values, min, max")
        if "values" in cond and ("min" in cond or "max" in cond):
            raise ConfigError(f"{where}: give either values or min/max, not both")
        if "values" in cond and not isinstance(cond["values"], list):
            raise ConfigError(f"{where}: values must be a list")
        if not cond:
            raise ConfigError(f"{where}: empty condition; give values or min/max")
        for bound in ("min", "max"):
            if bound in cond and (
                isinstance(cond[bound], bool) or not isinstance(cond[bound], int | float)
            ):
                raise ConfigError(f"{where}: {bound} must be a number, got {cond[bound]!r}")
        out[str(entry)] = dict(cond)
    return out


def parse_config(data: Any, where: str = "<config>") -> list[Experiment]:
    """Validate an exporter config and merge DEFAULT into each experiment.

    Args:
        data: The parsed YAML.
        where: File name for messages.

    Returns:
        The experiments, in file order.

    Raises:
        ConfigError: Naming the experiment and key.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: top level must be a mapping of experiments")
    default = data.get("DEFAULT") or {}
    if not isinstance(default, Mapping):
        raise ConfigError(f"{where}: DEFAULT must be a mapping")
    names = [k for k in data if k != "DEFAULT"]
    if not names:
        raise ConfigError(f"{where}: needs at least one experiment besides DEFAULT")
    known = set(REQUIRED) | set(OPTIONAL)
    for key in default:
        if key not in known:
            raise ConfigError(f"{where}: DEFAULT has unknown key {key!r}; known: {sorted(known)}")
    experiments = []
    for name in names:
        body = data[name] or {}
        if not isinstance(body, Mapping):
            raise ConfigError(f"{where}: experiment {name!r} must be a mapping")
        for key in body:
            if key not in known:
                raise ConfigError(
                    f"{where}: experiment {name!r} has unknown key {key!r}; known: {sorted(known)}"
                )
        merged = {**default, **body}
        try:
            experiments.append(_experiment(str(name), merged))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return experiments


def _experiment(name: str, cfg: Mapping[str, Any]) -> Experiment:
    for key in REQUIRED:
        if key not in cfg or cfg[key] in (None, "", []):
            raise ConfigError(
                f"experiment {name!r}: required key {key!r} is missing (set it in DEFAULT or the experiment)"
            )
    fields = _str_list(name, "fields", cfg["fields"])
    kind = cfg.get("output_data_type", "numpy")
    if kind not in ("numpy", "csv"):
        raise ConfigError(
            f"experiment {name!r}: key 'output_data_type' must be 'numpy' or 'csv', got {kind!r}"
        )
    samples_raw = cfg.get("history_samples", DEFAULT_SAMPLES)
    samples: int | None
    if samples_raw == "all":
        samples = None
    elif isinstance(samples_raw, int) and not isinstance(samples_raw, bool) and samples_raw > 0:
        samples = samples_raw
    else:
        raise ConfigError(
            f"experiment {name!r}: key 'history_samples' must be 'all' or a positive integer, got {samples_raw!r}"
        )
    align = cfg.get("align", "step")
    if align not in ("step", "index"):
        raise ConfigError(
            f"experiment {name!r}: key 'align' must be 'step' or 'index', got {align!r}"
        )
    return Experiment(
        name=name,
        entity=str(cfg["entity"]),
        project=str(cfg["project"]),
        fields=fields,
        output_path=Path(str(cfg["output_path"])),
        groups=_str_list(name, "groups", cfg.get("groups") or []),
        job_types=_str_list(name, "job_types", cfg.get("job_types") or []),
        runs=_str_list(name, "runs", cfg.get("runs") or []),
        output_data_type=kind,
        history_samples=samples,
        config=_filters(name, "config", cfg.get("config") or {}),
        summary=_filters(name, "summary", cfg.get("summary") or {}),
        states=_str_list(name, "states", cfg.get("states") or []),
        align=align,
        offline_dirs=tuple(
            Path(p) for p in _str_list(name, "offline_dirs", cfg.get("offline_dirs") or [])
        ),
    )


def load_config(path: str | Path) -> list[Experiment]:
    """Read and validate a YAML exporter config.

    Args:
        path: The YAML file.

    Returns:
        The experiments.
    """
    path = Path(path)
    return parse_config(load_config_file(path, ConfigError), str(path))
