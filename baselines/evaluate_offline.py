"""Evaluate a trained offline baseline (``python -m baselines.evaluate_offline``,
``offgen-evaluate-offline``): copy the training command and replace the module.

It loads the run's ``best/model.pt`` (the weights with the best validation return), evaluates them on
train, validation and test with ``--final_eval_episodes`` (100) seeded episodes per split through
:func:`offgen.evaluation.evaluate`, and writes into the run folder ``evaluate.json`` (the full
report: per-split mean, std, stderr, normalised return, every episode) and ``evaluate.csv`` with the
predecessor's columns ``final_test_ret,final_train_ret,final_val_ret`` as plain floats, then the
normalised means ``final_<split>_norm``.

Only flags that change how the evaluation plays may differ from the training command
(``--final_eval_episodes``, ``--eval_num_envs``, ``--eval_action``, ``--num_levels``,
``--distribution_mode``, ``--dt_eval_ret``, ``--device``); a checkpoint trained by another
``--algo`` or with other settings is a one-line error.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from baselines.common import config_from_args, differing_fields, select_device, write_evaluation
from baselines.common.errors import ConfigError
from baselines.offline.checkpoint import BEST, load_run_file, restore_modules
from baselines.offline.config import EVALUATION_CHANGES, OfflineConfig
from baselines.offline.data import open_training_data
from baselines.offline.evaluation import evaluate_algorithm
from baselines.offline.loop import updates_per_epoch
from baselines.offline.registry import algorithm_module, make_algorithm
from offgen.errors import OffgenError

__all__ = ["evaluate_run", "main"]

PROG = "offgen-evaluate-offline"
DESCRIPTION = (
    "Evaluate a trained offline baseline on train, validation and test levels (same flags as "
    "train_offline)."
)
SPLITS = ("train", "validation", "test")


def _load_checked(cfg: OfflineConfig, path: Path) -> Any:
    saved = load_run_file(path)
    if saved.algo != cfg.algo:
        raise ConfigError(
            f"{path} was trained by --algo {saved.algo}, not --algo {cfg.algo}; evaluate it with "
            f"--algo {saved.algo} (copy its training command)"
        )
    differ = differing_fields(saved.config, cfg.learning_settings(), ignore=EVALUATION_CHANGES)
    if differ:
        raise ConfigError(
            f"{path} was trained with other settings ({'; '.join(differ)}); copy its training "
            "command and change only the evaluation flags"
        )
    return saved


def evaluate_run(cfg: OfflineConfig) -> Path:
    """Evaluate the best model of the run ``cfg`` names; returns the ``evaluate.json`` path.

    Raises:
        OffgenError: A missing or damaged checkpoint, one of another algorithm or other settings,
            bad flags (each a one-line message).
    """
    device = select_device(cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    module = algorithm_module(cfg.algo)
    data = open_training_data(cfg, module.DATA)
    run_dir = cfg.run_dir(data.game)
    saved = _load_checked(cfg, run_dir / BEST)
    total = updates_per_epoch(data.num_transitions, cfg.batch_size) * cfg.epochs
    derived = {
        "total_updates": min(total, cfg.max_steps) if cfg.max_steps else total,
        "dataset_max_return": data.max_return,
    }
    algorithm = make_algorithm(cfg.algo, cfg, derived, device)
    restore_modules(algorithm.modules(), saved.model_state_dict)
    report = evaluate_algorithm(
        algorithm,
        cfg,
        data.game,
        splits=SPLITS,
        episodes=cfg.final_eval_episodes,
        metadata={"algo": cfg.algo, "run": str(run_dir), "update": saved.update},
    )
    details = {
        "report": report.to_dict(),
        "algo": cfg.algo,
        "update": saved.update,
        "validation_return_in_training": saved.extra.get("validation_return"),
        "evaluation": {k: v for k, v in dataclasses.asdict(cfg).items() if k in EVALUATION_CHANGES},
    }
    write_evaluation(run_dir, report.csv_row(), details)
    return run_dir / "evaluate.json"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; bad input exits with status 2 and a one-line error."""
    try:
        cfg = config_from_args(OfflineConfig, argv, prog=PROG, description=DESCRIPTION)
        path = evaluate_run(cfg)
    except OffgenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(f"evaluation: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
