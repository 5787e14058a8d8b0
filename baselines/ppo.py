"""PPO on Procgen: the online behaviour-policy trainer (``python -m baselines.ppo``, ``offgen-ppo``).

One readable file in the CleanRL spirit: the config (every flag, with the predecessor's defaults),
then the return normaliser, the rollout, the advantage estimate, the PPO update and the loop.
The network is offgen's IMPALA actor-critic (:func:`offgen.policies.build_impala`), so every
checkpoint is an offgen policy.

Algorithm (the predecessor's, REFERENCE section 2 / 7): Adam (``--lr``, ``--eps``), no learning-rate
annealing; GAE(``--gamma``, ``--gae_lambda``); ``--ppo_epoch`` epochs of ``--num_mini_batch``
minibatches over the whole rollout; clipped policy ratio and clipped value loss (both
``--clip_param``); batch-wide advantage normalisation; rewards divided by the running standard
deviation of the discounted return (clipped to +-10), as openai/baselines' ``VecNormalize(ob=False)``.

Two things differ from the predecessor, both because envpool ends episodes differently from the
procgen package it used: (1) envpool's step after an episode ends is a *reset step* whose action is
ignored; those steps are left out of the loss and statistics instead of being trained on as if the
action mattered; (2) an episode cut by the game's time limit (``truncated``) bootstraps from the
value of its true final frame instead of being treated as a death.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from baselines.common import (
    ConfigError,
    Progress,
    ResumeError,
    RunLogger,
    ThreadPlan,
    archive_name,
    config_from_args,
    differing_fields,
    evaluate_returns,
    final_name,
    flush_denormals,
    load_training_state,
    save_policy,
    save_training_state,
    select_device,
    train_split_name,
    write_evaluation,
)
from baselines.common.evaluation import ACTIONS
from offgen.collect import RolloutRecorder
from offgen.data.writer import StoreWriter
from offgen.envs import EnvSpec, make_env, resolve_distribution_mode
from offgen.errors import OffgenError
from offgen.policies import build_impala
from offgen.registry import resolve_game

__all__ = ["PPOConfig", "Trainer", "main", "run_update", "train"]


def _flag(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class PPOConfig:
    """Every flag of the trainer (the seed's names; the predecessor's defaults)."""

    env_name: str = _flag("coinrun", "Procgen game.")
    num_processes: int = _flag(64, "Parallel environments.")
    num_steps: int = _flag(256, "Steps per environment per rollout.")
    ppo_epoch: int = _flag(3, "Passes over each rollout.")
    num_mini_batch: int = _flag(8, "Minibatches per pass.")
    clip_param: float = _flag(0.2, "PPO ratio clip, also the value-loss clip.")
    entropy_coef: float = _flag(0.01, "Entropy bonus weight.")
    value_loss_coef: float = _flag(0.5, "Value loss weight.")
    gamma: float = _flag(0.999, "Discount.")
    gae_lambda: float = _flag(0.95, "GAE lambda.")
    lr: float = _flag(5e-4, "Adam learning rate (constant).")
    eps: float = _flag(1e-5, "Adam epsilon.")
    max_grad_norm: float = _flag(0.5, "Gradient-norm clip.")
    hidden_size: int = _flag(256, "Width of the IMPALA network's fully connected layer.")
    num_env_steps: int = _flag(25_000_000, "Total environment steps (accepts 25e6).")
    num_levels: int = _flag(200, "Training levels (0: the full distribution).")
    start_level: int = _flag(0, "First training level.")
    distribution_mode: str = _flag("easy", "Procgen distribution mode.")
    log_interval: int = _flag(10, "Updates between CSV/WandB rows.")
    archive_interval: int = _flag(50, "Updates between checkpoint/model_<update>_<ret>.pt files.")
    model_saving_dir: str = _flag("./ppo", "Checkpoints go to <dir>/<game>/<xpid>/.")
    xpid: str = _flag("", "Run id (default: built from the settings and the seed).")
    seed: int = _flag(0, "Seed of the network, the environments and the evaluation levels.")
    resume: bool = _flag(False, "Continue the run in <dir>/<game>/<xpid>/rolling/.")
    save_dataset: bool = _flag(False, "Write every rollout into an offgen store <run>/dataset.")
    log_wandb: bool = _flag(False, "Also log to WandB (WANDB_MODE=offline works).")
    device: str = _flag("auto", "cpu, cuda or auto.")
    torch_threads: int = _flag(0, "Torch threads; 0: 1 while acting, all cores while learning.")
    eval_episodes: int = _flag(10, "Evaluation episodes per split at each archive.")
    final_eval_episodes: int = _flag(100, "Evaluation episodes per split at the end.")
    eval_num_envs: int = _flag(16, "Parallel environments of an evaluation.")
    eval_action: str = _flag("sample", "Evaluation actions: sample or greedy.")
    progress: bool = _flag(True, "Show a progress bar.")
    algo: str = _flag("ppo", "Accepted for the predecessor's command lines; must be ppo.")

    def __post_init__(self) -> None:
        for name in ("num_processes", "num_steps", "ppo_epoch", "num_mini_batch", "hidden_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        for name in ("log_interval", "archive_interval", "eval_episodes", "final_eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.algo != "ppo":
            raise ConfigError(f"--algo {self.algo!r}: this trainer is PPO; use --algo ppo")
        if self.num_env_steps < self.batch_size:
            raise ConfigError(
                f"--num_env_steps {self.num_env_steps} is less than one update "
                f"(--num_processes x --num_steps = {self.batch_size}); raise it"
            )
        if self.num_mini_batch > self.batch_size:
            raise ConfigError(
                f"--num_mini_batch {self.num_mini_batch} exceeds the rollout's "
                f"{self.batch_size} steps; lower it"
            )
        if self.eval_action not in ACTIONS:
            raise ConfigError(f"--eval_action must be one of {', '.join(ACTIONS)}")
        if "/" in self.xpid or self.xpid in (".", ".."):
            raise ConfigError(f"--xpid {self.xpid!r} must be a plain folder name (no '/')")
        game = resolve_game(self.env_name).name
        EnvSpec(
            game,
            resolve_distribution_mode(self.distribution_mode),
            self.start_level,
            self.num_levels,
            None,
        )
        train_split_name(self.start_level, self.num_levels)
        if not self.xpid:
            object.__setattr__(self, "xpid", self.default_xpid(game))
        object.__setattr__(self, "env_name", game)

    @property
    def batch_size(self) -> int:
        """Environment steps per update."""
        return self.num_processes * self.num_steps

    @property
    def num_updates(self) -> int:
        """Updates of the whole run (the predecessor's ``num_env_steps // num_steps // N``)."""
        return self.num_env_steps // self.batch_size

    def default_xpid(self, game: str) -> str:
        """The predecessor's run id, e.g. ``miner-easy-200-ppo-lr0.0005-epoch3-mb8-v0.5-ha0.01_0``."""
        return (
            f"{game}-{self.distribution_mode}-{self.num_levels}-ppo-lr{self.lr}-"
            f"epoch{self.ppo_epoch}-mb{self.num_mini_batch}-v{self.value_loss_coef}-"
            f"ha{self.entropy_coef}_{self.seed}"
        )

    def run_dir(self) -> Path:
        """``<model_saving_dir>/<game>/<xpid>``."""
        return Path(self.model_saving_dir) / self.env_name / self.xpid


# Settings that may change when a run is resumed: where and how it runs, not what it learns.
RESUMABLE_CHANGES = frozenset(
    {"resume", "log_wandb", "device", "torch_threads", "log_interval", "progress"}
)
LOG_COLUMNS = (
    "update",
    "env_steps",
    "train/mean_episode_return",
    "train/episodes",
    "eval/train_return",
    "eval/test_return",
    "loss/policy",
    "loss/value",
    "loss/entropy",
    "loss/approx_kl",
    "loss/clip_fraction",
    "time/steps_per_s",
    "time/env_s",
    "time/inference_s",
    "time/update_s",
    "time/log_s",
)


class ReturnNormaliser:
    """Divide rewards by the running std of each environment's discounted return, clip to +-10."""

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8) -> None:
        self.gamma, self.clip, self.eps = gamma, clip, eps
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4
        self.returns = np.zeros(num_envs, dtype=np.float64)

    def __call__(
        self, rewards: npt.NDArray[Any], done: npt.NDArray[np.bool_], valid: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.float32]:
        """Normalised rewards; statistics are updated from the environments that really stepped."""
        self.returns = self.returns * self.gamma + rewards
        self._update(self.returns[valid])
        out = np.clip(rewards / math.sqrt(self.var + self.eps), -self.clip, self.clip)
        self.returns[done] = 0.0
        return out.astype(np.float32)

    def _update(self, batch: npt.NDArray[np.float64]) -> None:
        if batch.size == 0:
            return
        b_mean, b_var, b_count = float(batch.mean()), float(batch.var()), batch.size
        delta, total = b_mean - self.mean, self.count + b_count
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.mean, self.var, self.count = self.mean + delta * b_count / total, m2 / total, total

    def state_dict(self) -> dict[str, float]:
        """Plain floats (loadable with ``weights_only=True``)."""
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore the running statistics (per-environment returns restart with the envs)."""
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]


@dataclass
class Rollout:
    """One rollout of ``T`` steps in ``N`` environments (``obs`` and ``values`` have ``T + 1``)."""

    obs: torch.Tensor  # (T+1, N, 64, 64, 3) uint8, HWC as envpool and offgen stores give it
    actions: torch.Tensor  # (T, N) int64
    logprobs: torch.Tensor  # (T, N)
    values: torch.Tensor  # (T+1, N)
    rewards: torch.Tensor  # (T, N) normalised
    terminated: torch.Tensor  # (T, N) bool
    done: torch.Tensor  # (T, N) bool: terminated or truncated
    valid: torch.Tensor  # (T, N) bool: False on envpool's reset steps (action ignored)

    @classmethod
    def empty(cls, steps: int, envs: int, device: torch.device) -> Rollout:
        """Preallocated buffers."""

        def z(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros(shape, dtype=dtype, device=device)

        return cls(
            obs=z(steps + 1, envs, 64, 64, 3, dtype=torch.uint8),
            actions=z(steps, envs, dtype=torch.int64),
            logprobs=z(steps, envs),
            values=z(steps + 1, envs),
            rewards=z(steps, envs),
            terminated=z(steps, envs, dtype=torch.bool),
            done=z(steps, envs, dtype=torch.bool),
            valid=z(steps, envs, dtype=torch.bool),
        )


def policy_step(
    model: nn.Module, obs: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample actions (CPU generator, so runs are reproducible) with their log-probs and values."""
    with torch.inference_mode():
        logits, value = model(obs.permute(0, 3, 1, 2))
        logp_all = torch.log_softmax(logits.float(), dim=1)
        actions = torch.multinomial(logp_all.exp().cpu(), 1, generator=generator)[:, 0]
        logp = logp_all.gather(1, actions.to(logp_all.device)[:, None])[:, 0]
    return actions, logp, value.float()


