"""PPO trainer throughput: the real loop against the sum of its bare parts, and --save_dataset cost.

Measured in one run, on the same batch sizes (``--num_envs`` x ``--num_steps``, IMPALA network):

* parts: bare envpool stepping (random actions), bare batched inference (``inference_mode``,
  the acting thread count) and a bare PPO update (:func:`baselines.ppo.ppo_update` on a rollout of
  random frames, the learning thread count). Their summed time per update is the limit a loop
  that only did these three things would reach.
* the trainer: :func:`baselines.ppo.run_update` (rollout with normaliser and episode bookkeeping,
  update, CSV row, ``rolling/`` checkpoint), with the breakdown env / inference / update /
  logging+checkpointing; target >= 0.9x the limit.
* the same with ``--save_dataset`` (every rollout into an offgen store); target >= 0.95x off.

The first update of each trainer is a warm-up and not timed. Usage (short)::

    python benchmarks/ppo_bench.py --num_envs 64 --num_steps 32 --updates 2
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from typing import Any

import numpy as np
import torch

from baselines.common import Progress, RunLogger, ThreadPlan
from baselines.ppo import LOG_COLUMNS, PPOConfig, Rollout, Trainer, ppo_update, run_update
from offgen.envs import EnvSpec, make_env
from offgen.policies import build_impala


def bare_env(cfg: PPOConfig, steps: int) -> float:
    """Seconds per update of envpool stepping alone (random actions)."""
    env = make_env(EnvSpec(cfg.env_name, "easy", 0, 200, None), cfg.num_processes, seed=1)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 15, (steps, cfg.num_processes))
    start = time.perf_counter()
    for t in range(steps):
        env.step(actions[t])
    env.close()
    return (time.perf_counter() - start) * cfg.num_steps / steps


def bare_inference(cfg: PPOConfig, threads: ThreadPlan) -> float:
    """Seconds per update of batched forward passes alone (``num_steps + 1`` per update)."""
    threads.acting_mode()
    model = build_impala(hidden_size=cfg.hidden_size)
    obs = torch.randint(0, 256, (cfg.num_processes, 64, 64, 3), dtype=torch.uint8)
    with torch.inference_mode():
        model(obs.permute(0, 3, 1, 2))
        start = time.perf_counter()
        for _ in range(cfg.num_steps + 1):
            logits, _value = model(obs.permute(0, 3, 1, 2))
            torch.multinomial(torch.softmax(logits, 1), 1)
    return time.perf_counter() - start


def bare_update(cfg: PPOConfig, threads: ThreadPlan) -> float:
    """Seconds of one PPO update on a rollout of random frames (same sizes)."""
    threads.learning_mode()
    model = build_impala(hidden_size=cfg.hidden_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.eps)
    rollout = Rollout.empty(cfg.num_steps, cfg.num_processes, torch.device("cpu"))
    rollout.obs.random_(0, 256)
    rollout.rewards.normal_()
    rollout.values.normal_()
    rollout.logprobs.fill_(-np.log(15.0))
    rollout.actions.random_(0, 15)
    rollout.valid.fill_(True)
    generator = torch.Generator().manual_seed(0)
    ppo_update(model, optimizer, rollout, dataclasses.replace(cfg, ppo_epoch=1), generator)
    start = time.perf_counter()
    ppo_update(model, optimizer, rollout, cfg, generator)
    threads.acting_mode()
    return time.perf_counter() - start


def trainer_run(cfg: PPOConfig, updates: int) -> dict[str, float]:
    """Seconds per update of the real loop (after one warm-up update) and its breakdown."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(cfg, model_saving_dir=tmp)
        run_dir = cfg.run_dir()
        run_dir.mkdir(parents=True)
        trainer = Trainer(cfg, run_dir, None)
        logger = RunLogger(
            run_dir, LOG_COLUMNS, algo="ppo", config=dataclasses.asdict(cfg), run_name=cfg.xpid
        )
        trainer.threads.acting_mode()
        with Progress(updates + 1, 0, cfg.batch_size, enabled=False) as bar:
            run_update(trainer, logger, bar, "train")
            trainer.timings = dict.fromkeys(trainer.timings, 0.0)
            start = time.perf_counter()
            for _ in range(updates):
                run_update(trainer, logger, bar, "train")
            wall = time.perf_counter() - start
        trainer.close()
        logger.close()
    out = {k: v / updates for k, v in trainer.timings.items()}
    out["wall"] = wall / updates
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="coinrun")
    parser.add_argument("--num_envs", type=int, default=64)
    parser.add_argument("--num_steps", type=int, default=256)
    parser.add_argument("--ppo_epoch", type=int, default=3)
    parser.add_argument("--num_mini_batch", type=int, default=8)
    parser.add_argument("--updates", type=int, default=2, help="timed updates per trainer")
    parser.add_argument("--torch_threads", type=int, default=0)
    args = parser.parse_args()
    base = PPOConfig(
        env_name=args.game,
        num_processes=args.num_envs,
        num_steps=args.num_steps,
        ppo_epoch=args.ppo_epoch,
        num_mini_batch=args.num_mini_batch,
        num_env_steps=args.num_envs * args.num_steps * (args.updates + 1),
        archive_interval=10**9,
        log_interval=1,
        progress=False,
        device="cpu",
        torch_threads=args.torch_threads,
        xpid="bench",
    )
    threads = ThreadPlan.choose(args.torch_threads)
    torch.set_flush_denormal(
        True
    )  # as the trainer does while training; small batches crawl without it
    print(f"{args.game}: {args.num_envs} envs x {args.num_steps} steps, threads {threads}")
    env_s = bare_env(base, min(args.num_steps, 64))
    inf_s = bare_inference(base, threads)
    upd_s = bare_update(base, threads)
    limit = env_s + inf_s + upd_s
    batch = base.batch_size
    print(
        f"parts per update: env {env_s:.2f} s, inference {inf_s:.2f} s, update {upd_s:.2f} s "
        f"-> limit {batch / limit:.1f} steps/s"
    )
    results: dict[str, dict[str, Any]] = {}
    for name, save in (("off", False), ("save_dataset", True)):
        timing = trainer_run(dataclasses.replace(base, save_dataset=save), args.updates)
        results[name] = timing
        print(
            f"trainer ({name}): {batch / timing['wall']:.1f} steps/s; per update env "
            f"{timing['env']:.2f} s, inference {timing['inference']:.2f} s, update "
            f"{timing['update']:.2f} s, logging+checkpoint {timing['log']:.2f} s"
        )
    off = batch / results["off"]["wall"]
    on = batch / results["save_dataset"]["wall"]
    print(f"trainer / sum-of-parts limit: {off / (batch / limit):.3f}x (target >= 0.9)")
    print(f"--save_dataset on / off: {on / off:.3f}x (target >= 0.95)")


if __name__ == "__main__":
    main()
