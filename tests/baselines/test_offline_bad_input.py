"""Bad input to train_offline / evaluate_offline, typed as a user would: one line, exit 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from offline_testlib import GAME, dodgeball_store, short_store, tiny_args

from baselines.common.errors import ConfigError
from baselines.evaluate_offline import main as evaluate_main
from baselines.offline.checkpoint import BEST, ROLLING, load_run_file, save_run_file
from baselines.offline.config import OfflineConfig
from baselines.offline.data import open_training_data, parse_datasets
from baselines.train_offline import main

__all__ = ["dodgeball_store", "short_store"]  # the fixtures, imported for pytest


def one_line_error(
    capsys: pytest.CaptureFixture[str], code: int, prog: str, *, lines: int = 1
) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") < lines and err.startswith(f"{prog}: error: "), err
    return err


def train_error(capsys: pytest.CaptureFixture[str], argv: list[str], *, lines: int = 1) -> str:
    return one_line_error(capsys, main(argv), "offgen-train-offline", lines=lines)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"algo": "ppo"}, "unknown --algo 'ppo'; use one of bc, bcq, bct, cql, dt, iql"),
        ({"env_name": "coinrunn"}, "coinrunn"),
        ({"env_name": "coinrun"}, "holds game 'dodgeball', not --env_name 'coinrun'"),
        ({"dataset": "expert_1MM"}, "expert_1MM"),
        ({"dataset": "/nonexistent/store"}, "/nonexistent/store"),
        ({"game": "coinrun"}, "--env_name 'dodgeball' and --game 'coinrun' differ"),
        ({"batch_size": 0}, "--batch_size must be >= 1"),
        ({"percentile": 1.5}, "--percentile must be in (0, 1]"),
        ({"agent_model": "resnet"}, "unknown --agent_model 'resnet'"),
    ],
)
def test_bad_flags_are_one_line_errors(
    tmp_path: Path,
    short_store: Path,
    capsys: pytest.CaptureFixture[str],
    override: dict[str, object],
    expected: str,
) -> None:
    flags: dict[str, object] = {"dataset": short_store, "max_steps": 1, "eval_freq": 0, **override}
    argv = tiny_args(tmp_path, **flags)
    assert expected in train_error(capsys, argv)
    assert not (tmp_path / GAME).exists() or not list((tmp_path / GAME).rglob("*.pt"))


def test_a_published_dataset_missing_here_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = tiny_args(tmp_path, "expert_1M", max_steps=1)
    # offgen's message lists each source it tried, one per line, then the command that fixes it.
    err = train_error(capsys, argv, lines=6)
    assert "offgen download --dataset expert_1M --games dodgeball" in err


def test_resume_with_changed_settings_and_damaged_checkpoints(
    tmp_path: Path, short_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = tiny_args(tmp_path, short_store, xpid="r", max_steps=2, eval_freq=0)
    assert main(argv) == 0
    capsys.readouterr()
    assert "pass --resume to continue it" in train_error(capsys, argv)
    err = train_error(capsys, [*argv, "--resume", "--lr=0.1"])
    assert "cannot resume with different settings (lr: 0.0005 -> 0.1)" in err
    # Where and how it runs may change.
    assert main([*argv, "--resume", "--log_interval=7", "--final_eval_episodes=3"]) == 0
    assert "already complete" in capsys.readouterr().err

    rolling = tmp_path / GAME / "r" / ROLLING
    rolling.write_bytes(rolling.read_bytes()[:1000])  # what no atomic write can leave
    assert "rolling/model.pt: cannot be loaded" in train_error(capsys, [*argv, "--resume"])


def test_evaluating_another_algorithms_checkpoint(
    tmp_path: Path, short_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = tiny_args(tmp_path, short_store, xpid="e", max_steps=2, eval_freq=0)
    assert main(argv) == 0
    best = tmp_path / GAME / "e" / BEST
    saved = load_run_file(best)
    save_run_file(best, dataclasses.replace(saved, algo="cql"))
    err = one_line_error(capsys, evaluate_main(argv), "offgen-evaluate-offline")
    assert "trained by --algo cql, not --algo bc; evaluate it with --algo cql" in err
    save_run_file(best, saved)
    err = one_line_error(
        capsys, evaluate_main([*argv, "--hidden_size=9"]), "offgen-evaluate-offline"
    )
    assert "other settings (hidden_size: 8 -> 9)" in err
    import torch

    torch.save({"model_state_dict": {}, "arch": {"name": "impala"}}, best)  # e.g. a PPO file
    err = one_line_error(capsys, evaluate_main(argv), "offgen-evaluate-offline")
    assert "not an offline-baselines checkpoint" in err
    err = one_line_error(
        capsys,
        evaluate_main(tiny_args(tmp_path, short_store, xpid="none")),
        "offgen-evaluate-offline",
    )
    assert "no such checkpoint" in err


def test_window_context_longer_than_every_episode(short_store: Path) -> None:
    cfg = OfflineConfig(dataset=str(short_store), dt_context_length=500)
    with pytest.raises(ConfigError, match=r"--dt_context_length 500 is longer than every episode"):
        open_training_data(cfg, "windows")
    assert open_training_data(cfg, "transitions").game == GAME  # transitions need no context


def test_dataset_flag_parsing() -> None:
    entries = parse_datasets("a.zarr:0.7, hf://org/repo:3,s3://bucket/x:1")
    assert [(e.location, e.weight) for e in entries] == [
        ("a.zarr", 0.7),
        ("hf://org/repo", 3.0),
        ("s3://bucket/x", 1.0),
    ]
    with pytest.raises(ConfigError, match=r"to every dataset .* or to none"):
        parse_datasets("a:1,b")
    assert parse_datasets("s3://bucket/x,hf://org/repo")[1].location == "hf://org/repo"
    with pytest.raises(ConfigError, match="empty item"):
        parse_datasets("a,,b")
    with pytest.raises(ConfigError, match="must be > 0"):
        parse_datasets("a:0,b:1")


def test_flags_take_snake_or_kebab_case() -> None:
    from baselines.common import config_from_args

    argv = ["--dataset=x", "--batch-size=8", "--env-name", "coinrun", "--early-stop", "false"]
    cfg = config_from_args(OfflineConfig, argv, prog="t", description="")
    snake = ["--dataset=x", "--batch_size=8", "--env_name", "coinrun", "--early_stop", "false"]
    assert cfg == config_from_args(OfflineConfig, snake, prog="t", description="")
    assert (cfg.batch_size, cfg.env_name, cfg.early_stop) == (8, "coinrun", False)
