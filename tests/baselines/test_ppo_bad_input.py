"""Bad input: each a one-line error that says what to do, exit status 2, nothing trained."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from ppo_testlib import tiny_args

from baselines.common import (
    ConfigError,
    DeviceError,
    differing_fields,
    save_training_state,
    select_device,
)
from baselines.ppo import PPOConfig, main
from offgen.policies import build_impala


def error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("offgen-ppo: error: ") and "\n" not in err, err
    return err


def test_unknown_game(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = error_line(capsys, tiny_args(tmp_path, env_name="coinrunn"))
    assert "coinrunn" in err and "coinrun" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("num_env_steps", 10, "less than one update"),
        ("algo", "bc", "use --algo ppo"),
        ("eval_action", "argmax", "--eval_action"),
        ("xpid", "a/b", "plain folder name"),
        ("distribution_mode", "impossible", "distribution mode"),
        ("start_level", 300, "no named evaluation split"),
        ("device", "tpu", "unknown --device"),
    ],
)
def test_bad_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: object, needle: str
) -> None:
    assert needle in error_line(capsys, tiny_args(tmp_path, **{flag: value}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = error_line(capsys, tiny_args(tmp_path, device="cuda"))
    assert "sees no CUDA GPU" in err and "--device cpu" in err
    with pytest.raises(DeviceError):
        select_device("cuda")
    assert not list(tmp_path.iterdir())


def test_unwritable_saving_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    err = error_line(capsys, tiny_args(blocker))
    assert "cannot write" in err and "choose a folder you can write to" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_saving_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp_path.chmod(0o500)
    try:
        assert "cannot write" in error_line(capsys, tiny_args(tmp_path / "runs"))
    finally:
        tmp_path.chmod(0o700)


def test_resume_from_a_file_that_is_not_a_training_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rolling = tmp_path / "dodgeball" / "tiny" / "rolling" / "model.pt"
    rolling.parent.mkdir(parents=True)
    torch.save(build_impala().state_dict(), rolling)
    err = error_line(capsys, [*tiny_args(tmp_path), "--resume"])
    assert "not a baselines training state" in err


def test_flags_accept_the_predecessor_spellings() -> None:
    from baselines.common import config_from_args

    def parse(*argv: str) -> PPOConfig:
        return config_from_args(PPOConfig, list(argv), prog="t", description="")

    assert parse("--resume=True").resume and parse("--resume").resume
    assert not parse("--resume", "false").resume
    assert parse("--num_env_steps", "25e6").num_env_steps == 25_000_000
    cfg = parse("--env_name", "Miner")
    assert cfg.env_name == "miner"
    assert cfg.xpid == "miner-easy-200-ppo-lr0.0005-epoch3-mb8-v0.5-ha0.01_0"
    with pytest.raises(SystemExit):
        parse("--num_env_steps", "1.5")
    with pytest.raises(ConfigError):
        PPOConfig(num_mini_batch=0)


def test_differing_fields_ignores_run_only_settings() -> None:
    assert differing_fields(
        {"lr": 1, "device": "cpu"}, {"lr": 2, "device": "cuda"}, ignore={"device"}
    ) == ["lr: 1 -> 2"]


def test_interrupted_checkpoint_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build_impala(hidden_size=16)
    optimizer = torch.optim.Adam(model.parameters())
    path = tmp_path / "rolling" / "model.pt"
    save_training_state(path, model, optimizer, update=1, config={"a": 1}, trainer={})
    before = path.read_bytes()

    def crash(obj: object, handle: object) -> None:
        handle.write(b"partial bytes")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_training_state(path, model, optimizer, update=2, config={"a": 1}, trainer={})
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]
