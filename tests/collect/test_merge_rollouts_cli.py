"""Shards + merge, the training-rollout recorder, and the CLI as a user types it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from offgen.cli import app
from offgen.collect import RolloutRecorder, collect, merge_stores
from offgen.data import OffgenStore
from offgen.envs import EnvSpec, make_env
from offgen.envs.replay import replay_episodes
from offgen.errors import SchemaError
from offgen.policies import RandomPolicy

CLI = str(Path(sys.executable).with_name("offgen-collect"))
OFFGEN = str(Path(sys.executable).with_name("offgen"))


def _shard(tmp: Path, index: int, seed: int = 5, split: str = "train") -> Path:
    return collect(
        tmp / f"part{index}",
        EnvSpec.from_split("coinrun", split),
        RandomPolicy(),
        budget=701,
        num_envs=4,
        seed=seed,
        shard_index=index,
        num_shards=2,
        progress=False,
    ).output


def test_shards_merge_into_one_consistent_store(tmp_path: Path) -> None:
    p0, p1 = _shard(tmp_path, 0), _shard(tmp_path, 1)
    s0, s1 = OffgenStore(p0), OffgenStore(p1)
    assert s0.info.counts.transitions == 351 and s1.info.counts.transitions == 350
    assert not np.array_equal(s0.table.rows["level_seed"], s1.table.rows["level_seed"])
    merged = merge_stores([p0, p1], tmp_path / "merged", progress=False)
    store = OffgenStore(merged.output)
    assert merged.transitions == 701 == int(store.table.rows["length"].sum())
    assert len(store.table) == len(s0.table) + len(s1.table)
    assert store.verify(check_frames=False)  # manifest written and consistent
    e = store.episode(len(s0.table))
    first_of_p1 = s1.episode(0)
    assert np.array_equal(e.observations, first_of_p1.observations)
    assert e.level_seed == first_of_p1.level_seed
    with pytest.raises(SchemaError, match="same collection shard"):
        merge_stores([p0, p0], tmp_path / "dup", progress=False)
    other = _shard(tmp_path / "val", 0, split="validation")
    with pytest.raises(SchemaError, match="env options"):
        merge_stores([p0, other], tmp_path / "bad", progress=False)


def test_training_rollouts_become_a_dataset(tmp_path: Path) -> None:
    spec = EnvSpec("coinrun")
    env = make_env(spec, 4, seed=9, layout="CHW")  # a training loop's own envpool env
    rng = np.random.default_rng(0)
    with RolloutRecorder.create(tmp_path / "log", spec, num_envs=4, policy_id="ppo") as rec:
        obs, info = env.reset()
        rec.start(obs, info)
        for update in range(6):
            steps = []
            for _ in range(128):
                action = rng.integers(0, 15, 4).astype(np.int32)
                obs, reward, term, trunc, info = env.step(action)
                steps.append((action, obs, reward, term, trunc, info))
            rec.add_rollout(
                np.stack([steps[0][1], *[s[1] for s in steps]]),
                np.stack([s[0] for s in steps]),
                np.stack([s[2] for s in steps]),
                np.stack([s[3] for s in steps]),
                np.stack([s[4] for s in steps]),
                [s[5] for s in steps],
                policy_version=update,
            )
    store = OffgenStore(tmp_path / "log")
    assert len(store.table) >= 1
    ids = [p["id"] for p in store.policies]
    assert all(i.startswith("ppo@") for i in ids)
    assert all(p["kind"] == "training" and isinstance(p["version"], int) for p in store.policies)
    assert all(r.ok for r in replay_episodes(store, 2)), "recorded episodes must replay exactly"


def test_cli_subprocess_collect_and_merge(tmp_path: Path) -> None:
    out = tmp_path / "data"
    done = subprocess.run(
        [CLI, "--env_name", "coinrun", "--policy", "random", "--num_env_steps", "300",
         "--num_processes", "4", "--seed", "2", "--dataset_saving_dir", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "300 transitions" in done.stdout
    assert OffgenStore(out).info.counts.transitions == 300
    again = subprocess.run(
        [OFFGEN, "collect", "--game", "coinrun", "--policy", "random", "--num_env_steps", "300",
         "--num-envs", "4", "--seed", "2", "--output", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0 and "already complete" in again.stdout
    merged = subprocess.run(
        [OFFGEN, "merge", str(out), "--output", str(tmp_path / "m"), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    assert OffgenStore(tmp_path / "m").info.counts.transitions == 300


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--game", "coinrunn", "--policy", "random"], "Did you mean"),
        (["--game", "coinrun", "--ratio", "1.5", "--ratio_checkpoint_dir", "x"], "[0, 1]"),
        (["--game", "coinrun", "--checkpoint_path", "nowhere/model.pt"], "not found"),
        (["--game", "coinrun"], "--policy random"),
        (["--game", "coinrun", "--split", "holdout", "--policy", "random"], "level_<K>"),
        # --checkpoint_path must not be silently dropped in favour of --policy random
        (["--game", "coinrun", "--policy", "random", "--checkpoint_path", "m.pt"],
         "random does not use --checkpoint_path"),
        (["--game", "coinrun", "--ratio", "0.5", "--ratio_checkpoint_dir", "x",
          "--checkpoint_path", "m.pt"], "ratio mode picks"),
        # exploration is one fixed level: the default train split is refused, without an abort
        (["--game", "maze", "--distribution_mode", "exploration", "--policy", "random"],
         "--split full"),
        (["--game", "maze", "--distribution_mode", "exploration", "--split", "full",
          "--num_levels", "3", "--policy", "random"], "num_levels=3"),
        (["--game", "coinrun", "--distribution_mode", "memory", "--policy", "random"],
         "available in: easy, hard, exploration"),
        # issue 12 item 6: a negative commit interval was accepted
        (["--game", "coinrun", "--policy", "random", "--commit-every", "-1"], "seconds >= 0"),
        (["--game", "coinrun", "--policy", "random", "--commit-every", "nan"], "seconds >= 0"),
    ],
)  # fmt: skip
def test_cli_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [CLI, *args, "--num_env_steps", "10", "--output", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_cli_help_has_examples() -> None:
    result = CliRunner().invoke(app, ["collect", "--help"])
    assert result.exit_code == 0
    for flag in ("--env_name", "--num_processes", "--ratio_checkpoint_dir", "--format", "--split"):
        assert flag in result.output
    assert "offgen-collect --game coinrun --policy random" in result.output
    assert "merge" in CliRunner().invoke(app, ["--help"]).output
