"""The training loop every offline algorithm shares.

What one run does (``train``):

1. Open ``--dataset`` (:mod:`baselines.offline.data`), check it against the flags, and plan the
   run: **an epoch is ``selected transitions // batch_size`` updates** (at least one) of batches
   drawn uniformly with replacement, so each selected step is seen about once per epoch; the run
   is ``--epochs`` epochs, capped at ``--max_steps`` updates when that is set.
2. Build the algorithm from the registry (torch seeded with ``--seed`` first), or restore it with
   ``--resume`` from ``rolling/model.pt`` after checking that the learning settings did not change.
3. Update on prefetched batches. After each epoch: every ``--eval_freq`` epochs evaluate the
   validation split (``--eval_episodes`` seeded episodes), keep the best weights (written to
   ``best/model.pt``) and stop early after ``--patience`` evaluations without a gain above
   ``--min_delta`` (with ``--early_stop``); every ``--ckpt_freq`` epochs write ``rolling/``.
4. At the end write ``rolling/`` (finished), restore the best weights, write ``best/model.pt``
   and evaluate them on train, validation and test (``final_eval.json``).

The same seed gives the same run bit for bit on one machine and device, killed and resumed or not:
the batches are a pure function of (seed, batch number) and the checkpoint holds the batch
counter, every module and optimizer, torch's RNG states and the early-stopping state. CSV rows are
written before ``rolling/``; a resume drops rows after the saved update, so each is logged once.

Under ``torchrun`` the same loop trains data-parallel (:mod:`baselines.offline.distributed`):
``--batch_size`` stays the global batch, each rank draws ``batch_size / world`` rows from its own
shard of the sampler (disjoint from the other ranks'), gradients are averaged before each step,
and only rank 0 evaluates, logs and writes files.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from baselines.common import (
    Progress,
    ResumeError,
    RunLogger,
    differing_fields,
    offline_updates,
    select_device,
)
from baselines.common.errors import ConfigError
from baselines.offline import distributed as ddp
from baselines.offline.checkpoint import (
    BEST,
    ROLLING,
    SavedRun,
    load_run_file,
    module_states,
    restore_modules,
    save_run_file,
)
from baselines.offline.config import RESUMABLE_CHANGES, OfflineConfig
from baselines.offline.data import Prefetcher, TrainingData, open_training_data, summary
from baselines.offline.evaluation import evaluate_algorithm
from baselines.offline.registry import algorithm_module, make_algorithm
from offgen._io import atomic_write_json

__all__ = ["EarlyStopping", "OfflineRun", "train", "updates_per_epoch"]

FINAL_EVAL = "final_eval.json"
BASE_COLUMNS = (
    "update",
    "epoch",
    "samples",
    "eval/val_return",
    "eval/best_val_return",
    "time/updates_per_s",
    "time/data_wait_s",
    "time/update_s",
    "time/eval_s",
)


def updates_per_epoch(num_transitions: int, batch_size: int) -> int:
    """``num_transitions // batch_size``, at least 1 (a dataset smaller than one batch)."""
    return max(1, num_transitions // batch_size)


@dataclass
class EarlyStopping:
    """Best validation return so far and evaluations since it improved (Keras' rule: a value
    counts as better when it exceeds the best by more than ``min_delta``; the best weights are the
    ones of that value)."""

    min_delta: float
    best: float = -math.inf
    best_update: int = -1
    since: int = 0
    weights: dict[str, Any] | None = None

    def observe(self, value: float, update: int, weights: dict[str, Any]) -> bool:
        """Record one evaluation; returns whether it is the new best."""
        if value > self.best + self.min_delta:
            self.best, self.best_update, self.since, self.weights = value, update, 0, weights
            return True
        self.since += 1
        return False

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors for ``rolling/``."""
        return {
            "best": self.best,
            "best_update": self.best_update,
            "since": self.since,
            "weights": self.weights,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best, self.best_update = float(state["best"]), int(state["best_update"])
        self.since, self.weights = int(state["since"]), state["weights"]


@dataclass
class OfflineRun:
    """Everything of one run the loop's steps share."""

    cfg: OfflineConfig
    run_dir: Path
    data: TrainingData
    algorithm: Any
    per_epoch: int
    total: int
    stopper: EarlyStopping
    ranks: ddp.Ranks = field(default_factory=ddp.Ranks)
    trace: ddp.RankTrace = field(default_factory=lambda: ddp.RankTrace(ddp.Ranks()))
    update: int = 0
    stopped_early: bool = False
    timings: dict[str, float] = field(
        default_factory=lambda: {"data_wait": 0.0, "update": 0.0, "eval": 0.0}
    )

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return self.update // self.per_epoch

    @property
    def done(self) -> bool:
        """Whether no update is left."""
        return self.update >= self.total or self.stopped_early


def _prepare_run_dir(cfg: OfflineConfig, game: str) -> tuple[Path, SavedRun | None]:
    """Create the run folder; load and check ``rolling/`` when resuming."""
    run_dir = cfg.run_dir(game)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"--save_path {cfg.save_path}: cannot create {run_dir} ({exc.strerror or exc}); "
            "choose a folder you can write to"
        ) from exc
    rolling = run_dir / ROLLING
    if not rolling.exists():
        return run_dir, None
    if not cfg.resume:
        raise ResumeError(
            f"{run_dir} already holds a run (rolling/model.pt); pass --resume to continue it or "
            "choose another --xpid"
        )
    saved = load_run_file(rolling)
    differ = differing_fields(saved.config, cfg.learning_settings(), ignore=RESUMABLE_CHANGES)
    if differ:
        raise ResumeError(
            f"{rolling}: cannot resume with different settings ({'; '.join(differ)}); use the "
            "saved values or choose another --xpid"
        )
    return run_dir, saved


