"""Proof that PPO learns, in a budget a 2-core CPU manages in minutes (``slow``).

Setting: coinrun on its 200 training levels. A uniform random policy reaches the coin in about a
third of the episodes; a policy that has learned to prefer moving right (and jumping) reaches it far
more often, which is the first thing PPO learns there. A single level does not work: on coinrun's
level 0 a random policy never reaches the coin (0 of 32 seeded episodes), so there is no reward
to learn from in a short run. Small rollouts (16 environments x 128 steps, 2 epochs of 4
minibatches) keep an update to seconds.

Test: both the trained policy and the random policy play the same 128 seeded episodes (same level
plan: the evaluation seed fixes the levels whatever the policy); the trained policy's mean return
must exceed the random policy's with a one-sided permutation test at p < 0.01 (20,000 seeded
relabellings of the 256 episode returns).

``OFFGEN_KEEP_LEARNING_RUN=DIR`` copies the run's ``progress.csv`` and the result line to ``DIR``
(the run itself lives in pytest's temporary folder), e.g. to draw the learning curve with
``python benchmarks/plot_learning_curve.py DIR/progress.csv``.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from ppo_testlib import main  # also skips without envpool/torch

from offgen.evaluation import evaluate
from offgen.policies import RandomPolicy, load_policy

SETTINGS = {
    "env_name": "coinrun",
    "num_processes": 16,
    "num_steps": 128,
    "ppo_epoch": 2,
    "num_mini_batch": 4,
    "num_env_steps": 16 * 128 * 40,
    "archive_interval": 10,
    "log_interval": 1,
    "eval_episodes": 16,
    "final_eval_episodes": 16,
    "seed": 1,
    "progress": "false",
    "device": "cpu",
}
EPISODES = 128


def permutation_p_value(a: np.ndarray, b: np.ndarray, rounds: int = 20_000) -> float:
    """One-sided p-value of mean(a) > mean(b) under random relabelling (seeded)."""
    rng = np.random.default_rng(0)
    pooled = np.concatenate([a, b])
    observed = a.mean() - b.mean()
    hits = 0
    for _ in range(rounds):
        rng.shuffle(pooled)
        hits += pooled[: len(a)].mean() - pooled[len(a) :].mean() >= observed
    return (hits + 1) / (rounds + 1)


@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.timeout(3600)  # the suite's 600 s limit would stop the training run before it ends
def test_ppo_beats_random_on_the_same_seeded_levels(tmp_path: Path) -> None:
    assert (
        main(
            [f"--{k}={v}" for k, v in SETTINGS.items()]
            + [f"--model_saving_dir={tmp_path}", "--xpid=learn"]
        )
        == 0
    )
    run = tmp_path / "coinrun" / "learn"
    final = next((run / "final").glob("*.pt"))
    trained, random = (
        evaluate(
            policy, game="coinrun", splits="train", episodes=EPISODES, seed=123, num_envs=16,
            action="sample",
        ).splits["train"]
        for policy in (load_policy(final), RandomPolicy())
    )  # fmt: skip
    a = np.array([e.return_ for e in trained.episodes])
    b = np.array([e.return_ for e in random.episodes])
    p = permutation_p_value(a, b)
    with (run / "progress.csv").open() as handle:
        curve = [
            (int(r["env_steps"]), r["train/mean_episode_return"]) for r in csv.DictReader(handle)
        ]
    result = (
        f"trained {a.mean():.2f} vs random {b.mean():.2f} over {EPISODES} episodes, p = {p:.5f}"
    )
    print(result)
    keep = os.environ.get("OFFGEN_KEEP_LEARNING_RUN")
    if keep:  # the run folder is deleted with tmp_path; keep what the docs' curve is drawn from
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / "progress.csv", Path(keep) / "progress.csv")
        (Path(keep) / "result.txt").write_text(result + "\n")
    print("learning curve (env_steps, mean return of the episodes since the last row):", curve)
    assert a.mean() > b.mean() and p < 0.01
