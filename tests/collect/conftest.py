"""Fixtures for the collection tests: a small real collection and a run folder of checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("envpool")
torch = pytest.importorskip("torch")

from fixtures.factories import CheckpointFactory  # noqa: E402

from offgen.collect import CollectResult, collect  # noqa: E402
from offgen.envs import EnvSpec  # noqa: E402
from offgen.policies import RandomPolicy  # noqa: E402

# One inference thread: on the shared 2-core CI machine torch's default threads fight envpool's.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def run_dir(
    tmp_path_factory: pytest.TempPathFactory, checkpoint_factory: CheckpointFactory
) -> Path:
    """A predecessor-layout run folder: final/, checkpoint/ (2 files) and rolling/."""
    root = tmp_path_factory.mktemp("ppo") / "coinrun" / "run0"
    save_predecessor, impala_with_bias = checkpoint_factory.save, checkpoint_factory.impala
    save_predecessor(root / "final" / "model_9.90.pt", impala_with_bias(8.0), 1500)
    save_predecessor(root / "checkpoint" / "model_50_5.10.pt", impala_with_bias(3.0, right=6.0), 50)
    save_predecessor(
        root / "checkpoint" / "model_100_8.00.pt", impala_with_bias(4.0, right=4.0), 100
    )
    save_predecessor(root / "rolling" / "model.pt", impala_with_bias(8.0, seed=1), 1500)
    return root


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> CollectResult:
    """1,500 random-policy coinrun transitions on the training levels, 8 environments."""
    out = tmp_path_factory.mktemp("collect") / "store"
    return collect(
        out, EnvSpec("coinrun"), RandomPolicy(), budget=1500, num_envs=8, seed=3, progress=False
    )
