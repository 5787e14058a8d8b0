"""Data-parallel offline training: ``torchrun --nproc_per_node=2`` on the CPU over gloo.

The loop's ``OFFGEN_DDP_TRACE`` switch makes each rank write a digest of its parameters after
training and the (update, source, episode, timestep) rows it trained on.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from offline_testlib import GAME, dodgeball_store, tiny_args, torch

from baselines.common import ResumeError, config_from_args
from baselines.common.errors import ConfigError
from baselines.offline.checkpoint import BEST, ROLLING, load_run_file, restore_modules
from baselines.offline.config import OfflineConfig
from baselines.offline.distributed import TRACE_ENV, Ranks, check_batch_size, parameter_digest
from baselines.offline.loop import train
from baselines.offline.registry import make_algorithm

__all__ = ["dodgeball_store"]  # the fixture, imported for pytest

# ~62 updates per epoch of 16 rows (8 per rank), 2 epochs, evaluated and checkpointed after each.
FLAGS: dict[str, object] = {"dataset_size": 500, "epochs": 2, "ckpt_freq": 1, "eval_freq": 1}
RANKS = 2


def torchrun(argv: list[str], trace: Path) -> subprocess.Popen[str]:
    """``python -m torch.distributed.run --nproc_per_node=2 -m baselines.train_offline argv``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), TRACE_ENV: str(trace)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={RANKS}", "-m", "baselines.train_offline", *argv]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL torchrun's workers, then torchrun (its workers run in sessions of their own, so
    killing its process group would leave them training)."""
    for child in children(pid):
        os.kill(child, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return out


def digests(trace: Path) -> list[str]:
    return [(trace / f"rank{k}.sha256").read_text().strip() for k in range(RANKS)]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory, dodgeball_store: Path) -> dict[str, Any]:
    """One uninterrupted 2-rank run: its flags, folder, trace and output."""
    root = tmp_path_factory.mktemp("ddp")
    argv = tiny_args(root / "runs", dodgeball_store, xpid="d", **FLAGS)
    out = finish(torchrun(argv, root / "trace"))
    return {"argv": argv, "run": root / "runs" / GAME / "d", "trace": root / "trace", "out": out}


@pytest.mark.slow  # ~60 s on 2 busy cores: two processes train and rank 0 evaluates
def test_two_ranks_stay_identical_and_draw_disjoint_rows(ddp_run: dict[str, Any]) -> None:
    run, trace = ddp_run["run"], ddp_run["trace"]
    assert len(set(digests(trace))) == 1  # the ranks' parameters are identical after training

    rows = [np.load(trace / f"rank{k}.samples.npy") for k in range(RANKS)]
    rolling = load_run_file(run / ROLLING)
    assert [len(r) for r in rows] == [rolling.update * 16 // RANKS] * RANKS  # 8 rows per update
    for update in range(rolling.update):
        mine = [{tuple(x) for x in r[r[:, 0] == update, 1:].tolist()} for r in rows]
        assert not mine[0] & mine[1], f"update {update}: a row drawn by both ranks"

    # Trained: the checkpoint's weights are the ranks' and differ from the initial ones.
    cfg = OfflineConfig(**dict(rolling.config))
    derived = {"total_updates": rolling.update, "dataset_max_return": 1.0}
    algorithm = make_algorithm(cfg.algo, cfg, derived, torch.device("cpu"))
    initial = parameter_digest(algorithm.modules())
    restore_modules(algorithm.modules(), rolling.model_state_dict)
    assert parameter_digest(algorithm.modules()) == digests(trace)[0] != initial

    # Rank 0 alone wrote: one rolling state holding both ranks' sampler shards, each CSV row
    # once, one final evaluation, one line of output.
    assert rolling.trainer["world_size"] == RANKS
    shards = [r["sampler"]["shard"] for r in rolling.trainer["ranks"]]
    assert shards == [[k, RANKS] for k in range(RANKS)]
    with (run / "progress.csv").open() as handle:
        updates = [int(r["update"]) for r in csv.DictReader(handle)]
    assert updates == sorted(set(updates)) and updates[-1] == rolling.update
    assert (run / BEST).is_file() and (run / "final_eval.json").is_file()
    assert ddp_run["out"].count("best model:") == 1
    assert not list(run.rglob("*.tmp*"))


@pytest.mark.slow  # ~90 s: a killed 2-rank run and its resumption
def test_killed_two_rank_run_resumes_to_the_same_weights(
    tmp_path: Path, ddp_run: dict[str, Any]
) -> None:
    argv = [a for a in ddp_run["argv"] if not a.startswith("--save_path")]
    argv.append(f"--save_path={tmp_path / 'runs'}")
    run = tmp_path / "runs" / GAME / "d"
    proc = torchrun(argv, tmp_path / "killed")
    try:
        while proc.poll() is None and not (run / ROLLING).exists():
            time.sleep(0.02)
    finally:
        kill_tree(proc.pid)
        proc.communicate(timeout=60)
    killed = load_run_file(run / ROLLING)
    assert 0 < killed.update < load_run_file(ddp_run["run"] / ROLLING).update

    # One process cannot continue a two-rank run: its shards' positions belong to two ranks.
    with pytest.raises(ResumeError, match="nproc_per_node=2"):
        train(config_from_args(OfflineConfig, [*argv, "--resume"], prog="t", description=""))

    finish(torchrun([*argv, "--resume"], tmp_path / "resumed"))
    assert digests(tmp_path / "resumed") == digests(ddp_run["trace"])  # bit for bit


def test_batch_size_is_the_global_batch_split_over_ranks() -> None:
    assert check_batch_size(256, Ranks(1, 4)) == 64
    assert check_batch_size(256, Ranks()) == 256
    with pytest.raises(ConfigError, match="multiple of 3"):
        check_batch_size(256, Ranks(0, 3))


HOOK_SCRIPT = """
import os, sys, torch, torch.distributed as dist
from baselines.offline import distributed as ddp
torch.manual_seed(0)
x, y = torch.randn(8, 4), torch.randn(8, 2)
def step(model, rows):  # two backward passes before one step, the gradient clipped: as DT / IQL
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(x[rows]), y[rows]).backward()
    model[0].weight.pow(2).sum().backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    opt.step()
