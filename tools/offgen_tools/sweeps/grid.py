"""Hyperparameter grids addressed by an integer index.

A grid is a JSON object whose leaves are lists of candidate values (nested objects allowed).
With ``N`` settings (the product of the list lengths):

* ``setting = index mod N`` and ``run = index div N``: indices ``s, s+N, s+2N, ...`` are runs
  0, 1, 2, ... of the same setting, each with its own seed;
* the setting number is a mixed-radix number over the axes in the config's key order. With
  ``first-fastest`` (the default, the original policy-params semantics) the FIRST key varies
  fastest; with ``last-fastest`` the LAST key varies fastest, as in ``itertools.product`` and
  nested shell loops;
* a key starting with ``$together`` holds an object of equal-length lists that vary together
  as one axis (``{"$together": {"lr": [1e-3, 1e-4], "batch": [32, 64]}}`` gives 2 settings);
* a scalar leaf is a constant (one value).

Seed rule (:class:`SeedRule`): ``offset`` (default) gives ``seed = offset + run``;
``legacy`` gives ``seed = 32767 - run`` like the original. The seed depends only on the run
number, so every setting's run ``r`` shares a seed and re-running an index reproduces it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from offgen_tools._nested import set_nested
from offgen_tools.errors import GridError

IndexOrder = Literal["first-fastest", "last-fastest"]
INDEX_ORDERS: tuple[str, ...] = ("first-fastest", "last-fastest")
TOGETHER_PREFIX = "$together"

#: Top-level keys of a sweep file that configure the sweep rather than name parameters.
SWEEP_KEYS = ("parameters", "index_order", "seed_rule", "slurm", "command", "module")

#: Where ``find_grid_config`` looks for named configs: ``<root>/<base>/<folder>/<name>.json``.
CONFIGS_SUBDIR = Path("baselines") / "configs"


@dataclass(frozen=True)
class SeedRule:
    """How a run number becomes a random seed.

    Attributes:
        kind: ``offset`` (``seed = offset + run``) or ``legacy`` (``seed = 32767 - run``).
        offset: Added to the run number for ``offset``.
    """

    kind: Literal["offset", "legacy"] = "offset"
    offset: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("offset", "legacy"):
            raise GridError(f"seed_rule.kind must be 'offset' or 'legacy', got {self.kind!r}")

    def seed(self, run: int) -> int:
        """The seed of run number ``run``."""
        if self.kind == "legacy":
            return 32767 - run
        return self.offset + run

    def describe(self) -> str:
        """A one-line human description."""
        return "seed = 32767 - run" if self.kind == "legacy" else f"seed = {self.offset} + run"


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid.

    Attributes:
        paths: Parameter paths on this axis (several for a ``$together`` axis).
        values: ``values[i][j]`` is the value of ``paths[j]`` at position ``i``.
    """

    paths: tuple[tuple[str, ...], ...]
    values: tuple[tuple[Any, ...], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Dotted parameter names."""
        return tuple(".".join(p) for p in self.paths)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Setting:
    """What one index means.

    Attributes:
        index: The index.
        setting: ``index mod N``.
        run: ``index div N``.
        seed: Seed from the grid's seed rule.
        params: The parameters, nested like the config, one value per leaf.
        flat: Dotted parameter name to value.
    """

    index: int
    setting: int
    run: int
    seed: int
    params: Mapping[str, Any]
    flat: Mapping[str, Any] = field(default_factory=dict)


class Grid:
    """A hyperparameter grid with index lookups in both directions.

    The input is deep-copied and never mutated.

    Example:
        >>> grid = Grid({"a": [1, 2], "b": ["x", "y", "z"]})
        >>> len(grid)
        6
        >>> grid.resolve(1).flat
        {'a': 2, 'b': 'x'}
        >>> Grid({"a": [1, 2], "b": ["x", "y", "z"]}, order="last-fastest").resolve(1).flat
        {'a': 1, 'b': 'y'}
        >>> grid.resolve(7).run, grid.resolve(7).setting
        (1, 1)
    """

    def __init__(
        self,
        parameters: Mapping[str, Any],
        *,
        order: str = "first-fastest",
        seed_rule: SeedRule | None = None,
    ) -> None:
        """Create a grid.

        Args:
            parameters: Parameter name to list of values (nested objects allowed).
            order: ``first-fastest`` or ``last-fastest``.
            seed_rule: Seed rule; defaults to ``seed = run``.

        Raises:
            GridError: On an unknown order, an empty list or mismatched ``$together`` lists.
        """
        if order not in INDEX_ORDERS:
            raise GridError(f"index order must be one of {list(INDEX_ORDERS)}, got {order!r}")
        if not isinstance(parameters, Mapping):
            raise GridError(f"parameters must be an object, got {type(parameters).__name__}")
        self.order: str = order
        self.seed_rule = seed_rule or SeedRule()
        self._template = copy.deepcopy(dict(parameters))
        self.axes: tuple[Axis, ...] = tuple(_axes(self._template, ()))
        size = 1
        for axis in self.axes:
            size *= len(axis)
        self.size = size

    def __len__(self) -> int:
        return self.size

    @property
    def names(self) -> list[str]:
        """Dotted names of every parameter, in axis order."""
        return [n for axis in self.axes for n in axis.names]

    def _significance(self) -> list[int]:
        # Position of each axis from least to most significant digit.
        order = list(range(len(self.axes)))
        return order if self.order == "first-fastest" else order[::-1]

    def digits(self, setting: int) -> list[int]:
        """Position along each axis (in config order) of a setting number.

        Args:
            setting: ``0 <= setting < len(grid)``.

        Returns:
            One position per axis.
        """
        if not 0 <= setting < self.size:
            raise GridError(f"setting {setting} out of range 0..{self.size - 1}")
        digits = [0] * len(self.axes)
        rest = setting
        for axis_id in self._significance():
            n = len(self.axes[axis_id])
            digits[axis_id] = rest % n
            rest //= n
        return digits

    def setting_of(self, digits: Sequence[int]) -> int:
        """Setting number of per-axis positions (inverse of :meth:`digits`)."""
        setting = 0
        scale = 1
        for axis_id in self._significance():
            setting += digits[axis_id] * scale
            scale *= len(self.axes[axis_id])
        return setting

    def flat_params(self, setting: int) -> dict[str, Any]:
        """Dotted name to value for a setting number."""
        flat: dict[str, Any] = {}
        for axis, pos in zip(self.axes, self.digits(setting), strict=True):
            for name, value in zip(axis.names, axis.values[pos], strict=True):
                flat[name] = copy.deepcopy(value)
        return flat

    def params(self, setting: int) -> dict[str, Any]:
        """The parameters of a setting, nested like the config."""
        out = copy.deepcopy(self._template)
        _strip_together(out)
        for axis, pos in zip(self.axes, self.digits(setting), strict=True):
            for path, value in zip(axis.paths, axis.values[pos], strict=True):
                set_nested(out, path, copy.deepcopy(value))
        return out

    def resolve(self, index: int) -> Setting:
        """What an index means: setting, run, seed and parameters.

        Args:
            index: A non-negative index.

        Returns:
            The setting.
        """
        if index < 0:
            raise GridError(f"index must be >= 0, got {index}")
        setting, run = index % self.size, index // self.size
        return Setting(
            index=index,
            setting=setting,
            run=run,
            seed=self.seed_rule.seed(run),
            params=self.params(setting),
            flat=self.flat_params(setting),
        )

    def index_of(self, setting: int, run: int = 0) -> int:
        """The index of run ``run`` of setting ``setting``."""
        if not 0 <= setting < self.size:
            raise GridError(f"setting {setting} out of range 0..{self.size - 1}")
        return setting + run * self.size

    def settings_matching(self, params: Mapping[str, Any]) -> list[int]:
        """Setting numbers whose parameters include the given values.

        Args:
            params: Dotted names (or a nested object) to required values; a partial
                specification matches several settings.

        Returns:
            Sorted setting numbers.

        Raises:
            GridError: If a name is not a parameter of the grid.
        """
        wanted = _flatten(params)
        known = set(self.names)
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise GridError(f"unknown parameter(s) {unknown}; the grid has {sorted(known)}")
        choices: list[list[int]] = []
        for axis in self.axes:
            allowed = [
                i
                for i, vals in enumerate(axis.values)
                if all(
                    _same(vals[j], wanted[name])
                    for j, name in enumerate(axis.names)
                    if name in wanted
                )
            ]
            choices.append(allowed)
        return sorted(self.setting_of(d) for d in _product(choices))

    def indices(self, params: Mapping[str, Any], runs: int = 1) -> list[int]:
        """Every index of the matching settings for runs ``0..runs-1``.

        Args:
            params: Required values (see :meth:`settings_matching`).
            runs: Number of runs.

        Returns:
            Sorted indices.
        """
        settings = self.settings_matching(params)
        return sorted(s + r * self.size for s in settings for r in range(runs))

    def __iter__(self) -> Iterator[Setting]:
        return (self.resolve(i) for i in range(self.size))

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description of the grid."""
        return {
            "num_settings": self.size,
            "index_order": self.order,
            "seed_rule": self.seed_rule.describe(),
            "axes": [{"names": list(a.names), "length": len(a)} for a in self.axes],
        }


@dataclass(frozen=True)
class SweepConfig:
    """A sweep file: the grid plus everything around it.

    Attributes:
        grid: The grid.
        metadata: Keys of the file other than the sweep keys (``agent_name``...).
        raw: The whole file as read (a deep copy).
        slurm: The ``slurm`` section (resources), possibly empty.
        command: The ``command`` template, or None.
        module: The ``module`` key (the ``{module}`` template field, e.g.
            ``baselines.train_offline``), or None.
    """

    grid: Grid
    metadata: Mapping[str, Any]
    raw: Mapping[str, Any]
    slurm: Mapping[str, Any]
    command: str | None
    module: str | None = None


def load_sweep(
    source: str | Path | Mapping[str, Any],
    *,
    order: str | None = None,
    seed_rule: SeedRule | None = None,
) -> SweepConfig:
    """Read a sweep file (JSON).

    The parameters are the ``parameters`` object when present (the policy-params agent
    format), otherwise every key other than the sweep keys. Optional keys: ``index_order``,
    ``seed_rule`` (``{"kind": "offset", "offset": 0}``), ``slurm`` (resources), ``command``,
    ``module`` (fills the command's ``{module}`` field).

    Args:
        source: Path to a JSON file, or the already-parsed object.
        order: Overrides ``index_order`` from the file.
        seed_rule: Overrides ``seed_rule`` from the file.

    Returns:
        The sweep.

    Raises:
        GridError: Naming the file and key on invalid content.
    """
    where = str(source) if not isinstance(source, Mapping) else "<config>"
    if isinstance(source, Mapping):
        raw = copy.deepcopy(dict(source))
    else:
        try:
            raw = json.loads(Path(source).read_text())
        except json.JSONDecodeError as exc:
            raise GridError(f"{where}: invalid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise GridError(f"{where}: top level must be an object")
    if "parameters" in raw:
        params = raw["parameters"]
        metadata = {k: v for k, v in raw.items() if k not in SWEEP_KEYS}
    else:
        params = {k: v for k, v in raw.items() if k not in SWEEP_KEYS}
        metadata = {}
    if not isinstance(params, dict):
        raise GridError(f"{where}: key 'parameters' must be an object")
    rule = seed_rule
    if rule is None:
        spec = raw.get("seed_rule", {})
        if not isinstance(spec, dict):
            raise GridError(f"{where}: key 'seed_rule' must be an object like {{'kind': 'offset'}}")
        try:
            rule = SeedRule(kind=spec.get("kind", "offset"), offset=int(spec.get("offset", 0)))
        except (GridError, TypeError, ValueError) as exc:
            raise GridError(f"{where}: key 'seed_rule': {exc}") from exc
    try:
        grid = Grid(params, order=order or raw.get("index_order", "first-fastest"), seed_rule=rule)
    except GridError as exc:
        raise GridError(f"{where}: {exc}") from exc
    slurm = raw.get("slurm", {})
    if not isinstance(slurm, dict):
        raise GridError(f"{where}: key 'slurm' must be an object")
    command = raw.get("command")
    if command is not None and not isinstance(command, str):
        raise GridError(f"{where}: key 'command' must be a string")
    module = raw.get("module")
    if module is not None and not isinstance(module, str):
        raise GridError(f"{where}: key 'module' must be a string like 'baselines.train_offline'")
    return SweepConfig(
        grid=grid,
        metadata=metadata,
        raw=copy.deepcopy(raw),
        slurm=slurm,
        command=command,
        module=module,
    )


def config_roots() -> list[Path]:
    """Folders holding ``<base>/<folder>/<name>.json`` configs: ``./baselines/configs`` of the
    working directory, then the one of the source checkout this package lives in."""
    checkout = Path(__file__).resolve().parents[3] / CONFIGS_SUBDIR
    found: list[Path] = []
    for root in (Path.cwd() / CONFIGS_SUBDIR, checkout):
        if root.is_dir() and root.resolve() not in [f.resolve() for f in found]:
            found.append(root)
    return found


def find_grid_config(name: str, base: str = "offline", folder: str = "grids") -> Path:
    """The sweep file a config name means (the predecessor's ``make_cmd --base_config offline
    --dir grids --grid_config bc``).

    Args:
        name: A path to a JSON file, or a name looked up as ``<base>/<folder>/<name>.json`` in
            :func:`config_roots`.
        base: ``offline`` or ``online``.
        folder: ``grids`` or ``final``.

    Returns:
        The file.

    Raises:
        GridError: When no such file exists (naming the folders searched and the names there).
    """
    given = Path(name)
    if given.suffix == ".json" and given.is_file():
        return given
    stem = given.stem if given.suffix == ".json" else name
    searched = [root / base / folder for root in config_roots()]
    for where in searched:
        if (where / f"{stem}.json").is_file():
            return where / f"{stem}.json"
    known = sorted({p.stem for where in searched if where.is_dir() for p in where.glob("*.json")})
    places = ", ".join(str(w) for w in searched) or f"./{CONFIGS_SUBDIR} (missing)"
    raise GridError(
        f"--grid_config {name!r}: no {stem}.json in {places}; pass a sweep file path or one of: "
        f"{', '.join(known) or '(none)'}"
    )


def _axes(node: Mapping[str, Any], prefix: tuple[str, ...]) -> Iterator[Axis]:
    for key, value in node.items():
        path = (*prefix, key)
        if key.startswith(TOGETHER_PREFIX):
            yield _together_axis(value, prefix, key)
        elif isinstance(value, Mapping):
            yield from _axes(value, path)
        elif isinstance(value, list):
            if not value:
                raise GridError(f"parameter {'.'.join(path)!r} has an empty list of values")
            yield Axis(paths=(path,), values=tuple((v,) for v in value))
        else:
            yield Axis(paths=(path,), values=((value,),))


def _together_axis(value: Any, prefix: tuple[str, ...], key: str) -> Axis:
    name = ".".join((*prefix, key))
    if not isinstance(value, Mapping) or not value:
        raise GridError(f"{name!r} must be a non-empty object of equal-length lists")
    leaves: list[tuple[tuple[str, ...], list[Any]]] = []

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for k, v in node.items():
            if isinstance(v, Mapping):
                walk(v, (*path, k))
            elif isinstance(v, list):
                leaves.append(((*path, k), v))
            else:
                raise GridError(f"{name!r}: entry {k!r} must be a list")

    walk(value, prefix)
    lengths = {len(v) for _, v in leaves}
    if len(lengths) != 1 or 0 in lengths:
        detail = {".".join(p): len(v) for p, v in leaves}
        raise GridError(f"{name!r}: lists must have the same non-zero length, got {detail}")
    n = lengths.pop()
    return Axis(
        paths=tuple(p for p, _ in leaves),
        values=tuple(tuple(v[i] for _, v in leaves) for i in range(n)),
    )


def _strip_together(node: dict[str, Any]) -> None:
    for key in list(node):
        if key.startswith(TOGETHER_PREFIX):
            del node[key]
        elif isinstance(node[key], dict):
            _strip_together(node[key])


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not key.startswith(TOGETHER_PREFIX):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, Mapping):
            out.update(_flatten(value, prefix))
        else:
            out[name] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _product(choices: list[list[int]]) -> Iterator[list[int]]:
    if not choices:
        yield []
        return
    for head in choices[0]:
        for tail in _product(choices[1:]):
            yield [head, *tail]
