"""The runner on a scripted environment: every planned episode exactly once (no short-episode bias),
frame stacks exactly as the sampler builds them, the torch thread setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import offgen.evaluation.runner as runner
from offgen.data import StoreWriter, make_episode
from offgen.data.dataset import OffgenDataset
from offgen.envs import LevelRange
from offgen.evaluation import ActionMode, EvalEnvironment, environment_of, evaluate, plan_levels
from offgen.evaluation.runner import play_planned_episodes
from offgen.policies import CallablePolicy

LONG = 60


def _length(level: int) -> int:
    """Levels divisible by 4 are long, the others end after 2 steps."""
    return LONG if level % 4 == 0 else 2


class ScriptedEnv:
    """One environment pinned to one level; frame pixels hold the step index, reward 1 at the end
    of a short episode. Implements the part of envpool's API the runner uses."""

    def __init__(self, spec: Any, num_envs: int, seed: int, *, layout: str = "HWC") -> None:
        assert num_envs == 1 and spec.num_levels == 1 and layout == "HWC"
        self.level = spec.start_level
        self.t = 0
        self.pending: int | None = None

    def _frame(self) -> np.ndarray:
        return np.full((1, 64, 64, 3), self.t % 256, dtype=np.uint8)

    def reset(self) -> tuple[np.ndarray, dict[str, Any]]:
        return self._frame(), {"level_seed": np.array([self.level])}

    def send(self, action: np.ndarray, env_id: np.ndarray) -> None:
        self.pending = int(action[0])

    def recv(self) -> tuple[Any, ...]:
        assert self.pending is not None, "recv without send"
        self.pending = None
        self.t += 1
        done = self.t >= _length(self.level)
        reward = 1.0 if done and _length(self.level) == 2 else 0.0
        info = {"level_seed": np.array([self.level])}
        return self._frame(), np.array([reward]), np.array([done]), np.array([False]), info

    def close(self) -> None:
        pass


@pytest.fixture()
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "make_env", ScriptedEnv)


def test_every_planned_episode_counts_once_however_short(scripted: None) -> None:
    levels = LevelRange(0, 200)
    plan = plan_levels(levels, 32, seed=5)
    short = np.mean([_length(level) == 2 for level in plan])
    assert 0.5 < short < 0.95
    env = EvalEnvironment("coinrun")
    policy = CallablePolicy(lambda obs: np.zeros(len(obs), dtype=np.int64))
    played = play_planned_episodes(
        policy, env, levels, plan, seed=5, action=ActionMode.greedy(), num_envs=16
    )
    assert [e.level_seed for e in played] == list(plan)
    assert [e.length for e in played] == [_length(level) for level in plan]
    assert np.mean([e.return_ for e in played]) == short
    # What "the first N episodes to finish across the environments" measures instead: each
    # environment plays its own stream of levels, and short episodes finish first, so the first
    # 32 are all short (the long ones are still running when the count is reached).
    streams = [list(plan_levels(levels, 40, seed=100 + i)) for i in range(16)]
    ends = [(sum(_length(lv) for lv in s[: k + 1]), i, k) for i, s in enumerate(streams)
            for k in range(40)]  # fmt: skip
    first = [streams[i][k] for _, i, k in sorted(ends)[:32]]
    biased = np.mean([_length(level) == 2 for level in first])
    assert biased == 1.0 and short < 0.9, (biased, short)


def test_results_do_not_depend_on_num_envs(scripted: None) -> None:
    seen: list[int] = []

    def policy(obs: np.ndarray) -> np.ndarray:
        seen.append(len(obs))
        return (obs[:, 0, 0, 0] % 15).astype(np.int64)

    reports = [
        evaluate(CallablePolicy(policy), game="coinrun", splits="train,test", episodes=12,
                 seed=1, num_envs=n)
        for n in (1, 5, 32)
    ]  # fmt: skip
    assert reports[0].splits == reports[1].splits == reports[2].splits
    assert max(seen) == 24  # 32 environments asked, only 2 x 12 episodes planned (one pool)
    assert reports[0].action.startswith("policy's own act()")


def _counting_store(path: Path) -> OffgenDataset:
    """A store of one episode of level 7 whose frame t holds the value t (as ScriptedEnv)."""
    length = _length(7)
    frames = np.repeat(np.arange(length + 1, dtype=np.uint8), 64 * 64 * 3).reshape(-1, 64, 64, 3)
    with StoreWriter(
        path,
        game="coinrun",
        env_options={"distribution_mode": "easy", "start_level": 7, "num_levels": 1},
    ) as w:
        w.write(
            make_episode(
                frames,
                np.zeros(length, dtype=np.int64),
                np.zeros(length, dtype=np.float32),
                game="coinrun",
                level_seed=7,
            )
        )
    return OffgenDataset.open(path)  # fmt: skip


@pytest.mark.parametrize("layout", ["HWC", "CHW"])
def test_policy_sees_the_samplers_frame_stacks(scripted: None, tmp_path: Path, layout: str) -> None:
    ds = _counting_store(tmp_path / "store")
    env = environment_of(ds, frame_stack=4, layout=layout)  # type: ignore[arg-type]
    assert env.train_levels == LevelRange(7, 1) and env.source == "info.json"
    seen: list[np.ndarray] = []

    def policy(obs: np.ndarray) -> np.ndarray:
        seen.append(obs[0].copy())
        return np.zeros(len(obs), dtype=np.int64)

    evaluate(CallablePolicy(policy), splits="train", episodes=1, env=env)
    batch = ds.transitions(256, frame_stack=4, layout=layout, progress=False).batch(1)  # type: ignore[arg-type]
    assert batch.obs.shape[1:] == seen[0].shape
    for obs, t in zip(batch.obs, batch.timestep, strict=True):
        np.testing.assert_array_equal(obs, seen[int(t)])
    assert len({int(t) for t in batch.timestep}) == _length(7)  # every step was compared


def test_torch_threads_set_during_evaluation_and_restored(scripted: None) -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[int] = []

    def policy(obs: np.ndarray) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return np.zeros(len(obs), dtype=np.int64)

    try:
        evaluate(CallablePolicy(policy), game="coinrun", splits="level_2", episodes=2)
        assert set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        evaluate(CallablePolicy(policy), game="coinrun", splits="level_2", episodes=2,
                 torch_threads=None)  # fmt: skip
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)


def test_splits_share_one_pool_without_changing_any_episode(scripted: None) -> None:
    """All splits are played from one queue; each episode is the one a split alone would play."""
    policy = CallablePolicy(lambda obs: (obs[:, 0, 0, 0] % 15).astype(np.int64))
    together = evaluate(policy, game="coinrun", splits="train,validation,test", episodes=10,
                        seed=4, num_envs=8)  # fmt: skip
    for name in ("train", "validation", "test"):
        alone = evaluate(policy, game="coinrun", splits=name, episodes=10, seed=4, num_envs=8)
        assert together.splits[name] == alone.splits[name]
    lengths = [e.length for s in together.splits.values() for e in s.episodes]
    assert len(lengths) == 30 and len(set(lengths)) == 2  # long and short episodes in the pool


def test_precision_is_refused_for_a_policy_offgen_does_not_run(scripted: None) -> None:
    from offgen.errors import EvaluationError

    policy = CallablePolicy(lambda obs: np.zeros(len(obs), dtype=np.int64))
    with pytest.raises(EvaluationError, match="precision 'bf16' applies to checkpoints"):
        evaluate(policy, game="coinrun", splits="train", episodes=2, precision="bf16")
