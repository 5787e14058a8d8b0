"""One writer per store: a second writer is refused (naming the holder) or waits; a killed
holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import offgen
from offgen.data.convert import convert_legacy
from offgen.data.legacy import write_npz_episode
from offgen.data.lock import StoreLock
from offgen.data.writer import StoreWriter
from offgen.errors import StoreLockedError

from .conftest import smooth_episode

OFFGEN = str(Path(sys.executable).with_name("offgen"))


def _source(root: Path, count: int = 6, seed: int = 11) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(count):
        write_npz_episode(root, smooth_episode(rng, int(rng.integers(20, 50))), i)
    return root


def test_second_writer_in_another_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """`offgen convert --resume` while a conversion is running: refused, the running one wins."""
    src = _source(tmp_path / "src")
    store = tmp_path / "store"
    seen: list[subprocess.CompletedProcess[str]] = []

    def second_writer(count: int) -> None:
        if count == 2:  # the first conversion holds the store and has committed nothing final yet
            seen.append(
                subprocess.run(
                    [OFFGEN, "convert", str(src), str(store), "--game", "coinrun", "--resume"],
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
            )

    result = convert_legacy(src, store, game="coinrun", progress=False, on_episode=second_writer)
    (refused,) = seen
    assert refused.returncode != 0
    message = refused.stderr + refused.stdout
    assert "another offgen process is writing this store" in message
    assert f"pid {os.getpid()} on {socket.gethostname()}" in message
    assert "--wait-for-lock" in message and "Traceback" not in message
    assert result.episodes == 6
    dataset = offgen.load(store)
    assert len(dataset) == 6  # every episode once: the refused writer wrote nothing
    dataset.store.verify()


def test_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with (
        StoreWriter(tmp_path / "store", game="coinrun"),
        pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"),
    ):
        StoreWriter(tmp_path / "store", game="coinrun", mode="append")
    with StoreWriter(tmp_path / "store", game="coinrun", mode="append") as writer:  # released
        assert writer.num_episodes == 0


def test_a_waiting_writer_continues_when_the_holder_is_done(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    store = tmp_path / "store"
    lock = StoreLock(store)
    lock.acquire()
    waiter = subprocess.Popen(
        [OFFGEN, "convert", str(src), str(store), "--game", "coinrun", "--wait-for-lock"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert waiter.stderr is not None
    waiting = waiter.stderr.readline()  # blocks until the waiter reports that it waits
    assert "waiting for the writer of" in waiting and f"pid {os.getpid()}" in waiting
    lock.release()
    _out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err
    assert len(offgen.load(store)) == 6


_HOLD = """
import sys
from offgen.data.writer import StoreWriter
writer = StoreWriter(sys.argv[1], game="coinrun", env_options={"distribution_mode": "easy"})
print("holding", flush=True)
sys.stdin.read()
"""


def test_the_lock_of_a_killed_writer_is_taken_over(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    store = tmp_path / "store"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(store)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
        convert_legacy(src, store, game="coinrun", mode="append", progress=False)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    notes: list[str] = []
    with StoreLock(store, log=notes.append):
        pass
    assert any("stale" in n and f"pid {holder.pid}" in n for n in notes)
    result = convert_legacy(src, store, game="coinrun", mode="append", progress=False)
    assert result.episodes == 6 and len(offgen.load(store)) == 6


def test_merge_and_rollouts_also_take_the_lock(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    convert_legacy(src, tmp_path / "a", game="coinrun", progress=False)
    from offgen.collect import merge_stores

    with StoreLock(tmp_path / "merged"), pytest.raises(StoreLockedError):
        merge_stores([tmp_path / "a"], tmp_path / "merged", progress=False)
    assert not (tmp_path / "merged").exists()
    thread_error: list[BaseException] = []

    def other_thread() -> None:
        try:
            StoreWriter(tmp_path / "a", game="coinrun", mode="append")
        except BaseException as exc:
            thread_error.append(exc)

    with StoreWriter(tmp_path / "a", game="coinrun", mode="append"):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert len(thread_error) == 1 and isinstance(thread_error[0], StoreLockedError)
