"""Progress bars as a user sees them: live on a terminal, one line per step in a log."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from conftest import random_episode

from core.conftest import build_store

# Decodes the store's frames (a progress bar), then samples one batch.
SCRIPT = """
import sys
from offgen.data import OffgenDataset
ds = OffgenDataset.open(sys.argv[1])
batch = next(ds.transitions(8, strategy="ram"))
print(len(batch))
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return build_store(tmp_path / "store", [random_episode(rng, 30) for _ in range(4)])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OFFGEN_PROGRESS"}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def _run_piped(store: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    # Bytes, decoded without newline translation, so a bar's carriage returns stay visible.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(store)],
        capture_output=True,
        env=_env(**extra),
        timeout=300,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def test_piped_stderr_gets_one_line_per_step(store: Path) -> None:
    result = _run_piped(store)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "8"
    assert "\r" not in result.stderr  # no live-bar redraws in a log
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("decoding frames: 100% 124/124 [")


def test_progress_env_turns_bars_off_or_on(store: Path) -> None:
    quiet = _run_piped(store, OFFGEN_PROGRESS="off")
    assert quiet.returncode == 0 and quiet.stderr == ""
    bars = _run_piped(store, OFFGEN_PROGRESS="bars")  # live bars even into a pipe, as asked
    assert bars.returncode == 0 and "\r" in bars.stderr and "decoding frames" in bars.stderr
    bad = _run_piped(store, OFFGEN_PROGRESS="loud")
    assert bad.returncode != 0
    assert "OFFGEN_PROGRESS='loud' is not a progress mode; use one of auto, bars" in bad.stderr


def test_terminal_stderr_gets_a_live_bar(store: Path) -> None:
    main, child = pty.openpty()
    # A real terminal has a size; tqdm draws nothing on a 0-column one.
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(store)],
        stdout=subprocess.DEVNULL,
        stderr=child,
        env=_env(),
    )
    os.close(child)  # the child holds the terminal now; reading ends when it exits
    chunks = []
    try:
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(main)
        assert proc.wait(timeout=300) == 0
    shown = b"".join(chunks).decode()
    assert "decoding frames" in shown and "\r" in shown  # redrawn in place