def _build(
    cfg: OfflineConfig, ranks: ddp.Ranks, device: Any
) -> tuple[OfflineRun, Prefetcher, SavedRun | None]:
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    rank_batch = ddp.check_batch_size(cfg.batch_size, ranks)
    kind = algorithm_module(cfg.algo).DATA
    data = open_training_data(cfg, kind)
    run_dir, saved = _prepare_run_dir(cfg, data.game)
    per_epoch = updates_per_epoch(data.num_transitions, cfg.batch_size)
    total = per_epoch * cfg.epochs
    total = min(total, cfg.max_steps) if cfg.max_steps else total
    derived = {"total_updates": total, "dataset_max_return": data.max_return}
    torch.manual_seed(cfg.seed)
    algorithm = make_algorithm(cfg.algo, cfg, derived, device)
    run = OfflineRun(cfg, run_dir, data, algorithm, per_epoch, total, EarlyStopping(cfg.min_delta))
    run.ranks, run.trace = ranks, ddp.RankTrace(ranks)
    sampler = _rank_sampler(data.sampler(kind, cfg, batch_size=rank_batch), cfg, ranks)
    if saved is not None:
        _restore(run, saved, sampler)
    ddp.broadcast_modules(algorithm.modules(), ranks)
    ddp.average_gradients(algorithm.modules(), ranks)
    return run, Prefetcher(sampler, device), saved


def _rank_sampler(sampler: Any, cfg: OfflineConfig, ranks: ddp.Ranks) -> Any:
    """This rank's shard of the sampler (draws disjoint from every other rank's), and its own
    torch seed (dropout noise differs across ranks; the weights are broadcast from rank 0)."""
    if not ranks.active:
        return sampler
    torch.manual_seed(cfg.seed + 1_000_003 * ranks.rank)
    try:
        return sampler.with_shard(ranks.rank, ranks.world)
    except ValueError as exc:
        raise ConfigError(
            f"--dataset {cfg.dataset}: cannot split over {ranks.world} ranks ({exc})"
        ) from exc


def _rank_state(trainer: Mapping[str, Any], ranks: ddp.Ranks, where: Path) -> Mapping[str, Any]:
    """This rank's sampler position and RNG states in a ``rolling/`` trainer state."""
    saved_world = int(trainer.get("world_size", 1))
    if saved_world != ranks.world:
        raise ResumeError(
            f"{where}: the run trained on {saved_world} process(es), not {ranks.world}; resume it "
            f"with torchrun --nproc_per_node={saved_world} (or without torchrun for 1)"
        )
    return trainer["ranks"][ranks.rank] if ranks.active else trainer


