"""Helpers of the offline baselines tests: a small real dodgeball store and tiny-run flags.

dodgeball: random episodes end in ~70 steps and an untrained greedy network's evaluation episodes
too, so tiny runs, evaluations included, take seconds. (No ``conftest.py`` here, see
``ppo_testlib.py``.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("envpool")
torch = pytest.importorskip("torch")

from fixtures.factories import collect_procgen, write_store  # noqa: E402

GAME = "dodgeball"
SECRET = "offgen-test-secret-value-3b9e"

# One torch thread: on the shared 2-core machine, and the same arithmetic in every process.
torch.set_num_threads(1)


def build_store(path: Path, episodes: int = 16, seed: int = 5) -> Path:
    """A finished store of ``episodes`` real random-policy dodgeball episodes."""
    return write_store(
        path, collect_procgen(GAME, episodes, seed=seed), shard_frames=256, chunk_frames=64
    )


def tiny_args(
    save_path: Path, dataset: Path | str = "", xpid: str = "tiny", **overrides: object
) -> list[str]:
    """Flags of a run of a few seconds: Nature encoder of width 8, batches of 16, 2 epochs."""
    flags: dict[str, object] = {
        "algo": "bc",
        "dataset": dataset,
        "env_name": GAME,
        "agent_model": "nature",
        "hidden_size": 8,
        "batch_size": 16,
        "epochs": 2,
        "eval_freq": 1,
        "eval_episodes": 1,
        "final_eval_episodes": 1,
        "eval_num_envs": 1,
        "save_path": save_path,
        "xpid": xpid,
        "seed": 3,
        "progress": "false",
        "torch_threads": 1,
        "device": "cpu",
    }
    flags.update(overrides)
    return [f"--{k}={v}" for k, v in flags.items()]


@pytest.fixture(scope="session")
def dodgeball_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of :func:`build_store`, built once per session (shared by the test modules)."""
    path = tmp_path_factory.getbasetemp() / "offline-dodgeball-store"
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        build_store(partial).rename(path)
    return path


@pytest.fixture(scope="session")
def short_store(dodgeball_store: Path) -> Path:
    """The episodes of ``dodgeball_store`` shorter than 500 steps (~780 steps in all)."""
    from offgen.data.dataset import OffgenDataset

    path = dodgeball_store.with_name("offline-dodgeball-short")
    if not path.exists():
        ds = OffgenDataset.open(dodgeball_store).filter(max_length=499)
        episodes = [ds.episode(i) for i in range(len(ds))]
        partial = path.with_name(path.name + ".partial")
        write_store(partial, episodes, shard_frames=256, chunk_frames=64).rename(path)
    return path
