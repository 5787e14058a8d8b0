"""Helpers and fixtures of the baselines tests: tiny real PPO runs.

dodgeball is used because random episodes there end in ~70 steps, so tiny rollouts finish some.
This folder has no ``conftest.py`` and no ``__init__.py`` on purpose: as a package its name would
shadow the ``baselines`` package under test, and a second rootless ``conftest`` module would
shadow ``tests/conftest.py``. pytest puts this folder on ``sys.path``, so tests import this module.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("envpool")
torch = pytest.importorskip("torch")

from baselines.ppo import main  # noqa: E402

# One torch thread: on the shared 2-core CI machine torch's default threads fight envpool's.
torch.set_num_threads(1)

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


def finished_tiny_run(saving: Path) -> Path:
    """Train one tiny run with --save_dataset, and --log_wandb in offline mode when wandb is
    installed, while an environment variable holds a 'secret'; its run folder."""
    import importlib.util

    wandb = importlib.util.find_spec("wandb") is not None
    saved = {k: os.environ.get(k) for k in ("OFFGEN_TEST_WANDB_API_KEY", "WANDB_MODE")}
    os.environ["OFFGEN_TEST_WANDB_API_KEY"] = SECRET
    os.environ["WANDB_MODE"] = "offline"
    try:
        argv = [*tiny_args(saving), "--save_dataset", f"--log_wandb={wandb}"]
        assert main(argv) == 0
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return saving / GAME / "tiny"
