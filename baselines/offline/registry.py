"""``--algo`` names -> algorithm modules, and building an algorithm from the run's settings.

Every algorithm module ``baselines/offline/<algo>.py`` follows one convention:

* a frozen dataclass ``<Algo>Config`` whose fields are flags of ``train_offline`` (``lr``,
  ``hidden_size``, ``agent_model``, ``gamma``, ``cql_alpha``, ``dt_context_length``, ``seed``,
  ...), values the loop derives from the run (:data:`DERIVED`: ``total_updates`` for learning
  rate schedules, ``dataset_max_return`` for DT's target return), or the algorithm's own
  constants with defaults (not flags: their defaults apply);
* constants ``CONFIG = <Algo>Config`` and ``DATA = "transitions"`` (or ``"windows"``);
* ``make(config, device) -> <Algo>``, an object satisfying
  :class:`baselines.offline.algorithm.OfflineAlgorithm`.

The loop builds the algorithm's config by taking its same-named values from the run's
:class:`~baselines.offline.config.OfflineConfig`, so a flag means the same for every algorithm.
Modules are imported only when an algorithm is built (a run imports one algorithm).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from baselines.common.errors import ConfigError

__all__ = ["ALGORITHMS", "DERIVED", "algorithm_module", "check_algo", "make_algorithm"]

ALGORITHMS: dict[str, str] = {
    "bc": "baselines.offline.bc",
    "bcq": "baselines.offline.bcq",
    "cql": "baselines.offline.cql",
    "iql": "baselines.offline.iql",
    "dt": "baselines.offline.dt",
    "bct": "baselines.offline.bct",
    # A new algorithm: one line here, and its module following the convention above.
}
"""``--algo`` value -> module implementing the convention above."""

DERIVED = ("total_updates", "dataset_max_return")
"""Algorithm config fields that are not flags: the loop computes them from the run."""


def check_algo(name: str) -> str:
    """``name`` if it is a registered ``--algo``.

    Raises:
        ConfigError: For an unknown name (one line listing the known ones).
    """
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown --algo {name!r}; use one of {', '.join(sorted(ALGORITHMS))}")
    return name


def algorithm_module(name: str) -> ModuleType:
    """The module of ``--algo name`` (checked to follow the convention)."""
    module = importlib.import_module(ALGORITHMS[check_algo(name)])
    missing = [n for n in ("CONFIG", "DATA", "make") if not hasattr(module, n)]
    if missing:
        raise TypeError(
            f"{module.__name__} lacks {', '.join(missing)} (see baselines.offline.registry)"
        )
    return module


def algorithm_config(module: ModuleType, settings: Any, derived: Mapping[str, Any]) -> Any:
    """``module.CONFIG`` filled from ``settings`` (same-named attributes) and ``derived``."""
    values: dict[str, Any] = {}
    for item in dataclasses.fields(module.CONFIG):
        if item.name in derived:
            values[item.name] = derived[item.name]
        elif hasattr(settings, item.name):
            values[item.name] = getattr(settings, item.name)
        elif item.default is not dataclasses.MISSING:
            continue  # an algorithm's own constant (e.g. DT's depth): its default applies
        else:
            raise TypeError(
                f"{module.__name__}: config field {item.name!r} is neither a train_offline flag "
                f"nor derived ({', '.join(DERIVED)})"
            )
    return module.CONFIG(**values)


def make_algorithm(name: str, settings: Any, derived: Mapping[str, Any], device: Any) -> Any:
    """Build ``--algo name`` from the run's settings on ``device``.

    Args:
        name: The ``--algo`` value.
        settings: The run's :class:`~baselines.offline.config.OfflineConfig`.
        derived: Values of :data:`DERIVED` for this run.
        device: The ``torch.device`` to train on.
    """
    module = algorithm_module(name)
    algorithm = module.make(algorithm_config(module, settings, derived), device)
    if algorithm.data != module.DATA:
        raise TypeError(f"{module.__name__}: make() returned data {algorithm.data!r} != DATA")
    return algorithm
