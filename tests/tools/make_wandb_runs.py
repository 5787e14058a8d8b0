"""Create real WandB offline runs for the export tests (run in a subprocess with WANDB_MODE=offline).

Usage: python make_wandb_runs.py normal       -> several finished/failed runs
       python make_wandb_runs.py offgen       -> runs shaped like offgen's baselines
       python make_wandb_runs.py crash         -> logs many rows, prints LOGGED, then waits to be killed
"""

from __future__ import annotations

import math
import sys
import time

import wandb

PROJECT = "hasard"


def history(
    run: wandb.Run, n: int = 10, *, nan_at: int | None = None, skip_reward_at: int | None = None
) -> None:
    for step in range(n):
        row: dict[str, float] = {"reward/reward": float(step), "policy_stats/avg_cost": 10.0 - step}
        if step == nan_at:
            row["policy_stats/avg_cost"] = math.nan
        if step == skip_reward_at:
            del row["reward/reward"]
        run.log(row, step=step * 100)


RUNS = [
    # name, config, tags, group, job_type, extra history kwargs, exit code
    # (``wandb_tags`` in some configs differs from the run's tags: --tags-from-config reads it)
    (
        "ppo-ab-l1-s1",
        {"algo": "PPO", "env": "armament_burden", "level": 1, "seed": 1, "lr": 0.001},
        ["NIPS"],
        "g1",
        "train",
        {"nan_at": 3, "skip_reward_at": 5},
        0,
    ),
    (
        "ppolag-ab-l1-s2-test",
        {
            "algo": "PPOLag",
            "env": "armament_burden",
            "level": 1,
            "seed": 2,
            "lr": 0.01,
            "wandb_tags": ["ABLATION", "TEST"],
        },
        ["NIPS", "TEST"],
        "g1",
        "train",
        {},
        0,
    ),
    (
        "ppolag-vv-l2-s1-hard",
        {
            "algo": "PPOLag",
            "env": "volcanic_venture",
            "level": 2,
            "seed": 1,
            "safety_bound": 50,
            "hard_constraint": True,
            "lr": 0.01,
            "wandb_tags": ["NIPS"],
        },
        ["NIPS"],
        "g2",
        "train",
        {},
        0,
    ),
    (
        "ppolag-vv-l2-s1-soft",
        {
            "algo": "PPOLag",
            "env": "volcanic_venture",
            "level": 2,
            "seed": 1,
            "safety_bound": 5.0,
            "lr": 0.003,
            "wandb_tags": ["NIPS", "ABLATION"],
        },
        ["NIPS"],
        "g2",
        "train",
        {},
        0,
    ),
    (
        "ppocost-ab-l1-s1",
        {
            "algo": "PPOCost",
            "env": "armament_burden",
            "level": 1,
            "seed": 1,
            "penalty_scaling": 0.1,
        },
        ["COST_SCALING"],
        "cost",
        "train",
        {},
        0,
    ),
    (
        "ppocost-ab-l1-s2",
        {
            "algo": "PPOCost",
            "env": "armament_burden",
            "level": 1,
            "seed": 2,
            "penalty_scaling": 1.0,
        },
        ["COST_SCALING"],
        "cost",
        "train",
        {"n": 5},
        0,
    ),
    (
        "ppocost-missing-scale",
        {"algo": "PPOCost", "env": "armament_burden", "level": 1, "seed": 3},
        ["COST_SCALING"],
        "cost",
        "train",
        {},
        0,
    ),
    (
        "eval-nogroup",
        {"algo": "PPO", "env": "remedy_rush", "level": 3, "seed": 2, "wandb_tags": "ABLATION"},
        ["NIPS"],
        None,
        "eval",
        {"n": 4},
        0,
    ),
    (
        "ppo-failed",
        {"algo": "PPO", "env": "remedy_rush", "level": 1, "seed": 1},
        ["NIPS"],
        "g1",
        "train",
        {},
        1,
    ),
]


#: offgen's own runs (project ``offgen-baselines``): the config keys and metrics the baselines log.
OFFGEN_PROJECT = "offgen-baselines"
OFFGEN_RUNS = [
    # name, config, metrics logged at steps 0, 100, 200
    (
        "bc-coinrun-s88",
        {"env_name": "coinrun", "algo": "bc", "seed": 88, "xpid": "bc-lr5e-4", "lr": 0.0005},
        ("eval/train_return", "eval/validation_return", "eval/test_return"),
    ),
    (
        "cql-bigfish-s1",
        {"env_name": "bigfish", "algo": "cql", "seed": 1, "xpid": "cql-a4", "lr": 0.0005},
        ("eval/train_return", "eval/validation_return", "eval/test_return"),
    ),
    (
        "ppo-coinrun-s0",
        {"env_name": "coinrun", "algo": "ppo", "seed": 0, "xpid": "ppo-coinrun"},
        ("train/mean_episode_return", "eval/test_return"),
    ),
    (
        "dqn-coinrun-s0",  # not one of the baselines' algorithms
        {"env_name": "coinrun", "algo": "dqn", "seed": 0, "xpid": "dqn"},
        ("eval/test_return",),
    ),
]


def offgen_runs() -> None:
    for name, config, metrics in OFFGEN_RUNS:
        run = wandb.init(project=OFFGEN_PROJECT, name=name, config=config, job_type="train")
        for step in range(3):
            run.log({m: float(step + i) for i, m in enumerate(metrics)}, step=step * 100)
        run.finish()


def normal() -> None:
    for name, config, tags, group, job_type, kwargs, code in RUNS:
        run = wandb.init(
            project=PROJECT, name=name, config=config, tags=tags, group=group, job_type=job_type
        )
        history(run, **kwargs)
        run.summary["final_reward"] = float(kwargs.get("n", 10) - 1)
        run.finish(exit_code=code)
    other = wandb.init(
        project="other-project",
        name="elsewhere",
        config={"algo": "PPO", "env": "armament_burden", "level": 1, "seed": 1},
        tags=["NIPS"],
    )
    history(other)
    other.finish()


def crash() -> None:
    run = wandb.init(
        project=PROJECT,
        name="ppo-rr-l1-s3-crashed",
        config={"algo": "PPO", "env": "remedy_rush", "level": 1, "seed": 3},
        tags=["NIPS"],
        group="g1",
        job_type="train",
    )
    for step in range(3000):
        run.log({"reward/reward": float(step), "policy_stats/avg_cost": 0.5}, step=step)
    print("LOGGED", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    {"normal": normal, "crash": crash, "offgen": offgen_runs}[sys.argv[1]]()
