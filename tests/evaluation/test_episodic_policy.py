"""Real Procgen (envpool): a policy with memory (``EpisodicPolicy``) is told when each slot starts an
episode, which slot each row is, and the action, reward and end of each slot's step; a plain policy
is called as before."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("envpool")

from offgen.envs import EnvSpec, LevelRange, make_env
from offgen.evaluation import ActionMode, EvalEnvironment, plan_levels
from offgen.evaluation.runner import play_planned_episodes
from offgen.policies import EpisodicPolicy, Policy, RandomPolicy

RIGHT, RIGHT_UP = 7, 8


def _scripted_action(t: int) -> int:
    """Depends on the step within the episode only: a slot that missed a start would drift."""
    return RIGHT_UP if (t // 6) % 2 == 0 else RIGHT


@dataclass
class StepCountingPolicy:
    """Acts from each slot's own step count and records what the runner tells it, per episode."""

    policy_id: str = "step-counter"
    metadata: dict[str, Any] = field(default_factory=dict)
    steps: dict[int, int] = field(default_factory=dict)
    episode_of: dict[int, int] = field(default_factory=dict)
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    ended: list[bool] = field(default_factory=list)
    rows: npt.NDArray[np.int64] | None = None

    def start_episode(self, slot: int) -> None:
        assert slot not in self.steps, f"slot {slot} restarted before its episode ended"
        self.steps[slot] = 0
        self.episode_of[slot] = len(self.returns)
        self.returns.append(0.0)
        self.lengths.append(0)
        self.ended.append(False)

    def set_slots(self, slots: npt.NDArray[np.int64]) -> None:
        assert set(slots.tolist()) == set(self.steps), "rows are not the running slots"
        self.rows = slots.copy()

    def act(self, obs: npt.NDArray[np.uint8], uniforms: npt.NDArray[np.float64]) -> Any:
        assert self.rows is not None and len(self.rows) == len(obs)
        return np.array([_scripted_action(self.steps[int(s)]) for s in self.rows], dtype=np.int64)

    def observe(
        self,
        slots: npt.NDArray[np.int64],
        actions: npt.NDArray[np.int64],
        rewards: npt.NDArray[np.float64],
        ended: npt.NDArray[np.bool_],
    ) -> None:
        assert self.rows is not None and np.array_equal(slots, self.rows)
        for slot, action, reward, done in zip(slots.tolist(), actions, rewards, ended, strict=True):
            assert action == _scripted_action(self.steps[slot])
            episode = self.episode_of[slot]
            self.returns[episode] += float(reward)
            self.lengths[episode] += 1
            self.steps[slot] += 1
            if done:
                self.ended[episode] = True
                del self.steps[slot], self.episode_of[slot]
        self.rows = None


def _alone(level: int) -> tuple[float, int]:
    """The scripted policy on ``level`` in one environment, counting steps itself."""
    env = make_env(EnvSpec("coinrun", "easy", level, 1, None), 1, 0)
    env.reset()
    total, t = 0.0, 0
    while True:
        _obs, reward, term, trunc, _ = env.step(np.array([_scripted_action(t)], dtype=np.int32))
        total, t = total + float(reward[0]), t + 1
        if term[0] or trunc[0]:
            env.close()
            return total, t


def test_episodic_policy_hears_starts_rows_and_rewards_of_its_slots() -> None:
    policy = StepCountingPolicy()
    assert isinstance(policy, EpisodicPolicy) and isinstance(policy, Policy)
    levels = LevelRange(0, 200)
    plan = plan_levels(levels, 6, seed=3)
    played = play_planned_episodes(
        policy,
        EvalEnvironment("coinrun"),
        levels,
        plan,
        seed=3,
        action=ActionMode.greedy(),
        num_envs=3,
    )
    # Episodes start in plan order, so the policy's i-th episode is the runner's i-th result.
    assert policy.ended == [True] * len(plan) and not policy.steps
    assert policy.returns == [e.return_ for e in played]
    assert policy.lengths == [e.length for e in played]
    assert len(set(policy.lengths)) > 1, "episodes of one length cannot show slots kept apart"
    assert any(r > 0 for r in policy.returns), "no reward was ever observed"
    for e in played[:3]:  # the same policy alone on the level: its step counts were right
        assert _alone(e.level_seed) == (e.return_, e.length)


def test_plain_policy_is_not_episodic() -> None:
    assert not isinstance(RandomPolicy(), EpisodicPolicy)
