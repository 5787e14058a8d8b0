"""Fixtures for the collection tests: small real collections and tiny real IMPALA checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("envpool")
torch = pytest.importorskip("torch")

from offgen.collect import CollectResult, collect  # noqa: E402
from offgen.data.table import EPISODE_RECORD  # noqa: E402
from offgen.envs import EnvSpec  # noqa: E402
from offgen.policies import RandomPolicy, build_impala  # noqa: E402

# One inference thread: on the shared 2-core CI machine torch's default threads fight envpool's.
torch.set_num_threads(1)

# Procgen action 8 is RIGHT+UP: in coinrun it reaches the coin far more often than random play;
# RIGHT (7) alone often runs into obstacles. Both end episodes quickly, which keeps tests short.
RIGHT, RIGHT_UP = 7, 8


def impala_with_bias(strength: float, seed: int = 0, right: float = 0.0) -> object:
    """An IMPALA actor-critic preferring RIGHT+UP by ``strength`` and RIGHT by ``right`` logits."""
    torch.manual_seed(seed)
    model = build_impala()
    with torch.no_grad():
        model.dist.linear.weight.zero_()  # type: ignore[attr-defined]
        model.dist.linear.bias.zero_()  # type: ignore[attr-defined]
        model.dist.linear.bias[RIGHT_UP] = strength  # type: ignore[attr-defined]
        model.dist.linear.bias[RIGHT] = right  # type: ignore[attr-defined]
    return model


def save_predecessor(path: Path, model: object, epoch: int) -> Path:
    """Save ``model`` as the predecessor's trainer did (model, optimizer, epoch)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model_state_dict": model.state_dict(),  # type: ignore[attr-defined]
            "optimizer_state_dict": optimizer.state_dict(),
            "epoch": epoch,
        },
        path,
    )
    return path


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A predecessor-layout run folder: final/, checkpoint/ (2 files) and rolling/."""
    root = tmp_path_factory.mktemp("ppo") / "coinrun" / "run0"
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


def committed_episodes(out: Path) -> int:
    """Episode records in a store's table as they are on disk (readable while it is written)."""
    table = out / "episodes.bin"
    return table.stat().st_size // EPISODE_RECORD.itemsize if table.exists() else 0


def collect_random_coinrun(
    out: Path, *, budget: int, num_envs: int, seed: int, **options: Any
) -> Path:
    """An uninterrupted random-policy coinrun collection into ``out`` (the resume references)."""
    collect(out, EnvSpec("coinrun"), RandomPolicy(), budget=budget, num_envs=num_envs, seed=seed,
            progress=False, **options)  # fmt: skip
    return out
