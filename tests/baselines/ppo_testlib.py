"""Helpers shared by the baselines tests (tests/baselines is on sys.path under pytest)."""

from __future__ import annotations

from pathlib import Path

GAME = "dodgeball"
SECRET = "offgen-test-secret-value-7d1f"


def tiny_args(saving_dir: Path, xpid: str = "tiny", **overrides: object) -> list[str]:
    """Flags of a 4-update run: 4 environments x 16 steps, archives every 2 updates."""
    flags: dict[str, object] = {
        "env_name": GAME,
        "num_processes": 4,
        "num_steps": 16,
        "ppo_epoch": 1,
        "num_mini_batch": 2,
        "num_env_steps": 256,
        "archive_interval": 2,
        "log_interval": 1,
        "eval_episodes": 2,
        "final_eval_episodes": 2,
        "eval_num_envs": 2,
        "model_saving_dir": saving_dir,
        "xpid": xpid,
        "seed": 3,
        "progress": "false",
        "torch_threads": 1,
        "device": "cpu",
    }
    flags.update(overrides)
    return [f"--{k}={v}" for k, v in flags.items()]