def gae(rollout: Rollout, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns; termination stops bootstrapping, truncation bootstraps.

    After an episode ends, ``obs[t + 1]`` is its true final frame (envpool), so ``values[t + 1]``
    is the right bootstrap for a time-limit truncation; propagation stops at every episode end.
    """
    steps = rollout.actions.shape[0]
    advantages = torch.zeros_like(rollout.rewards)
    carry = torch.zeros_like(rollout.values[0])
    for t in reversed(range(steps)):
        bootstrap = (~rollout.terminated[t]).float()
        cont = (~rollout.done[t]).float()
        delta = rollout.rewards[t] + gamma * bootstrap * rollout.values[t + 1] - rollout.values[t]
        carry = delta + gamma * lam * cont * carry
        advantages[t] = carry
    return advantages, advantages + rollout.values[:-1]


def ppo_update(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    cfg: PPOConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """``--ppo_epoch`` passes of ``--num_mini_batch`` clipped-PPO steps over the valid steps."""
    advantages, returns = gae(rollout, cfg.gamma, cfg.gae_lambda)
    keep = rollout.valid.reshape(-1)
    obs = rollout.obs[:-1].reshape(-1, 64, 64, 3)[keep]
    actions = rollout.actions.reshape(-1)[keep]
    old_logp = rollout.logprobs.reshape(-1)[keep]
    old_values = rollout.values[:-1].reshape(-1)[keep]
    returns = returns.reshape(-1)[keep]
    adv = advantages.reshape(-1)[keep]
    adv = (adv - adv.mean()) / (adv.std() + 1e-5)
    sums = {"policy": 0.0, "value": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_fraction": 0.0}
    for _epoch in range(cfg.ppo_epoch):
        order = torch.randperm(int(keep.sum()), generator=generator).to(obs.device)
        for idx in torch.tensor_split(order, cfg.num_mini_batch):
            logits, values = model(obs[idx].permute(0, 3, 1, 2))
            logp_all = torch.log_softmax(logits, dim=1)
            logp = logp_all.gather(1, actions[idx][:, None])[:, 0]
            entropy = -(logp_all.exp() * logp_all).sum(1).mean()
            ratio = torch.exp(logp - old_logp[idx])
            surr = torch.min(
                ratio * adv[idx],
                ratio.clamp(1 - cfg.clip_param, 1 + cfg.clip_param) * adv[idx],
            )
            policy_loss = -surr.mean()
            clipped = old_values[idx] + (values - old_values[idx]).clamp(
                -cfg.clip_param, cfg.clip_param
            )
            value_loss = (
                0.5 * torch.max((values - returns[idx]) ** 2, (clipped - returns[idx]) ** 2).mean()
            )
            loss = cfg.value_loss_coef * value_loss + policy_loss - cfg.entropy_coef * entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                log_ratio = logp - old_logp[idx]
                sums["approx_kl"] += float(((ratio - 1) - log_ratio).mean())
                sums["clip_fraction"] += float(((ratio - 1).abs() > cfg.clip_param).float().mean())
            sums["policy"] += policy_loss.item()
            sums["value"] += value_loss.item()
            sums["entropy"] += entropy.item()
    steps = cfg.ppo_epoch * cfg.num_mini_batch
    return {f"loss/{k}": v / steps for k, v in sums.items()}


class Trainer:
    """The training loop's state: environments, network, optimizer, normaliser, logs."""

    def __init__(self, cfg: PPOConfig, run_dir: Path, resume_state: Any) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.device = select_device(cfg.device)
        self.threads = ThreadPlan.choose(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        self.model = build_impala(hidden_size=cfg.hidden_size).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, eps=cfg.eps)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.normaliser = ReturnNormaliser(cfg.num_processes, cfg.gamma)
        # Returns of the episodes finished since the last logged row (the logging contract).
        self.finished: list[float] = []
        self.update = 0
        if resume_state is not None:
            self._restore(resume_state)
        self.spec = EnvSpec(
            cfg.env_name,
            resolve_distribution_mode(cfg.distribution_mode),
            cfg.start_level,
            cfg.num_levels,
            None,
        )
        # A resumed run restarts its environments (envpool state cannot be saved) from a seed
        # that depends on the update, so it never replays the levels of the first start.
        self.envs = make_env(self.spec, cfg.num_processes, seed=cfg.seed + 7919 * self.update)
        self.rollout = Rollout.empty(cfg.num_steps, cfg.num_processes, self.device)
        self.episode_returns = np.zeros(cfg.num_processes, dtype=np.float64)
        self.pending_reset = np.zeros(cfg.num_processes, dtype=bool)
        self.recorder = self._open_recorder() if cfg.save_dataset else None
        obs, info = self.envs.reset()
        self.rollout.obs[0].copy_(torch.from_numpy(obs))
        if self.recorder is not None:
            self.recorder.start(obs, info, policy_version=self.update)
        self.timings = {"env": 0.0, "inference": 0.0, "update": 0.0, "log": 0.0}

    def _restore(self, state: Any) -> None:
        self.model.load_state_dict(state.model_state_dict)
        self.optimizer.load_state_dict(state.optimizer_state_dict)
        self.update = state.update
        trainer = state.trainer
        self.normaliser.load_state_dict(trainer["normaliser"])
        self.generator.set_state(trainer["generator"])
        self.finished = [float(r) for r in trainer["finished_returns"]]

    def trainer_state(self) -> dict[str, Any]:
        """What ``rolling/model.pt`` needs beyond weights and optimizer (plain values/tensors)."""
        return {
            "normaliser": self.normaliser.state_dict(),
            "generator": self.generator.get_state(),
            "finished_returns": list(self.finished),
            "env_steps": self.update * self.cfg.batch_size,
        }

    def _open_recorder(self) -> RolloutRecorder:
        # Committed only when rolling/ is saved, so a killed run keeps whole updates' episodes.
        writer = StoreWriter(
            self.run_dir / "dataset",
            game=self.spec.game,
            # A fresh run replaces a dataset left by an attempt that never saved rolling/.
            mode="append" if self.update else "overwrite",
            dataset="training_log",
            env_options=self.spec.to_dict(),
            provenance={"collector": "baselines.ppo", "xpid": self.cfg.xpid},
            commit_interval_s=float("inf"),
        )
        return RolloutRecorder(
            writer,
            num_envs=self.cfg.num_processes,
            policy_id="ppo",
            layout="HWC",
            max_steps_hint=self.spec.max_episode_steps,
        )

    def collect(self) -> None:
        """Fill the rollout buffer with ``--num_steps`` steps of every environment."""
        r, cfg = self.rollout, self.cfg
        for t in range(cfg.num_steps):
            start = time.perf_counter()
            actions, logp, values = policy_step(self.model, r.obs[t], self.generator)
            r.actions[t], r.logprobs[t], r.values[t] = actions.to(self.device), logp, values
            valid = ~self.pending_reset
            mid = time.perf_counter()
            obs, reward, term, trunc, info = self.envs.step(actions.numpy())
            done = np.logical_or(term, trunc)
            self.episode_returns += reward
            for ret in self.episode_returns[done]:
                self.finished.append(float(ret))
            self.episode_returns[done] = 0.0
            norm = self.normaliser(reward.astype(np.float64), done, valid)
            if self.recorder is not None:
                self.recorder.step(
                    actions.numpy(), obs, reward, term, trunc, info, policy_version=self.update
                )
            r.obs[t + 1].copy_(torch.from_numpy(obs))
            r.rewards[t].copy_(torch.from_numpy(norm))
            r.terminated[t].copy_(torch.from_numpy(np.asarray(term, dtype=bool)))
            r.done[t].copy_(torch.from_numpy(done))
            r.valid[t].copy_(torch.from_numpy(valid))
            self.pending_reset = done
            end = time.perf_counter()
            self.timings["inference"] += mid - start
            self.timings["env"] += end - mid
        start = time.perf_counter()
        _a, _l, last_values = policy_step(self.model, r.obs[-1], self.generator)
        r.values[-1] = last_values
        self.timings["inference"] += time.perf_counter() - start

    def learn(self) -> dict[str, float]:
        """One PPO update on the current rollout, then carry the last frame over."""
        start = time.perf_counter()
        self.threads.learning_mode()
        self.model.train()
        losses = ppo_update(self.model, self.optimizer, self.rollout, self.cfg, self.generator)
        self.threads.acting_mode()
        self.rollout.obs[0].copy_(self.rollout.obs[-1])
        self.update += 1
        self.timings["update"] += time.perf_counter() - start
        return losses

    def evaluate(self, episodes: int, splits: Sequence[str]) -> dict[str, float]:
        """Mean returns on the named splits (seeded levels; see baselines.common.evaluation)."""
        return evaluate_returns(
            self.model,
            game=self.cfg.env_name,
            splits=splits,
            episodes=episodes,
            seed=self.cfg.seed,
            num_envs=self.cfg.eval_num_envs,
            action=self.cfg.eval_action,
            distribution_mode=self.cfg.distribution_mode,
        )

    def close(self) -> None:
        """Close the environments and the dataset (left resumable if the run did not finish)."""
        if self.recorder is not None:
            self.recorder.close(finalize=self.update >= self.cfg.num_updates)
        self.envs.close()


def _prepare_run_dir(cfg: PPOConfig) -> tuple[Path, Any]:
    """Create the run folder; load and check ``rolling/`` when resuming."""
    run_dir = cfg.run_dir()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"--model_saving_dir {cfg.model_saving_dir}: cannot write {run_dir} "
            f"({exc.strerror or exc}); choose a folder you can write to"
        ) from exc
    rolling = run_dir / "rolling" / "model.pt"
    if not rolling.exists():
        return run_dir, None
    if not cfg.resume:
        raise ResumeError(
            f"{run_dir} already holds a run (rolling/model.pt); pass --resume to continue it or "
            "choose another --xpid"
        )
    state = load_training_state(rolling)
    current = dataclasses.asdict(cfg)
    differ = differing_fields(state.config, current, ignore=RESUMABLE_CHANGES)
    if differ:
        raise ResumeError(
            f"{rolling}: cannot resume with different settings ({'; '.join(differ)}); use the "
            "saved values or choose another --xpid"
        )
    # Archives written after the saved update by the killed process are redone; drop them.
    for path in (run_dir / "checkpoint").glob("model_*_*.pt"):
        if int(path.stem.split("_")[1]) > state.update:
            path.unlink()
    return run_dir, state


