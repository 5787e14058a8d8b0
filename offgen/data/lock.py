"""One writer per store: an exclusive lock held for a writer's whole life.

Every store writer (:class:`~offgen.data.StoreWriter`, hence collect, convert, merge, download and
the rollout recorder) takes the lock before it looks at the store and keeps it until it closes. A
second writer is refused at once with a :class:`~offgen.errors.StoreLockedError` naming the holder
(pid, host, start time and command), or waits for it when asked to (``wait=True``, CLI
``--wait-for-lock``).

The lock is an OS file lock (:mod:`filelock`, as downloads use) on ``.<store>.lock`` beside the
store, so deleting or replacing the store directory never drops it. The kernel releases it when
its process dies, however it dies: a lock left by a killed writer is never in the way. Beside it,
``.<store>.lock.json`` names the holder; a record whose process is gone (same host, pid not
running) is stale and is replaced by the next writer.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from offgen._io import atomic_write_json
from offgen.data.format import now_iso
from offgen.errors import StoreLockedError

__all__ = ["LockHolder", "StoreLock"]


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a store's write lock.

    Attributes:
        pid: Process id.
        host: Host name.
        started: When the lock was taken (ISO 8601, UTC).
        command: The holder's command line.
    """

    pid: int
    host: str
    started: str
    command: str

    @classmethod
    def me(cls) -> LockHolder:
        """This process."""
        return cls(os.getpid(), socket.gethostname(), now_iso(), " ".join(sys.argv)[:300])

    @property
    def alive(self) -> bool | None:
        """Whether the process still runs (``None``: on another host, cannot tell)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's live process
            return True
        return True

    def describe(self) -> str:
        """One line naming the holder."""
        return f"pid {self.pid} on {self.host}, since {self.started}: {self.command}"


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _read_holder(path: Path) -> LockHolder | None:
    try:
        data = json.loads(path.read_bytes())
        return LockHolder(
            int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no record, or one torn by a crash: nothing to name


class StoreLock:
    """The exclusive write lock of one store.

    Args:
        store: The store directory (it need not exist yet; its parent is created).
        wait: Wait for the holder to finish instead of failing at once.
        log: Receives a line when waiting starts and when a stale holder record is replaced
            (default: printed to stderr).

    Example:
        >>> with StoreLock("data/coinrun"):  # doctest: +SKIP
        ...     ...  # nothing else writes data/coinrun here
    """

    def __init__(
        self,
        store: str | os.PathLike[str],
        *,
        wait: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.store = Path(store)
        where = self.store.absolute()
        self.lock_file = where.with_name(f".{where.name}.lock")
        self.holder_file = where.with_name(f".{where.name}.lock.json")
        self._wait = wait
        self._log = log or _to_stderr
        self._lock = FileLock(str(self.lock_file))
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._held

    def acquire(self) -> None:
        """Take the lock (waiting if asked to).

        Raises:
            StoreLockedError: If another writer holds it and ``wait`` is false.
        """
        if self._held:
            return
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = _read_holder(self.holder_file)
            who = holder.describe() if holder is not None else "holder not recorded"
            if not self._wait:
                raise StoreLockedError(
                    f"{self.store}: another offgen process is writing this store ({who}). Wait "
                    "for it to finish, or pass --wait-for-lock (wait_for_lock=True) to wait."
                ) from None
            self._log(f"waiting for the writer of {self.store} to finish ({who})")
            self._lock.acquire()
        self._held = True
        previous = _read_holder(self.holder_file)
        if previous is not None and previous.alive is not True:
            self._log(
                f"{self.store}: replacing the stale lock record of a writer that is gone "
                f"({previous.describe()})"
            )
        try:
            atomic_write_json(self.holder_file, asdict(LockHolder.me()))
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Drop the lock (and the holder record); a no-op if not held."""
        if not self._held:
            return
        self._held = False
        try:
            with contextlib.suppress(OSError):
                self.holder_file.unlink()
        finally:
            self._lock.release()

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
