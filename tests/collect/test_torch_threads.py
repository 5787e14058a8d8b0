"""The torch thread count while policies act beside envpool (``torch_threads`` / ``--torch-threads``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from offgen.collect import collect
from offgen.envs import EnvSpec

torch = pytest.importorskip("torch")
CLI = str(Path(sys.executable).with_name("offgen-collect"))


class _ThreadRecorder:
    """Moves right; records torch's thread count each time it acts."""

    def __init__(self) -> None:
        self.policy_id = "threads"
        self.metadata: dict[str, object] = {}
        self.seen: set[int] = set()

    def act(self, obs: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        self.seen.add(torch.get_num_threads())
        return np.full(len(obs), 7)


@pytest.mark.parametrize(("threads", "expected"), [(1, {1}), (3, {3}), (None, {2})])
def test_collect_runs_the_policies_with_the_chosen_torch_threads(
    tmp_path: Path, threads: int | None, expected: set[int]
) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        policy = _ThreadRecorder()
        collect(
            tmp_path / "out",
            EnvSpec("coinrun"),
            policy,
            budget=40,
            num_envs=2,
            progress=False,
            torch_threads=threads,
        )
        assert policy.seen == expected
        assert torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(before)


def test_cli_refuses_a_negative_torch_thread_count(tmp_path: Path) -> None:
    run = subprocess.run(
        [CLI, "--game", "coinrun", "--policy", "random", "--num_env_steps", "10",
         "--output", str(tmp_path / "o"), "--torch-threads", "-1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2
    assert "--torch-threads must be >= 0" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "o").exists()