def _finish(trainer: Trainer, logger: RunLogger, split: str) -> Path:
    cfg = trainer.cfg
    splits = [split, "validation", "test"] if split == "train" else [split, "test"]
    returns = trainer.evaluate(cfg.final_eval_episodes, splits)
    final_dir = trainer.run_dir / "final"
    if final_dir.exists():
        shutil.rmtree(final_dir)
    path = save_policy(
        final_dir / final_name(returns["test"]),
        trainer.model,
        update=trainer.update,
        extra={"eval": _eval_record(cfg, cfg.final_eval_episodes, returns)},
    )
    record = {
        "final_test_ret": returns["test"],
        "final_train_ret": returns[split],
        "final_val_ret": returns.get("validation", math.nan),
    }
    write_evaluation(trainer.run_dir, record, _eval_record(cfg, cfg.final_eval_episodes, returns))
    logger.summary({f"eval/{'train' if s == split else s}_return": r for s, r in returns.items()})
    return path


def _eval_record(cfg: PPOConfig, episodes: int, returns: dict[str, float]) -> dict[str, Any]:
    return {
        "returns": dict(returns),
        "episodes_per_split": episodes,
        "seed": cfg.seed,
        "action": cfg.eval_action,
        "name_split": "test",
    }


def train(cfg: PPOConfig) -> Path:
    """Train (or resume) one run; returns the final checkpoint's path.

    Raises:
        OffgenError: On bad settings, an unwritable folder, a resume with different settings, a
            missing GPU (each with a one-line message).
    """
    select_device(cfg.device)  # a missing GPU is reported before anything is created
    run_dir, state = _prepare_run_dir(cfg)
    split = train_split_name(cfg.start_level, cfg.num_levels)
    finals = sorted((run_dir / "final").glob("model_*.pt"))
    if state is not None and state.update >= cfg.num_updates and finals:
        print(f"{run_dir}: already complete ({state.update} updates)", file=sys.stderr)
        return finals[-1]
    trainer = Trainer(cfg, run_dir, state)
    config = dataclasses.asdict(cfg)
    logger = RunLogger(
        run_dir,
        LOG_COLUMNS,
        algo="ppo",
        config=config,
        run_name=cfg.xpid,
        resume_update=trainer.update if state is not None else None,
        use_wandb=cfg.log_wandb,
    )
    try:
        trainer.threads.acting_mode()
        with (
            flush_denormals(),
            Progress(cfg.num_updates, trainer.update, cfg.batch_size, enabled=cfg.progress) as bar,
        ):
            while trainer.update < cfg.num_updates:
                run_update(trainer, logger, bar, split)
        return _finish(trainer, logger, split)
    finally:
        trainer.close()
        logger.close()


