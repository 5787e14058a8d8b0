"""Evaluation benchmark: ``offgen.evaluation.evaluate`` against the predecessor's sequential loop.

One policy (the IMPALA actor-critic, greedy, random weights; see :func:`make_policy` for what its
actions are), ``--episodes`` planned episodes on each of train,
validation and test, measured in one run:

* **ours**: ``evaluate(policy, num_envs=16, torch_threads=1)``: 16 episodes at a time, one batched
  inference per step;
* **predecessor**: one environment stepping the same planned episodes one after another, batch-1
  inference, torch's default thread count (what the predecessor's evaluation loop did; its levels
  were unseeded, here it plays our planned levels so the returns can be compared level by level);
* **sequential, 1 thread**: the same loop with ``torch.set_num_threads(1)``, to separate the gain
  of batching from the gain of the thread setting;
* **tuned**: ``evaluate(num_envs=128, torch_threads=<cores>)``, and the same with
  ``precision="bf16"`` (bfloat16 autocast), whose per-level results are compared with fp32's
  (128 environments: 48, 64, 96, 128, 192 and 256 gave 6.27, 6.1, 5.85, 5.6-5.7, 6.0 and 6.2 s
  for the bf16 run; fewer leave batches small, more make the tail of long last episodes longer).

The policy is :func:`make_policy`'s constant one by default, or a trained checkpoint with
``--checkpoint PATH`` (greedy), whose actions depend on the frames: only then do the "identical
returns" checks compare bf16 with fp32 where it matters. docs/benchmarks.md gives the PPO command
that made the checkpoint of the published run.

Checks that every planned level gives the same return and length in all three (a deterministic
policy), and prints the speed-up ratios (target: ours >= 5x the predecessor's loop).

On a loaded machine the sequential loops can take hours at 100 episodes per split:
``--sequential-budget-s S`` stops each of them after ``S`` seconds, and the ratio is then printed as
a lower bound (the full loop would have taken at least that long), with the level-by-level check
on the episodes played.

Usage: ``nice python benchmarks/eval_bench.py [--episodes 100] [--game coinrun]
[--sequential-budget-s 600] [--checkpoint PATH]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from offgen.envs import EnvSpec, LevelRange, make_env
from offgen.evaluation import EvaluationReport, evaluate
from offgen.evaluation.plan import EpisodeDraws
from offgen.policies import TorchPolicy, build_impala, load_policy

SPLITS = ("train", "validation", "test")


def make_policy(seed: int = 0) -> TorchPolicy:
    """Random IMPALA weights, output layer at gain 2, a pull towards RIGHT+UP.

    Measured: its greedy action is RIGHT+UP at every one of the 19,267 steps of the 100-episode
    run (probability margin >= 0.31): a random IMPALA's features barely vary between coinrun
    frames. Inference costs the same whatever the weights, so the timings hold; but the "same
    returns" checks show the level plans and the determinism, not that two runs agree where
    actions depend on the frame (standardising the features to make them depend sent most
    episodes into 1,000-step loops against walls, too slow for this benchmark).
    """
    torch.manual_seed(seed)
    model = build_impala()
    with torch.no_grad():
        torch.nn.init.orthogonal_(model.dist.linear.weight, gain=2.0)
        model.dist.linear.bias[8] = 2.0  # RIGHT+UP: keeps coinrun episodes finite and short-ish
    return TorchPolicy(model, policy_id="bench-impala", greedy=True)


def sequential(
    policy: TorchPolicy,
    game: str,
    report: EvaluationReport,
    budget_s: float = float("inf"),
    *,
    seed: int = 0,
) -> tuple[float, list[tuple[int, float, int]]]:
    """One environment, one episode after another, batch-1 inference (the predecessor's loop).

    A sampling policy draws from the same per-episode random numbers as ``evaluate``
    (:class:`~offgen.evaluation.plan.EpisodeDraws`; column 0 of a step's row samples), so the two
    agree level by level whatever the action mode. Stops before the next episode once
    ``budget_s`` seconds have passed (fewer episodes returned).
    """
    played = []
    start = time.perf_counter()
    for split in SPLITS:
        result = report.splits[split]
        levels = LevelRange(result.start_level, result.num_levels)
        for index, episode in enumerate(result.episodes):
            if time.perf_counter() - start > budget_s:
                return time.perf_counter() - start, played
            env = make_env(EnvSpec(game, "easy", episode.level_seed, 1, None), 1, 0)
            draws = EpisodeDraws(seed, levels, index)
            obs, _ = env.reset()
            total, steps, done = 0.0, 0, False
            while not done:
                action = policy.act(obs, draws.row(steps)[:1])
                obs, reward, term, trunc, _ = env.step(action.astype(np.int32))
                total, steps, done = total + float(reward[0]), steps + 1, bool(term[0] or trunc[0])
            env.close()
            played.append((episode.level_seed, total, steps))
    return time.perf_counter() - start, played


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--game", default="coinrun")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument(
        "--sequential-budget-s",
        type=float,
        default=float("inf"),
        help="stop each sequential loop after this many seconds (ratios become lower bounds)",
    )
    parser.add_argument(
        "--checkpoint", default=None, help="evaluate this policy checkpoint instead"
    )
    parser.add_argument(
        "--action", default="greedy", choices=("greedy", "sample"), help="with --checkpoint"
    )
    parser.add_argument("--tuned-envs", type=int, default=128)
    args = parser.parse_args()
    if args.checkpoint is None:
        policy, action = make_policy(), "greedy"
    else:
        action = args.action
        policy = load_policy(args.checkpoint, greedy=action == "greedy")
    print(f"policy: {policy.policy_id}, {action} actions", flush=True)
    default_threads = torch.get_num_threads()
    evaluate(policy, game=args.game, splits="level_1", episodes=1)  # loads Procgen's assets

    start = time.perf_counter()
    report = evaluate(
        policy, game=args.game, splits=SPLITS, episodes=args.episodes, num_envs=args.num_envs,
        action=action,
    )  # fmt: skip
    ours = time.perf_counter() - start
    # The same evaluation with every core for torch and 128 episodes at a time: what a user of a
    # quiet machine would pass (--torch-threads N --num-envs 128); the default (one thread) is for
    # shared machines, where torch's spinning threads lose to envpool's.
    cores = os.cpu_count() or 1
    start = time.perf_counter()
    tuned_report = evaluate(
        policy, game=args.game, splits=SPLITS, episodes=args.episodes,
        num_envs=args.tuned_envs, torch_threads=cores, action=action,
    )  # fmt: skip
    tuned = time.perf_counter() - start
    # The same, with bfloat16 inference (--precision bf16): AMX on this CPU.
    start = time.perf_counter()
    bf16_report = evaluate(
        policy, game=args.game, splits=SPLITS, episodes=args.episodes,
        num_envs=args.tuned_envs, torch_threads=cores, precision="bf16", action=action,
    )  # fmt: skip
    bf16 = time.perf_counter() - start
    print(f"ours {ours:.1f} s, tuned {tuned:.1f} s, tuned bf16 {bf16:.1f} s; now the sequential "
          "1-thread loop", flush=True)  # fmt: skip
    bf16_played = [
        (e.level_seed, e.return_, e.length) for s in SPLITS for e in bf16_report.splits[s].episodes
    ]
    tuned_played = [
        (e.level_seed, e.return_, e.length) for s in SPLITS for e in tuned_report.splits[s].episodes
    ]
    ours_played = [
        (e.level_seed, e.return_, e.length) for s in SPLITS for e in report.splits[s].episodes
    ]
    torch.set_num_threads(1)
    one_thread, one_played = sequential(policy, args.game, report, args.sequential_budget_s)
    print(f"ours {ours:.1f} s, sequential 1-thread loop {one_thread:.1f} s "
          f"({one_thread / ours:.2f}x, {len(one_played)} episodes); now the predecessor loop",
          flush=True)  # fmt: skip
    torch.set_num_threads(default_threads)
    predecessor, pred_played = sequential(policy, args.game, report, args.sequential_budget_s)

    steps = sum(length for _, _, length in ours_played)
    same = sum(a == b == c for a, b, c in zip(ours_played, pred_played, one_played, strict=False))
    checked = min(len(pred_played), len(one_played))
    print(f"game {args.game}, {args.episodes} episodes x {len(SPLITS)} splits, {steps} steps, "
          f"torch default threads {default_threads}")  # fmt: skip
    for name in SPLITS:
        s = report.splits[name]
        print(f"  {name:<10} mean {s.mean:.2f} ± {s.stderr:.2f}  mean length {s.mean_length:.0f}")
    print(
        f"ours (num_envs {args.num_envs}, 1 torch thread): {ours:8.1f} s  {steps / ours:7.0f} steps/s"
    )
    print(f"ours (num_envs {args.tuned_envs}, {cores} torch threads):  {tuned:8.1f} s  {steps / tuned:7.0f} "
          f"steps/s  (same (level, return, length) as the default: "
          f"{sum(a == b for a, b in zip(ours_played, tuned_played, strict=True))} of {len(ours_played)})")  # fmt: skip
    print(f"ours (num_envs {args.tuned_envs}, {cores} torch threads, bf16): {bf16:8.1f} s  {steps / bf16:7.0f} "
          f"steps/s  (same (level, return, length) as fp32: "
          f"{sum(a == b for a, b in zip(ours_played, bf16_played, strict=True))} of {len(ours_played)})")  # fmt: skip
    total = len(ours_played)
    for name, seconds, played in (
        ("predecessor loop (1 env, default threads):", predecessor, pred_played),
        ("sequential loop, 1 torch thread:           ", one_thread, one_played),
    ):
        done = sum(length for _, _, length in played)
        print(f"{name} {seconds:8.1f} s  {done / seconds:7.0f} steps/s  "
              f"({len(played)} of {total} episodes)")  # fmt: skip

    def ratio(seconds: float, played: list[tuple[int, float, int]]) -> str:
        # A stopped loop would have needed at least `seconds`: the ratio is a lower bound.
        return f"{seconds / ours:.2f}x" + ("" if len(played) == total else " (lower bound)")

    print(f"ratio vs predecessor loop: {ratio(predecessor, pred_played)} (target >= 5x)")
    print(f"ratio vs predecessor loop, tuned: {predecessor / tuned:.2f}x")
    print(f"ratio vs predecessor loop, tuned bf16: {predecessor / bf16:.2f}x (predecessor: fp32)")
    print(f"ratio vs sequential 1-thread loop: {ratio(one_thread, one_played)} (batching alone)")
    bf16_same = sum(a == b for a, b in zip(bf16_played, pred_played, strict=False))
    print(f"bf16 run: same (level, return, length) as the predecessor loop (fp32): {bf16_same} of "
          f"{len(pred_played)}; mean return bf16 {np.mean([r for _, r, _ in bf16_played]):.3f}, "
          f"fp32 {np.mean([r for _, r, _ in ours_played]):.3f}")  # fmt: skip
    print(f"identical (level, return, length) in all three: {same} of {checked} played "
          f"by both sequential loops ({total} planned)")  # fmt: skip


if __name__ == "__main__":
    main()