def _restore(run: OfflineRun, saved: SavedRun, sampler: Any) -> None:
    restore_modules(run.algorithm.modules(), saved.model_state_dict)
    for name, optimizer in run.algorithm.optimizers().items():
        optimizer.load_state_dict(saved.optimizers[name])
    trainer = saved.trainer
    mine = _rank_state(trainer, run.ranks, run.run_dir / ROLLING)
    sampler.load_state_dict(mine["sampler"])
    torch.set_rng_state(mine["rng"]["torch"])
    if torch.cuda.is_available() and mine["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(mine["rng"]["cuda"])
    run.stopper.load_state_dict(trainer["early_stopping"])
    run.update = saved.update
    run.stopped_early = bool(trainer["stopped_early"])


def _save_rolling(run: OfflineRun, prefetch: Prefetcher, *, finished: bool) -> None:
    """Write ``rolling/`` (rank 0; every rank takes part: their positions are gathered)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    mine = {"sampler": prefetch.state_dict(), "rng": {"torch": torch.get_rng_state(), "cuda": cuda}}
    every = ddp.gather(mine, run.ranks)
    if not run.ranks.is_main:
        return
    trainer = {
        **mine,
        "world_size": run.ranks.world,
        "ranks": every if run.ranks.active else [],
        "early_stopping": run.stopper.state_dict(),
        "stopped_early": run.stopped_early,
        "finished": finished,
        "epoch": run.epoch,
        "data": dict(summary(run.data)),
    }
    save_run_file(
        run.run_dir / ROLLING,
        SavedRun(
            algo=run.cfg.algo,
            kind="rolling",
            update=run.update,
            config=dataclasses.asdict(run.cfg),
            model_state_dict=module_states(run.algorithm.modules()),
            optimizers={k: o.state_dict() for k, o in run.algorithm.optimizers().items()},
            trainer=trainer,
            extra={},
        ),
    )


def _save_best(run: OfflineRun, weights: Mapping[str, Any]) -> Path:
    return save_run_file(
        run.run_dir / BEST,
        SavedRun(
            algo=run.cfg.algo,
            kind="best",
            update=run.stopper.best_update if run.stopper.weights is not None else run.update,
            config=dataclasses.asdict(run.cfg),
            model_state_dict=weights,
            optimizers={},
            trainer={},
            extra={"validation_return": run.stopper.best, "data": dict(summary(run.data))},
        ),
    )


def _step(run: OfflineRun, prefetch: Prefetcher) -> dict[str, float]:
    """One update on the next batch."""
    start = time.perf_counter()
    batch = prefetch.next()
    mid = time.perf_counter()
    run.trace.record(run.update, batch)
    losses = run.algorithm.update(batch, run.update)
    run.update += 1
    run.timings["data_wait"] += mid - start
    run.timings["update"] += time.perf_counter() - mid
    return {(k if "/" in k else f"loss/{k}"): float(v) for k, v in losses.items()}


def _end_of_epoch(run: OfflineRun, metrics: dict[str, Any]) -> None:
    """Evaluate (every --eval_freq epochs, on rank 0, which decides early stopping for all)."""
    cfg = run.cfg
    if cfg.eval_freq and run.epoch % cfg.eval_freq == 0 and not run.ranks.is_main:
        run.stopped_early = ddp.broadcast_flag(False, run.ranks)
    elif cfg.eval_freq and run.epoch % cfg.eval_freq == 0:
        start = time.perf_counter()
        report = evaluate_algorithm(
            run.algorithm, cfg, run.data.game, splits=["validation"], episodes=cfg.eval_episodes
        )
        value = report.splits["validation"].mean
        weights = module_states(run.algorithm.modules())
        if run.stopper.observe(value, run.update, weights):
            _save_best(run, weights)
        stop = cfg.early_stop and run.stopper.since >= cfg.patience
        run.stopped_early = ddp.broadcast_flag(stop, run.ranks)
        run.timings["eval"] += time.perf_counter() - start
        metrics |= {"eval/val_return": value, "eval/best_val_return": run.stopper.best}


def _row(
    run: OfflineRun, losses: Mapping[str, float], started: float, done0: int
) -> dict[str, Any]:
    rate = (run.update - done0) / max(time.perf_counter() - started, 1e-9)
    return {
        "update": run.update,
        "epoch": run.epoch,
        "samples": run.update * run.cfg.batch_size,
        **losses,
        "time/updates_per_s": rate,
        **{f"time/{k}_s": v for k, v in run.timings.items()},
    }


def _open_logger(run: OfflineRun, losses: Mapping[str, float], resumed: bool) -> RunLogger:
    return RunLogger(
        run.run_dir,
        [*BASE_COLUMNS, *sorted(losses)],
        algo=run.cfg.algo,
        config={**dataclasses.asdict(run.cfg), "data": dict(summary(run.data))},
        run_name=run.cfg.xpid,
        resume_update=run.update - 1 if resumed else None,
        use_wandb=run.cfg.log_wandb,
    )


def _train_updates(run: OfflineRun, prefetch: Prefetcher, resumed: bool) -> None:
    """Update until the plan or early stopping ends the run; log, evaluate and checkpoint."""
    cfg, logger, main = run.cfg, None, run.ranks.is_main
    started, done0 = time.perf_counter(), run.update
    try:
        with Progress(run.total, run.update, cfg.batch_size, enabled=cfg.progress and main) as bar:
            while not run.done:
                losses = _step(run, prefetch)
                epoch_end = run.update % run.per_epoch == 0
                log_now = epoch_end or run.update % cfg.log_interval == 0
                if log_now:  # the global batch's losses (a collective: every rank, same updates)
                    losses = ddp.mean_losses(losses, run.ranks)
                if main:
                    logger = logger or _open_logger(run, losses, resumed)
                metrics = _row(run, losses, started, done0)
                if epoch_end:
                    _end_of_epoch(run, metrics)
                if log_now and logger is not None:
                    logger.log(metrics, step=run.update)
                bar.advance(run.stopper.best if math.isfinite(run.stopper.best) else math.nan)
                if epoch_end and (run.epoch % cfg.ckpt_freq == 0) and not run.done:
                    _save_rolling(run, prefetch, finished=False)
            if logger is not None:
                logger.summary({"eval/best_val_return": run.stopper.best})
    finally:
        if logger is not None:
            logger.close()


def _finish(run: OfflineRun) -> Path:
    """Restore the best weights, write ``best/model.pt``, evaluate train / validation / test."""
    weights = run.stopper.weights or module_states(run.algorithm.modules())
    restore_modules(run.algorithm.modules(), weights)
    path = _save_best(run, weights)
    report = evaluate_algorithm(
        run.algorithm,
        run.cfg,
        run.data.game,
        splits=["train", "validation", "test"],
        episodes=run.cfg.eval_episodes,
        metadata={
            "algo": run.cfg.algo,
            "run": str(run.run_dir),
            "update": run.stopper.best_update if run.stopper.weights is not None else run.update,
            "trained_updates": run.update,
        },
    )
    atomic_write_json(run.run_dir / FINAL_EVAL, report.to_dict())
    return path


def train(cfg: OfflineConfig) -> Path:
    """Train (or resume) one run; returns the path of its best model.

    Raises:
        OffgenError: Bad settings or data, an unwritable folder, a resume with other settings, a
            missing GPU (each a one-line message).
    """
    device = select_device(cfg.device)  # a missing GPU is reported before anything is created
    ranks, device = ddp.setup(device)
    try:
        run, prefetch, saved = _build(cfg, ranks, device)
        try:
            finished = saved is not None and bool(saved.trainer["finished"])
            if finished and (run.run_dir / FINAL_EVAL).exists():
                if ranks.is_main:
                    print(
                        f"{run.run_dir}: already complete ({run.update} updates)", file=sys.stderr
                    )
                return run.run_dir / BEST
            if not finished:
                with offline_updates():  # denormals flushed, activations from the heap
                    _train_updates(run, prefetch, resumed=saved is not None)
                _save_rolling(run, prefetch, finished=True)
            run.trace.write(run.algorithm.modules())  # before rank 0 restores the best weights
        finally:
            prefetch.close()
    finally:
        ddp.teardown(ranks)  # the last collective is behind us; rank 0 evaluates alone
    return _finish(run) if ranks.is_main else run.run_dir / BEST
