"""What every trainer in ``baselines`` shares: devices, checkpoints, logging, evaluation, flags."""

from baselines.common.checkpoint import (
    TrainingState,
    archive_name,
    final_name,
    load_training_state,
    save_policy,
    save_training_state,
)
from baselines.common.device import ThreadPlan, flush_denormals, offline_updates, select_device
from baselines.common.errors import ConfigError, DeviceError, ResumeError
from baselines.common.evaluation import evaluate_returns, train_split_name
from baselines.common.flags import build_parser, config_from_args, differing_fields
from baselines.common.logging import RunLogger, run_metadata, write_evaluation
from baselines.common.progress import Progress

__all__ = [
    "ConfigError",
    "DeviceError",
    "Progress",
    "ResumeError",
    "RunLogger",
    "ThreadPlan",
    "TrainingState",
    "archive_name",
    "build_parser",
    "config_from_args",
    "differing_fields",
    "evaluate_returns",
    "final_name",
    "flush_denormals",
    "load_training_state",
    "offline_updates",
    "run_metadata",
    "save_policy",
    "save_training_state",
    "select_device",
    "train_split_name",
    "write_evaluation",
]