def run_update(trainer: Trainer, logger: RunLogger, bar: Progress, split: str) -> None:
    """Collect, learn, then archive / log / save ``rolling/`` in the order that makes resume exact.

    The CSV row is written before ``rolling/`` (a resume drops rows after the saved update), and an
    archive before ``rolling/`` too (a resume deletes archives after the saved update and redoes
    them), so a kill at any point leaves every update recorded exactly once after the resume.
    """
    cfg = trainer.cfg
    trainer.collect()
    losses = trainer.learn()
    start = time.perf_counter()
    update = trainer.update
    metrics = _step_metrics(trainer, losses, bar)
    if update % cfg.archive_interval == 0:
        returns = trainer.evaluate(cfg.eval_episodes, [split, "test"])
        metrics |= {"eval/train_return": returns[split], "eval/test_return": returns["test"]}
        save_policy(
            trainer.run_dir / "checkpoint" / archive_name(update, returns["test"]),
            trainer.model,
            update=update,
            extra={"eval": _eval_record(cfg, cfg.eval_episodes, returns)},
        )
    if update % cfg.log_interval == 0 or "eval/test_return" in metrics:
        logger.log(metrics, step=update * cfg.batch_size)
        trainer.finished.clear()
    if trainer.recorder is not None:
        trainer.recorder.writer.flush()
    save_training_state(
        trainer.run_dir / "rolling" / "model.pt",
        trainer.model,
        trainer.optimizer,
        update=update,
        config=dataclasses.asdict(cfg),
        trainer=trainer.trainer_state(),
    )
    trainer.timings["log"] += time.perf_counter() - start


def _step_metrics(trainer: Trainer, losses: dict[str, float], bar: Progress) -> dict[str, Any]:
    mean_return = float(np.mean(trainer.finished)) if trainer.finished else math.nan
    rate = bar.advance(mean_return)
    return {
        "update": trainer.update,
        "env_steps": trainer.update * trainer.cfg.batch_size,
        "train/mean_episode_return": mean_return,
        "train/episodes": len(trainer.finished),
        **losses,
        "time/steps_per_s": rate,
        **{f"time/{k}_s": v for k, v in trainer.timings.items()},
    }


PROG = "offgen-ppo"
DESCRIPTION = "Train a PPO behaviour policy on Procgen (envpool, IMPALA network)."


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; bad input exits with status 2 and a one-line error."""
    try:
        cfg = config_from_args(PPOConfig, argv, prog=PROG, description=DESCRIPTION)
        path = train(cfg)
    except OffgenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; continue with the same flags and --resume", file=sys.stderr)
        return 130
    print(f"final checkpoint: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
