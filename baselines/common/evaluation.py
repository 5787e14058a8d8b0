"""The one place the trainers call offgen's evaluation mechanism.

Protocol used by the trainers (see ``docs/baselines.md``): :func:`offgen.evaluation.evaluate`,
the mechanism ratio collection and ``offgen evaluate`` use too. Each evaluation plays ``episodes``
planned episodes per split on levels fixed by ``seed`` alone (so every checkpoint of a run is
compared on the same levels), every planned episode counted once (no bias towards short
episodes), on a CPU copy of the network with ``torch_threads`` torch threads.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from baselines.common.errors import ConfigError
from offgen.evaluation import ActionMode, evaluate
from offgen.policies import TorchPolicy

__all__ = ["ACTIONS", "evaluate_returns", "train_split_name"]

ACTIONS = ("sample", "greedy")


def train_split_name(start_level: int, num_levels: int) -> str:
    """The named evaluation split that equals a run's training levels.

    ``(0, 200)`` is ``train``, ``(0, K)`` is ``level_K``, ``num_levels=0`` is ``full``.

    Raises:
        ConfigError: For a level range no named split describes.
    """
    if num_levels == 0:
        return "full"
    if start_level == 0:
        return "train" if num_levels == 200 else f"level_{num_levels}"
    raise ConfigError(
        f"--start_level {start_level} --num_levels {num_levels}: no named evaluation split covers "
        "these training levels (train = 0-199, level_K = 0..K-1, full); train on levels starting "
        "at 0"
    )


def evaluate_returns(
    model: Any,
    *,
    game: str,
    splits: Sequence[str],
    episodes: int,
    seed: int,
    num_envs: int,
    action: str,
    distribution_mode: str,
    torch_threads: int = 1,
) -> dict[str, float]:
    """Mean return of ``model`` over ``episodes`` seeded episodes on each named split.

    Args:
        model: The IMPALA actor-critic (any device; evaluated on a CPU copy).
        game: Procgen game.
        splits: Split names (``train``, ``validation``, ``test``, ``full``, ``level_K``).
        episodes: Episodes per split.
        seed: Evaluation seed (fixes the levels played).
        num_envs: Parallel environments.
        action: ``sample`` (as the behaviour policy is rolled out) or ``greedy``.
        distribution_mode: Procgen distribution mode.
        torch_threads: Torch threads during evaluation (restored afterwards).
    """
    if action not in ACTIONS:
        raise ConfigError(f"unknown evaluation action {action!r}; use one of {', '.join(ACTIONS)}")
    cpu_model = copy.deepcopy(model).to("cpu")
    policy = TorchPolicy(cpu_model, policy_id="baselines-eval", greedy=action == "greedy")
    report = evaluate(
        policy,
        game=game,
        splits=splits,
        episodes=episodes,
        seed=seed,
        num_envs=num_envs,
        action=ActionMode.parse(action),
        distribution_mode=distribution_mode,
        torch_threads=torch_threads,
    )
    return {split: report.splits[split].mean for split in report.splits}
