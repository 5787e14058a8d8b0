"""Real Procgen (envpool) evaluation: planned levels really played, reruns bit for bit, paired
levels across policies, recovered dataset environments, and the CLI as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("envpool")
torch = pytest.importorskip("torch")

from offgen.data import StoreWriter  # noqa: E402
from offgen.envs import EnvSpec, LevelRange, make_env  # noqa: E402
from offgen.errors import EnvSpecError  # noqa: E402
from offgen.evaluation import (  # noqa: E402
    EvaluationReport,
    environment_of,
    evaluate,
    plan_levels,
)
from offgen.policies import RandomPolicy, build_impala, save_checkpoint  # noqa: E402

# One inference thread, as evaluate() uses: torch's default threads fight envpool's on 2 cores.
torch.set_num_threads(1)

CLI = [sys.executable, "-m", "offgen", "evaluate"]
RIGHT_UP = 8


def _impala_checkpoint(path: Path, seed: int = 0) -> Path:
    """An IMPALA with random features and a pull towards RIGHT+UP (short coinrun episodes) whose
    greedy action still depends on the observation."""
    torch.manual_seed(seed)
    model = build_impala()
    with torch.no_grad():
        torch.nn.init.orthogonal_(model.dist.linear.weight, gain=2.0)
        model.dist.linear.bias[RIGHT_UP] = 2.0
    return save_checkpoint(path, model, step=1)


def _sequential(level: int, actions_of: object) -> tuple[float, int]:
    """Play ``level`` alone in one environment (the reference for the vectorised run)."""
    env = make_env(EnvSpec("coinrun", "easy", level, 1, None), 1, 0)
    obs, _ = env.reset()
    total, steps = 0.0, 0
    while True:
        obs, reward, term, trunc, _ = env.step(actions_of(obs))  # type: ignore[operator]
        total, steps = total + float(reward[0]), steps + 1
        if term[0] or trunc[0]:
            env.close()
            return total, steps


def test_planned_levels_are_played_and_match_one_environment(tmp_path: Path) -> None:
    from offgen.policies import load_policy

    policy = load_policy(_impala_checkpoint(tmp_path / "p.pt"), greedy=True)
    report = evaluate(policy, game="coinrun", splits="validation", episodes=4, seed=2, num_envs=3)
    episodes = report.splits["validation"].episodes
    assert [e.level_seed for e in episodes] == list(plan_levels(LevelRange(200, 50), 4, seed=2))
    for e in episodes[:2]:  # the same level alone, one environment, batch-1 inference
        ret, length = _sequential(e.level_seed, lambda o: policy.act(o, np.zeros(1)))
        assert (ret, length) == (e.return_, e.length)


def test_rerun_is_bit_identical_and_levels_are_paired(tmp_path: Path) -> None:
    ckpt = _impala_checkpoint(tmp_path / "p.pt")
    outputs = []
    for name in ("a", "b"):
        done = subprocess.run(
            [*CLI, str(ckpt), "--game", "coinrun", "--splits", "train,test", "--episodes", "3",
             "--num-envs", "3", "--seed", "7", "--output", str(tmp_path / f"{name}.json")],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "normalised" in done.stdout
        outputs.append(json.loads((tmp_path / f"{name}.json").read_text())["splits"])
    assert outputs[0] == outputs[1]
    random = evaluate(RandomPolicy(), game="coinrun", splits="train,test", episodes=3, seed=7)
    ours = EvaluationReport.from_json(tmp_path / "a.json")
    for split in ("train", "test"):
        assert [e.level_seed for e in random.splits[split].episodes] == [
            e.level_seed for e in ours.splits[split].episodes
        ]
    done = subprocess.run(
        [*CLI, "random", "--game", "coinrun", "--splits", "train,test", "--episodes", "3",
         "--seed", "7", "--compare", str(tmp_path / "a.json"), "--csv", str(tmp_path / "e.csv")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "paired difference" in done.stdout
    assert (tmp_path / "e.csv").read_text().startswith("final_test_ret,final_train_ret")


def test_sampled_actions_are_reproducible_and_stated(tmp_path: Path) -> None:
    from offgen.policies import load_policy

    policy = load_policy(_impala_checkpoint(tmp_path / "p.pt"))
    runs = [evaluate(policy, game="coinrun", splits="level_3", episodes=3, seed=1,
                     num_envs=n, action="sample") for n in (3, 2)]  # fmt: skip
    assert runs[0].action == "sample"
    assert runs[0].splits["level_3"].episodes == runs[1].splits["level_3"].episodes


def _store(path: Path, env: dict[str, object], dataset: str | None) -> Path:
    with StoreWriter(path, game="coinrun", env_options=env, dataset=dataset):
        pass
    return path


def test_environment_of_collected_and_converted_stores(tmp_path: Path) -> None:
    collected = _store(tmp_path / "c", EnvSpec.from_split("coinrun", "validation").to_dict(), None)
    env = environment_of(collected)
    assert (env.game, env.train_levels.start_level, env.train_levels.num_levels) == (
        "coinrun", 200, 50)  # fmt: skip
    # A store converted from the published level-40 archive records no game and no range.
    converted = _store(tmp_path / "v", {"distribution_mode": "easy"}, "level_40_E")
    env = environment_of(converted)
    assert env.train_levels.num_levels == 40 and env.source == "registry:level40_expert_100k"
    report = evaluate(RandomPolicy(), splits="train", episodes=3, env=env)
    assert all(0 <= e.level_seed < 40 for e in report.splits["train"].episodes)
    unnamed = _store(tmp_path / "u", {"distribution_mode": "easy"}, None)
    with pytest.raises(EnvSpecError, match="records no level range"):
        environment_of(unnamed)
    done = subprocess.run(
        [*CLI, "random", "--dataset", str(converted), "--splits", "train", "--episodes", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "levels 0+40" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["random", "--game", "coinrn"], "unknown game 'coinrn'"),
        (["random", "--game", "coinrun", "--splits", "train,holdout"], "unknown split 'holdout'"),
        (["random", "--game", "coinrun", "--action", "softmax"], "unknown action mode"),
        (["nothing.pt", "--game", "coinrun"], "no such checkpoint"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_checkpoints_that_are_not_this_policy(tmp_path: Path) -> None:
    torch.save({"weights": [1, 2, 3]}, tmp_path / "notpolicy.pt")
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "bare.pt")
    torch.save({"format": "offgen-policy", "arch": {"name": "dt"},
                "model_state_dict": {"head.weight": torch.zeros(2)}}, tmp_path / "dt.pt")  # fmt: skip
    wrong = build_impala(hidden_size=64)
    state = wrong.state_dict()
    state["dist.linear.weight"] = torch.zeros(15, 32)  # shapes of no IMPALA
    torch.save({"model_state_dict": state}, tmp_path / "shapes.pt")
    cases = {
        "notpolicy.pt": "no model weights found",
        "bare.pt": "not an IMPALA actor-critic",
        "dt.pt": "saved by architecture 'dt'",
        "shapes.pt": "do not fit the IMPALA network",
    }
    for name, message in cases.items():
        done = subprocess.run([*CLI, str(tmp_path / name), "--game", "coinrun"],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 2, done.stdout
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_bf16_precision_is_stated_and_plays_the_planned_levels(tmp_path: Path) -> None:
    """``--precision bf16`` (bfloat16 autocast): recorded in the report; the same levels are played,
    and with this policy's margins the same greedy actions as fp32 (not guaranteed in general)."""
    from offgen.policies import load_policy

    checkpoint = _impala_checkpoint(tmp_path / "model.pt")
    fp32 = evaluate(load_policy(checkpoint, greedy=True), game="coinrun", splits="level_3",
                    episodes=2, num_envs=2)  # fmt: skip
    bf16 = evaluate(load_policy(checkpoint, greedy=True), game="coinrun", splits="level_3",
                    episodes=2, num_envs=2, precision="bf16")  # fmt: skip
    assert bf16.settings["policy"]["precision"] == "bf16"
    assert fp32.settings["policy"]["precision"] == "fp32"
    levels = [e.level_seed for e in bf16.splits["level_3"].episodes]
    assert levels == [e.level_seed for e in fp32.splits["level_3"].episodes]
    assert set(levels) <= {0, 1, 2}  # level_3: levels 0-2
    out = subprocess.run(
        [*CLI, str(checkpoint), "--game", "coinrun", "--splits", "level_3", "--episodes", "1",
         "--precision", "bf16", "-o", str(tmp_path / "r.json")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (
        json.loads((tmp_path / "r.json").read_text())["settings"]["policy"]["precision"] == "bf16"
    )
    bad = subprocess.run(
        [*CLI, str(checkpoint), "--game", "coinrun", "--precision", "fp16"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode != 0 and "--precision must be fp32 or bf16" in bad.stderr
