"""Play a split's planned episodes: vectorised, batched inference, every planned episode once.

Each of ``num_envs`` slots plays one planned episode at a time in its own one-environment envpool
pinned to that episode's level (``start_level = level, num_levels = 1``: Procgen reseeds the game
from the level seed, so the episode is the same as on that level inside any range; creating one
costs about a millisecond). All busy slots act in one batched policy call per step, then step
concurrently (envpool ``send`` to every slot, then ``recv``, through
:func:`offgen.envs.stepper.stepper`, which skips envpool's per-call Python conversions). A slot
whose episode ends takes the next planned episode. Several splits' plans are played by one pool,
one after another in the queue, so that the environments stay busy until the last episode of the
last split (385 instead of 543 inference calls for 300 coinrun episodes at 64 environments; the
time saved was within the noise, as inference dominates). The run ends when every planned episode
has finished, so each counts exactly once whatever its length: taking "the first N episodes to
finish" instead would over-sample short episodes. Slots are filled in plan order and scanned in
slot order, so a deterministic policy plays every episode identically on a rerun. A policy with
memory (:class:`~offgen.policies.EpisodicPolicy`) is told when a slot starts an episode, which slot
each row is, and what each slot did and received.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.data.schema import NUM_ACTIONS
from offgen.envs.procgen import EnvSpec, LevelRange, make_env, resolve_distribution_mode
from offgen.envs.stepper import Stepper, stepper
from offgen.errors import EvaluationError, SchemaError
from offgen.evaluation.actions import ActionMode, choose_actions
from offgen.evaluation.environment import EvalEnvironment, FrameStacker
from offgen.evaluation.plan import EpisodeDraws
from offgen.evaluation.report import EpisodeResult
from offgen.policies.base import EpisodicPolicy, Policy

__all__ = ["play_planned_episodes", "play_plans"]


@dataclass
class _Slot:
    """One environment playing one planned episode (mutable bookkeeping, internal)."""

    env: Any
    step: Stepper
    plan: int
    episode: int
    level_seed: int
    draws: EpisodeDraws
    t: int = 0
    total: float = 0.0


def _open_slot(
    env: EvalEnvironment, plans: Sequence[Plan], which: tuple[int, int], seed: int
) -> tuple[_Slot, npt.NDArray[np.uint8]]:
    levels, plan = plans[which[0]]
    episode = which[1]
    level = plan[episode]
    if env.distribution_mode.lower() == "exploration":  # one fixed level, no range accepted
        spec = EnvSpec(env.game, resolve_distribution_mode(env.distribution_mode), 0, 0, None)
    else:
        spec = EnvSpec(env.game, resolve_distribution_mode(env.distribution_mode), level, 1, None)
    handle = make_env(spec, 1, seed, layout="HWC")
    obs, info = handle.reset()
    played = int(info["level_seed"][0])
    if spec.num_levels == 1 and played != level:
        handle.close()
        raise EvaluationError(
            f"envpool played level {played} when asked for level {level} ({spec.task_id}); this "
            "envpool build does not honour start_level, so evaluation cannot be reproduced with it"
        )
    draws = EpisodeDraws(seed, levels, episode)
    slot = _Slot(handle, stepper(handle), which[0], episode, played, draws)
    return slot, obs[0]


Plan = tuple[LevelRange, tuple[int, ...]]
"""A split's level range (keys the episodes' random draws) and its planned level seeds."""


def play_planned_episodes(
    policy: Policy,
    env: EvalEnvironment,
    levels: LevelRange,
    plan: tuple[int, ...],
    *,
    seed: int,
    action: ActionMode,
    num_envs: int,
) -> list[EpisodeResult]:
    """Play every episode of one split's ``plan`` once and return them in plan order.

    Args:
        policy: The policy; it sees observations in ``env``'s layout and frame stack.
        env: Game, mode and observation format.
        levels: The split's level range (keys the episodes' random draws).
        plan: Level seed of each planned episode (:func:`offgen.evaluation.plan.plan_levels`).
        seed: Evaluation seed.
        action: Greedy, sampled or epsilon-greedy actions.
        num_envs: Episodes played at once (the inference batch size).

    Raises:
        SchemaError: If the policy returns invalid actions.
        EvaluationError: If envpool does not play the planned level.
    """
    (played,) = play_plans(
        policy, env, [(levels, plan)], seed=seed, action=action, num_envs=num_envs
    )
    return played


def play_plans(
    policy: Policy,
    env: EvalEnvironment,
    plans: Sequence[Plan],
    *,
    seed: int,
    action: ActionMode,
    num_envs: int,
) -> list[list[EpisodeResult]]:
    """Play every episode of several splits' plans once, in one pool of environments.

    An episode's result does not depend on which plans share the pool: its level, its random draws
    (keyed by its split's range and its place in the plan) and its frames are its own.

    Returns:
        For each plan, its episodes in plan order.

    Raises:
        SchemaError: If the policy returns invalid actions.
        EvaluationError: If envpool does not play the planned level.
    """
    queue = [(p, e) for p, (_levels, plan) in enumerate(plans) for e in range(len(plan))]
    width = max(1, min(num_envs, len(queue)))
    episodic = policy if isinstance(policy, EpisodicPolicy) else None
    slots: list[_Slot | None] = [None] * width
    stacker = FrameStacker(width, env.frame_stack, env.layout)
    results: list[list[EpisodeResult | None]] = [[None] * len(plan) for _levels, plan in plans]
    upcoming = 0
    try:
        while True:
            for i in range(width):
                if slots[i] is None and upcoming < len(queue):
                    slot, first = _open_slot(env, plans, queue[upcoming], seed)
                    slots[i], upcoming = slot, upcoming + 1
                    stacker.start(i, first)
                    if episodic is not None:
                        episodic.start_episode(i)
            busy = np.array([i for i in range(width) if slots[i] is not None], dtype=np.int64)
            if busy.size == 0:
                break
            _step(policy, episodic, action, stacker, slots, busy, results)
    finally:
        for leftover in slots:
            if leftover is not None:
                leftover.env.close()
    return [[r for r in split if r is not None] for split in results]


def _step(
    policy: Policy,
    episodic: EpisodicPolicy | None,
    action: ActionMode,
    stacker: FrameStacker,
    slots: list[_Slot | None],
    busy: npt.NDArray[np.int64],
    results: list[list[EpisodeResult | None]],
) -> None:
    """One batched action for the busy slots, then every busy environment steps once."""
    active = [s for s in slots if s is not None]
    draws = np.stack([s.draws.row(s.t) for s in active])
    if episodic is not None:
        episodic.set_slots(busy)
    actions = choose_actions(policy, action, stacker.batch(busy), draws)
    _check_actions(policy, actions, busy.size)
    for slot, act in zip(active, actions.tolist(), strict=True):
        slot.step.send(act)
    rewards = np.zeros(busy.size, dtype=np.float64)
    ended = np.zeros(busy.size, dtype=np.bool_)
    for row, (i, slot) in enumerate(zip(busy, active, strict=True)):
        obs, reward, over = slot.step.recv()
        slot.t += 1
        rewards[row], ended[row] = reward, over
        slot.total += reward
        if ended[row]:
            results[slot.plan][slot.episode] = EpisodeResult(slot.level_seed, slot.total, slot.t)
            slot.env.close()
            slots[i] = None
        else:
            stacker.push(int(i), obs)
    if episodic is not None:
        episodic.observe(busy, actions, rewards, ended)


def _check_actions(policy: Policy, actions: npt.NDArray[np.int64], n: int) -> None:
    if actions.shape != (n,) or (n and (actions.min() < 0 or actions.max() >= NUM_ACTIONS)):
        raise SchemaError(
            f"policy {policy.policy_id!r} returned {actions.shape} actions for {n} observations, "
            f"or actions outside the integers [0, {NUM_ACTIONS})"
        )
