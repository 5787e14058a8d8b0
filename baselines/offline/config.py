"""Every flag of ``train_offline`` / ``evaluate_offline`` as one frozen dataclass.

The seed's flags keep the predecessor's names (``--seed --dataset --lr --batch_size --epochs
--hidden_size --agent_model --save_path``, ``--env_name``, the algorithms' ``--cql_alpha`` ...).
Defaults are the predecessor's *final* settings (REFERENCE section 7, ``configs/offline/final/``):
lr 5e-4, batch 256, 100 epochs, hidden 256, IMPALA encoder, early stopping on (patience 10
evaluations, min delta 0.1), evaluation every epoch, target copy every 1000 updates, gamma 0.99,
CQL alpha 4, BCQ threshold 0.5, IQL temperature 3 and expectile 0.8, DT context 10 and eval
target 5 x the dataset's max return. BCQ, IQL, DT and BCT used batch 512 there: pass
``--batch_size 512`` for them (their final configs do).

Each algorithm module's config dataclass takes its same-named fields from this one (see
``baselines/offline/registry.py``), so a flag means the same thing for every algorithm.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines.common.errors import ConfigError
from baselines.common.evaluation import ACTIONS
from baselines.offline.registry import check_algo
from offgen.registry import resolve_game

__all__ = ["EVALUATION_CHANGES", "RESUMABLE_CHANGES", "OfflineConfig"]


def _flag(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class OfflineConfig:
    """Every flag of the offline trainer and evaluator."""

    algo: str = _flag("bc", "Algorithm: bc, bcq, cql, iql, dt or bct.")
    dataset: str = _flag(
        "",
        "offgen.load names or store paths, comma-separated; several are mixed, in proportions "
        "given as NAME:WEIGHT (e.g. a.zarr:0.7,b.zarr:0.3), else in proportion to their sizes.",
    )
    env_name: str = _flag("", "Procgen game; required with dataset names, checked with paths.")
    game: str = _flag("", "Same as --env_name.")
    dataset_size: int = _flag(
        0, "Keep only the highest-return episodes holding dataset_size x percentile steps (0: all)."
    )
    percentile: float = _flag(1.0, "Share of --dataset_size to keep (the predecessor's flag).")
    seed: int = _flag(88, "Seed of the network, the batches and the evaluation levels.")
    lr: float = _flag(5e-4, "Learning rate.")
    batch_size: int = _flag(256, "Transitions (or windows) per update.")
    epochs: int = _flag(100, "Epochs; an epoch is (selected transitions // batch_size) updates.")
    max_steps: int = _flag(0, "Stop after this many updates in all (0: no cap).")
    hidden_size: int = _flag(256, "Width of the encoder's output layer.")
    agent_model: str = _flag("impala", "Encoder: impala (pporesnetbase) or nature (dqn).")
    gamma: float = _flag(0.99, "Discount (BCQ, CQL, IQL).")
    target_update_freq: int = _flag(1000, "Updates between hard target copies (BCQ, CQL, IQL).")
    cql_alpha: float = _flag(4.0, "CQL: weight of the conservative term.")
    bcq_threshold: float = _flag(0.5, "BCQ: imitation-probability threshold (relative to max).")
    iql_temperature: float = _flag(3.0, "IQL: inverse temperature of the advantage weights.")
    iql_expectile: float = _flag(0.8, "IQL: expectile of the value regression.")
    dt_context_length: int = _flag(10, "DT / BCT: context length K in steps.")
    dt_eval_ret: float = _flag(
        5.0, "DT: evaluation target return, a multiple of the dataset's max return."
    )
    eval_freq: int = _flag(1, "Epochs between validation evaluations (0: never).")
    eval_episodes: int = _flag(10, "Episodes per split of each evaluation during training.")
    final_eval_episodes: int = _flag(100, "Episodes per split of evaluate_offline.")
    eval_num_envs: int = _flag(16, "Parallel environments of an evaluation.")
    eval_action: str = _flag("greedy", "Evaluation actions: greedy or sample.")
    early_stop: bool = _flag(True, "Stop when the validation return stops improving.")
    patience: int = _flag(10, "Early stopping: evaluations without improvement before stopping.")
    min_delta: float = _flag(0.1, "Early stopping: smallest validation gain that counts.")
    ckpt_freq: int = _flag(1, "Epochs between checkpoints (rolling/model.pt); always at the end.")
    log_interval: int = _flag(100, "Updates between CSV rows (plus one row per epoch).")
    num_levels: int = _flag(200, "Levels of the 'train' evaluation split (0 .. num_levels-1).")
    distribution_mode: str = _flag("easy", "Procgen distribution mode of evaluations.")
    save_path: str = _flag("./offline", "Runs go to <save_path>/<game>/<xpid>/.")
    xpid: str = _flag("", "Run id (default: algo, lr, batch, a hash of the settings, seed).")
    resume: bool = _flag(False, "Continue the run in <save_path>/<game>/<xpid>/.")
    device: str = _flag("auto", "cpu, cuda or auto.")
    torch_threads: int = _flag(0, "Torch threads (0: torch's default).")
    data_strategy: str = _flag("auto", "offgen sampler storage: auto, ram, memmap or stream.")
    log_wandb: bool = _flag(False, "Also log to WandB (WANDB_MODE=offline works).")
    progress: bool = _flag(True, "Show a progress bar.")

    def __post_init__(self) -> None:
        check_algo(self.algo)
        self._check_ranges()
        if self.eval_action not in ACTIONS:
            raise ConfigError(f"--eval_action must be one of {', '.join(ACTIONS)}")
        if not self.dataset.strip():
            raise ConfigError("--dataset is required: an offgen dataset name or a store path")
        if "/" in self.xpid or self.xpid in (".", ".."):
            raise ConfigError(f"--xpid {self.xpid!r} must be a plain folder name (no '/')")
        self._merge_game_flags()
        if not self.xpid:
            object.__setattr__(self, "xpid", self.default_xpid())

    def _check_ranges(self) -> None:
        positive = ("batch_size", "epochs", "hidden_size", "eval_episodes", "final_eval_episodes")
        for name in (*positive, "eval_num_envs", "ckpt_freq", "log_interval", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_steps", "eval_freq", "dataset_size", "torch_threads", "num_levels"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.percentile <= 1.0:
            raise ConfigError(f"--percentile must be in (0, 1], got {self.percentile}")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")

    def _merge_game_flags(self) -> None:
        names = {resolve_game(g).name for g in (self.env_name, self.game) if g.strip()}
        if len(names) > 1:
            raise ConfigError(
                f"--env_name {self.env_name!r} and --game {self.game!r} differ; pass one of them"
            )
        game = names.pop() if names else ""
        object.__setattr__(self, "env_name", game)
        object.__setattr__(self, "game", game)

    def learning_settings(self) -> dict[str, Any]:
        """The settings that change what is learned (all but :data:`RESUMABLE_CHANGES`)."""
        values = dataclasses.asdict(self)
        return {k: v for k, v in values.items() if k not in RESUMABLE_CHANGES}

    def default_xpid(self) -> str:
        """``<algo>-lr<lr>-bs<batch>-<hash of the settings>_<seed>``: new settings, new folder."""
        settings = {
            k: v for k, v in self.learning_settings().items() if k not in ("xpid", "seed", "game")
        }
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.algo}-lr{self.lr}-bs{self.batch_size}-{digest}_{self.seed}"

    def run_dir(self, game: str) -> Path:
        """``<save_path>/<game>/<xpid>``."""
        return Path(self.save_path) / game / self.xpid


# Settings that may change when a run is resumed or evaluated: where and how it runs and what the
# final evaluation plays, not what it learns.
RESUMABLE_CHANGES = frozenset(
    {
        "resume",
        "device",
        "torch_threads",
        "log_wandb",
        "progress",
        "log_interval",
        "final_eval_episodes",
    }
)
# What evaluate_offline may change besides: how the final evaluation plays, not what was learned.
EVALUATION_CHANGES = RESUMABLE_CHANGES | {
    "eval_num_envs",
    "eval_action",
    "eval_episodes",
    "num_levels",
    "distribution_mode",
    "dt_eval_ret",
}
