"""Two ``offgen-collect`` runs on one output: the second is refused naming the first; once the
first is killed (SIGKILL), its lock is stale and the next run takes it over."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from offgen.data import OffgenStore

CLI = str(Path(sys.executable).with_name("offgen-collect"))


def _args(out: Path, steps: int) -> list[str]:
    return [CLI, "--game", "coinrun", "--policy", "random", "--num_env_steps", str(steps),
            "--num_processes", "2", "--seed", "4", "--output", str(out), "--no-progress"]  # fmt: skip


def _wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    # Polling, not a timing assertion: the first run has started writing once this file exists.
    while not path.exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)


def test_second_collector_is_refused_and_a_killed_ones_lock_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "data"
    first = subprocess.Popen(
        _args(out, 50_000_000), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(tmp_path / ".data.lock.json", first)
        second = subprocess.run(_args(out, 300), capture_output=True, text=True, timeout=300)
        assert second.returncode != 0
        assert "another offgen process is writing this store" in second.stderr
        assert f"pid {first.pid} on {socket.gethostname()}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the refused run did not disturb the running one
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    third = subprocess.run(
        [*_args(out, 300), "--overwrite"], capture_output=True, text=True, timeout=300
    )
    assert third.returncode == 0, third.stderr
    assert "stale" in third.stderr and f"pid {first.pid}" in third.stderr
    store = OffgenStore(out)
    assert store.info.counts.transitions == 300
    store.verify()
    assert not (tmp_path / ".data.lock.json").exists()  # released at the end
