"""A real single-node SLURM with accounting on localhost for tests (REFERENCE.md section 6).

Installs the Debian packages when missing, then starts, all under one temp dir:

* munged (as user munge, the system instance in ``/run/munge``, reused when already running);
* a private MariaDB server (its own data dir, socket and TCP port on 127.0.0.1, as root);
* slurmdbd (``accounting_storage/mysql``), so ``sacct`` reports job states: submitit reads
  them to notice a job that died without a result (``UncompletedJobError`` instead of a hang);
* slurmctld and slurmd (as root) with a private ``slurm.conf`` (clients and slurmdbd find it
  and ``slurmdbd.conf`` through ``SLURM_CONF``);

waits until an ``srun true`` probe passes and ``sacct`` answers, and stops every daemon it
started by the pid in its pid file. Every port is a free one chosen at start.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["munge", "slurmctld", "slurmd", "slurm-client", "slurmdbd", "mariadb-server"]
BINARIES = ("slurmctld", "slurmd", "slurmdbd", "munged", "srun", "sacct", "mariadbd")
DB_USER, DB_PASS, DB_NAME = "slurm", "offgen-test", "slurm_acct_db"


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be started here because this process is not root (the reason is the message)."""


class SlurmStartError(RuntimeError):
    """Starting SLURM failed although it should work here (root); the message has the daemon logs."""


def _run(cmd: list[str], timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload, no-any-return]


def is_root() -> bool:
    """Whether this process can start the daemons (and apt-get install them)."""
    return os.geteuid() == 0


