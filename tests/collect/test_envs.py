"""Environments: splits, layout, episode-end semantics, missing runtime, reproducibility."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from offgen.collect import collect
from offgen.envs import (
    DISTRIBUTION_MODES,
    SPLITS,
    EnvSpec,
    EnvSpecError,
    available_modes,
    check_available,
    envpool_id,
    import_envpool,
    make_env,
    resolve_split,
)
from offgen.errors import EnvironmentUnavailableError, UnknownNameError
from offgen.evaluation import evaluate
from offgen.policies import RandomPolicy


def test_named_splits() -> None:
    assert resolve_split("train") == SPLITS["train"]
    assert (SPLITS["train"].start_level, SPLITS["train"].num_levels) == (0, 200)
    assert (SPLITS["validation"].start_level, SPLITS["validation"].num_levels) == (200, 50)
    assert resolve_split("full").num_levels == 0
    assert (resolve_split("level_40").start_level, resolve_split("level_40").num_levels) == (0, 40)
    assert resolve_split("level_1").num_levels == 1
    with pytest.raises(UnknownNameError, match="level_<K>"):
        resolve_split("holdout")


def test_train_validation_test_never_share_a_level() -> None:
    names = ("train", "validation", "test")
    for a in names:
        for b in names:
            if a != b:
                assert not SPLITS[a].overlaps(SPLITS[b]), (a, b)
    assert SPLITS["test"].num_levels != 0  # num_levels=0 would be the full distribution
    assert SPLITS["full"].overlaps(SPLITS["train"])
    assert not SPLITS["test"].contains(199) and SPLITS["test"].contains(250)


def test_envpool_ids_and_bad_names() -> None:
    assert envpool_id("coinrun") == "CoinrunEasy-v0"
    assert envpool_id("Starpilot", "hard") == "StarpilotHard-v0"
    with pytest.raises(UnknownNameError, match="coinrun"):
        EnvSpec("coinrunn")
    with pytest.raises(UnknownNameError, match="distribution mode"):
        envpool_id("coinrun", "medium")


def test_layout_hwc_matches_envpool_chw() -> None:
    spec = EnvSpec("coinrun")
    hwc, chw = make_env(spec, 2, seed=5), make_env(spec, 2, seed=5, layout="CHW")
    a, _ = hwc.reset()
    b, _ = chw.reset()
    assert a.shape == (2, 64, 64, 3) and b.shape == (2, 3, 64, 64)
    assert a.dtype == np.uint8 and b.dtype == np.uint8
    for t in range(30):
        act = np.full(2, t % 15, dtype=np.int32)
        a, *_ = hwc.step(act)
        b, *_ = chw.step(act)
        assert np.array_equal(a, b.transpose(0, 2, 3, 1))


def test_episode_end_semantics_true_final_frame_then_reset_step() -> None:
    env = make_env(EnvSpec("coinrun"), 1, seed=11)
    obs, info = env.reset()
    start_seed = int(info["level_seed"][0])
    rng = np.random.default_rng(0)
    for _ in range(2000):
        obs, reward, terminated, truncated, info = env.step(rng.integers(0, 15, 1).astype(np.int32))
        if terminated[0] or truncated[0]:
            break
    else:
        pytest.fail("episode did not end")
    final_frame = obs[0].copy()
    assert int(info["level_seed"][0]) == start_seed == int(info["prev_level_seed"][0])
    obs, reward, terminated, truncated, info = env.step(np.array([3], dtype=np.int32))
    assert float(reward[0]) == 0.0 and not terminated[0] and not truncated[0]
    assert int(info["elapsed_step"][0]) == 0
    assert not np.array_equal(obs[0], final_frame)  # the next level's first frame


def test_missing_qt_runtime_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "envpool":
            raise ImportError("libQt5Gui.so.5: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "envpool", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(EnvironmentUnavailableError, match="apt-get install libqt5gui5"):
        import_envpool()


def test_evaluation_is_reproducible() -> None:
    def played(seed: int) -> tuple[list[float], list[int]]:
        report = evaluate(
            RandomPolicy(), game="coinrun", splits="validation", episodes=6, seed=seed, num_envs=3
        )
        episodes = report.splits["validation"].episodes
        return [e.return_ for e in episodes], [e.length for e in episodes]

    first, again, other = played(4), played(4), played(5)
    assert first == again
    assert len(first[0]) == 6
    assert first != other


def test_exploration_mode_takes_only_the_full_split() -> None:
    # envpool aborts the interpreter on these (a C++ CHECK, no exception): they must be refused
    # while building the spec, before envpool is called at all.
    with pytest.raises(EnvSpecError, match="--split full"):
        EnvSpec("maze", "exploration")  # the default train split (0, 200)
    with pytest.raises(EnvSpecError, match="split 'validation'"):
        EnvSpec.from_split("maze", "validation", "exploration")
    with pytest.raises(EnvSpecError, match="start_level=5, num_levels=0"):
        EnvSpec("maze", "exploration", 5, 0, None)
    with pytest.raises(EnvSpecError, match="num_levels=1"):
        EnvSpec("maze", "Exploration", 0, 1, None)
    assert isinstance(EnvSpecError("x"), ValueError)  # what EnvSpec raised for bad ranges before
    full = EnvSpec.from_split("maze", "full", "exploration")
    assert (full.start_level, full.num_levels, full.task_id) == (0, 0, "MazeExploration-v0")


_EXPLORATION_SCRIPT = """
import json, sys
import numpy as np
from offgen.collect import collect
from offgen.data import OffgenStore
from offgen.envs import EnvSpec, make_env
from offgen.envs.replay import replay_episode
from offgen.policies import RandomPolicy