def net():
    torch.manual_seed(1 + dist.get_rank() if dist.is_initialized() else 1)  # differ before the broadcast
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
reference = net()
step(reference, slice(0, 8))  # one process, the whole batch
ranks, _ = ddp.setup(torch.device("cpu"))
model = net()
modules = {"model": model, "target": torch.nn.Linear(2, 2).requires_grad_(False)}
ddp.broadcast_modules(modules, ranks)
ddp.average_gradients(modules, ranks)
step(model, slice(4 * ranks.rank, 4 * ranks.rank + 4))  # this rank's half
for got, want in zip(model.parameters(), reference.parameters()):
    torch.testing.assert_close(got, want)
ddp.teardown(ranks)
os.write(1, f"rank {ranks.rank} ok\\n".encode())  # one write: the ranks share stdout
"""


@pytest.mark.slow  # ~10 s idle, ~35 s on the busy shared cores: torchrun starts 2 torch processes
def test_gradient_hooks_give_the_whole_batch_step(tmp_path: Path) -> None:
    """Two ranks on halves of a batch take the step one process takes on all of it, through
    gradient clipping and a gradient accumulated over two backward passes."""
    script = tmp_path / "hooks.py"
    script.write_text(HOOK_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    out = subprocess.run(
        [*command, f"--nproc_per_node={RANKS}", str(script)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(line for line in out.stdout.splitlines() if "ok" in line) == [
        "rank 0 ok",
        "rank 1 ok",
    ]