def install() -> None:
    """Install the SLURM, slurmdbd, MariaDB and munge packages with apt-get when missing.

    Raises:
        SlurmUnavailable: Not root.
        SlurmStartError: apt-get failed.
    """
    if all(shutil.which(b) for b in BINARIES):
        return
    if not is_root():
        raise SlurmUnavailable("not root: cannot apt-get install SLURM")
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = not policy.exists()
    if created_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
        proc = _run(cmd, timeout=600, env=env)
        if proc.returncode != 0:
            _run(["apt-get", "update", "-q"], timeout=300, env=env)
            proc = _run(cmd, timeout=600, env=env)
        if proc.returncode != 0:
            raise SlurmStartError(f"apt-get install failed: {proc.stderr.strip()[-2000:]}")
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _gone(pid: int) -> bool:
    """Whether the process has exited (reaping it when it is our child, e.g. mariadbd)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    return False


def _stop(pid_file: Path, timeout: float = 10) -> None:
    pid = _alive(pid_file)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _gone(pid)


@dataclass
class SlurmCluster:
    """A running single-node cluster with accounting.

    Attributes:
        root: Directory with slurm.conf, slurmdbd.conf, state, spool, database, logs and pid files.
        conf: The slurm.conf path (export as ``SLURM_CONF``).
        started: Pid files of the daemons this object started (stopped by :meth:`stop`).
    """

    root: Path
    conf: Path = field(init=False)
    started: list[Path] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    stop_times: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conf = self.root / "slurm.conf"

    def env(self) -> dict[str, str]:
        """Environment for SLURM clients (and slurmdbd, which finds slurmdbd.conf next to it)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def logs(self, tail: int = 3000) -> str:
        """The last ``tail`` characters of every daemon log, for error messages."""
        parts = []
        for path in sorted(self.root.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"----- {path.name} (last {tail} chars) -----\n{text[-tail:]}")
        return "\n".join(parts) or f"(no daemon logs under {self.root})"

    def _fail(self, what: str, detail: str = "") -> SlurmStartError:
        return SlurmStartError(
            f"{what}{': ' + detail.strip() if detail.strip() else ''}\n{self.logs()}"
        )

    def start(self) -> None:
        """Start munged, MariaDB, slurmdbd, slurmctld and slurmd; wait for ``srun`` and ``sacct``.

        Raises:
            SlurmUnavailable: Not root (nothing is started).
            SlurmStartError: Anything else failed (with the daemon logs).
        """
        if not is_root():
            raise SlurmUnavailable("not root: cannot run munged/mariadbd/slurmdbd/slurmctld/slurmd")
        install()
        self.root.mkdir(parents=True, exist_ok=True)
        self.ports = {k: free_port() for k in ("mysql", "dbd", "ctld", "slurmd")}
        self._munge()
        self._write_conf()
        self._mariadb()
        self._slurmdbd()
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        proc = _run(["slurmctld", "-f", str(self.conf)], env=self.env())
        if proc.returncode != 0:
            raise self._fail("slurmctld failed", proc.stderr)
        self.started.append(self.root / "slurmctld.pid")
        proc = _run(["slurmd", "-f", str(self.conf), "-N", "localhost"], env=self.env())
        if proc.returncode != 0:
            raise self._fail("slurmd failed", proc.stderr)
        self.started.append(self.root / "slurmd.pid")
        deadline = time.monotonic() + 60
        probe = None
        while time.monotonic() < deadline:
            probe = _run(["srun", "-N1", "-t", "1", "true"], timeout=30, env=self.env())
            if probe.returncode == 0:
                break
            time.sleep(0.5)
        else:
            raise self._fail("srun probe never passed", probe.stderr if probe else "")
        # The controller sends job records to slurmdbd asynchronously: wait until sacct has one.
        sacct = ["sacct", "-n", "-X", "-a", "-o", "JobID,State", "--parsable2"]
        deadline = time.monotonic() + 30
        while True:
            acct = _run(sacct, timeout=20, env=self.env())
            if acct.returncode == 0 and "COMPLETED" in acct.stdout:
                return
            if time.monotonic() > deadline:
                raise self._fail("sacct never reported the probe job", acct.stdout + acct.stderr)
            time.sleep(0.2)

    def _munge(self) -> None:
        run_dir = Path("/run/munge")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "munge", "munge")
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            key.write_bytes(os.urandom(1024))
        shutil.chown(key, "munge", "munge")
        key.chmod(0o600)
        pid_file = run_dir / "munged.pid"
        if _alive(pid_file) is not None:
            return
        proc = _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"])
        if proc.returncode != 0:
            raise self._fail("munged failed", proc.stderr)
        self.started.append(pid_file)

    def _mariadb(self) -> None:
        """A private MariaDB server for slurmdbd (own data dir, socket and port)."""
        d = self.root
        datadir, sock = d / "mysql", d / "mysql.sock"
        proc = _run(
            [
                "mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root",
                "--skip-test-db", "--auth-root-authentication-method=socket",
            ],
            timeout=120,
        )  # fmt: skip
        if proc.returncode != 0:
            raise self._fail("mariadb-install-db failed", proc.stdout[-1500:] + proc.stderr)
        pid_file = d / "mysqld.pid"
        subprocess.Popen(
            [
                "mariadbd", "--no-defaults", f"--datadir={datadir}", "--user=root",
                f"--socket={sock}", f"--pid-file={pid_file}", "--bind-address=127.0.0.1",
                f"--port={self.ports['mysql']}", f"--log-error={d / 'mysqld.log'}",
                "--skip-name-resolve", "--innodb-buffer-pool-size=32M",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        self.started.append(pid_file)
        client = ["mariadb", "--no-defaults", f"--socket={sock}", "-u", "root"]
        deadline = time.monotonic() + 60
        while _run([*client, "-e", "SELECT 1"], timeout=10).returncode != 0:
            if time.monotonic() > deadline:
                raise self._fail("mariadbd never accepted connections")
            time.sleep(0.1)
        sql = (
            f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASS}'; "
            f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';"
        )
        proc = _run([*client, "-e", sql], timeout=30)
        if proc.returncode != 0:
            raise self._fail("creating the slurm database user failed", proc.stderr)

    def _slurmdbd(self) -> None:
        d = self.root
        dbd_conf = d / "slurmdbd.conf"
        dbd_conf.write_text(
            f"""AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.ports["dbd"]}
SlurmUser=root
PidFile={d}/slurmdbd.pid
LogFile={d}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports["mysql"]}
StorageUser={DB_USER}
StoragePass={DB_PASS}
StorageLoc={DB_NAME}
"""
        )
        dbd_conf.chmod(0o600)  # owned by root, the Slurm user
        proc = _run(["slurmdbd"], env=self.env())
        if proc.returncode != 0:
            raise self._fail("slurmdbd failed", proc.stderr)
        self.started.append(d / "slurmdbd.pid")
        # slurmctld registers the cluster itself, but only if slurmdbd already answers.
        deadline = time.monotonic() + 60
        while True:
            ping = _run(["sacctmgr", "-n", "-P", "list", "cluster"], timeout=20, env=self.env())
            if ping.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise self._fail("slurmdbd never answered sacctmgr", ping.stderr)
            time.sleep(0.2)

    def _write_conf(self) -> None:
        probe = _run(["slurmd", "-C"]).stdout
        hw = dict(re.findall(r"(\w+)=(\S+)", probe.splitlines()[0] if probe else ""))
        memory = max(256, int(hw.get("RealMemory", "2048")) - 1024)
        d = self.root
        p = self.ports
        self.conf.write_text(
            f"""ClusterName=offgen
SlurmctldHost=localhost
SlurmctldPort={p["ctld"]}
SlurmdPort={p["slurmd"]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
KillWait=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={p["dbd"]}
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 Boards={hw.get("Boards", 1)} SocketsPerBoard={hw.get("SocketsPerBoard", 1)} CoresPerSocket={hw.get("CoresPerSocket", 1)} ThreadsPerCore={hw.get("ThreadsPerCore", 1)} RealMemory={memory}
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        )

    def stop(self) -> None:
        """Stop the daemons this object started (slurmd, slurmctld, slurmdbd, MariaDB, munged)."""
        for pid_file in reversed(self.started):
            t = time.perf_counter()
            _stop(pid_file)
            self.stop_times[pid_file.name] = time.perf_counter() - t
        self.started.clear()
