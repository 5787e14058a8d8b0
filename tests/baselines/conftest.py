"""Tiny real PPO runs (dodgeball: random episodes end in ~70 steps, so rollouts finish some)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("envpool")
torch = pytest.importorskip("torch")

from baselines.ppo import main  # noqa: E402
from ppo_testlib import GAME, SECRET, tiny_args  # noqa: E402

# One torch thread: on the shared 2-core CI machine torch's default threads fight envpool's.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of one finished tiny run with --save_dataset (an env var holds a 'secret')."""
    saving = tmp_path_factory.mktemp("ppo_runs")
    os.environ["OFFGEN_TEST_WANDB_API_KEY"] = SECRET
    try:
        assert main([*tiny_args(saving), "--save_dataset"]) == 0
    finally:
        del os.environ["OFFGEN_TEST_WANDB_API_KEY"]
    return saving / GAME / "tiny"
