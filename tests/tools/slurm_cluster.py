"""A real single-node SLURM on localhost for tests (REFERENCE.md section 6).

Installs the Debian packages when missing, starts munged (as user munge), slurmctld and slurmd
(as root) with a private ``slurm.conf`` under a temp dir (clients find it through
``SLURM_CONF``), waits until an ``srun true`` probe passes, and stops every daemon it started
by the pid in its pid file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["munge", "slurmctld", "slurmd", "slurm-client", "slurmdbd", "mariadb-server"]


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be started here (the reason is the message)."""


def _run(cmd: list[str], timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload, no-any-return]


def install() -> None:
    """Install the SLURM and munge packages with apt-get when they are missing."""
    if shutil.which("slurmctld") and shutil.which("munged") and shutil.which("srun"):
        return
    if os.geteuid() != 0:
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
            raise SlurmUnavailable(f"apt-get install failed: {proc.stderr.strip()[-500:]}")
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _stop(pid_file: Path, timeout: float = 10) -> None:
    pid = _alive(pid_file)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


@dataclass
class SlurmCluster:
    """A running single-node cluster.

    Attributes:
        root: Directory with slurm.conf, state, spool, logs and pid files.
        conf: The slurm.conf path (export as ``SLURM_CONF``).
        started: Pid files of the daemons this object started (stopped by :meth:`stop`).
    """

    root: Path
    conf: Path = field(init=False)
    started: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conf = self.root / "slurm.conf"

    def env(self) -> dict[str, str]:
        """Environment for SLURM clients."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> None:
        """Start munged, slurmctld and slurmd and wait for an ``srun true`` probe."""
        if os.geteuid() != 0:
            raise SlurmUnavailable("not root: cannot run slurmctld/slurmd/munged")
        install()
        self._munge()
        self._write_conf()
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        ctld_pid = self.root / "slurmctld.pid"
        proc = _run(["slurmctld", "-f", str(self.conf)], env=self.env())
        if proc.returncode != 0:
            raise SlurmUnavailable(f"slurmctld failed: {proc.stderr}")
        self.started.append(ctld_pid)
        proc = _run(["slurmd", "-f", str(self.conf), "-N", "localhost"], env=self.env())
        if proc.returncode != 0:
            raise SlurmUnavailable(f"slurmd failed: {proc.stderr}")
        self.started.append(self.root / "slurmd.pid")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            probe = _run(["srun", "-N1", "-t", "1", "true"], timeout=30, env=self.env())
            if probe.returncode == 0:
                return
            time.sleep(0.5)
        logs = "".join(p.read_text()[-1500:] for p in self.root.glob("*.log"))
        raise SlurmUnavailable(f"srun probe never passed: {probe.stderr}\n{logs}")

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
            raise SlurmUnavailable(f"munged failed: {proc.stderr}")
        self.started.append(pid_file)

    def _write_conf(self) -> None:
        probe = _run(["slurmd", "-C"]).stdout
        hw = dict(re.findall(r"(\w+)=(\S+)", probe.splitlines()[0] if probe else ""))
        memory = max(256, int(hw.get("RealMemory", "2048")) - 1024)
        d = self.root
        self.conf.write_text(
            f"""ClusterName=offgen
SlurmctldHost=localhost
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
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=localhost NodeAddr=127.0.0.1 Boards={hw.get("Boards", 1)} SocketsPerBoard={hw.get("SocketsPerBoard", 1)} CoresPerSocket={hw.get("CoresPerSocket", 1)} ThreadsPerCore={hw.get("ThreadsPerCore", 1)} RealMemory={memory}
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        )

    def stop(self) -> None:
        """Stop the daemons this object started (slurmd, slurmctld, then munged)."""
        for pid_file in reversed(self.started):
            _stop(pid_file)
        self.started.clear()