spec = EnvSpec.from_split("maze", "full", "exploration")
seeds = set()
for seed in (0, 7):
    env = make_env(spec, 2, seed=seed)
    _, info = env.reset()
    seeds |= {int(s) for s in info["level_seed"]}
    rng = np.random.default_rng(seed)
    for _ in range(300):
        _, _, _, _, info = env.step(rng.integers(0, 15, 2).astype(np.int32))
        seeds |= {int(s) for s in info["level_seed"]}
    env.close()
out = collect(sys.argv[1], spec, RandomPolicy(), budget=200, num_envs=2, progress=False)
store = OffgenStore(out.output)
last = len(store.table) - 1
print(json.dumps({
    "seeds": sorted(seeds),
    "transitions": out.transitions,
    "replay": replay_episode(store.episode(last), distribution_mode="exploration").message,
}))
"""


def test_exploration_mode_plays_its_one_level_and_replays(tmp_path: Path) -> None:
    # In a subprocess: if envpool ever aborts here again, it fails this test instead of killing
    # the whole pytest run.
    done = subprocess.run(
        [sys.executable, "-c", _EXPLORATION_SCRIPT, str(tmp_path / "explore")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["seeds"] == [158988835]  # Procgen's maze exploration level, whatever the seed
    assert result["transitions"] == 200
    assert result["replay"] == "ok"


# What envpool 1.2.5 registers (Procgen defines memory/extreme/exploration for some games only);
# docs/collection.md lists the same table.
_MODES = {
    "bigfish": ("easy", "hard"),
    "bossfight": ("easy", "hard"),
    "caveflyer": ("easy", "hard", "memory", "exploration"),
    "chaser": ("easy", "hard", "extreme"),
    "climber": ("easy", "hard", "exploration"),
    "coinrun": ("easy", "hard", "exploration"),
    "dodgeball": ("easy", "hard", "extreme", "memory"),
    "fruitbot": ("easy", "hard"),
    "heist": ("easy", "hard", "memory", "exploration"),
    "jumper": ("easy", "hard", "memory", "exploration"),
    "leaper": ("easy", "hard", "extreme", "exploration"),
    "maze": ("easy", "hard", "memory", "exploration"),
    "miner": ("easy", "hard", "memory"),
    "ninja": ("easy", "hard", "exploration"),
    "plunder": ("easy", "hard"),
    "starpilot": ("easy", "hard", "extreme"),
}


def test_available_modes_follow_envpools_registry() -> None:
    assert {game: available_modes(game) for game in _MODES} == _MODES
    registered = set(import_envpool().list_all_envs())
    for game, modes in _MODES.items():
        for mode in DISTRIBUTION_MODES:
            assert (envpool_id(game, mode) in registered) == (mode in modes), (game, mode)


def test_unsupported_mode_is_a_clear_error_before_anything_is_created(tmp_path: Path) -> None:
    with pytest.raises(EnvSpecError, match=r"coinrun is available in: easy, hard, exploration"):
        make_env(EnvSpec("coinrun", "memory"), 1, seed=0)
    with pytest.raises(EnvSpecError, match="--distribution_mode"):
        check_available(EnvSpec("bigfish", "extreme"))
    out = tmp_path / "never"
    with pytest.raises(EnvSpecError, match="no 'memory' distribution mode"):
        collect(out, EnvSpec("coinrun", "memory"), RandomPolicy(), budget=10, progress=False)
    assert not out.exists()
    check_available(EnvSpec("miner", "memory"))  # a supported one passes
