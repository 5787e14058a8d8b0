"""Fixtures for the research-tooling tests: isolated HOME and WandB directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

WANDB_DIR_VARS = ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR")


def isolated_env(root: Path) -> dict[str, str]:
    """Environment variables pointing HOME and every WandB directory into ``root``."""
    env = {"HOME": str(root / "home"), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    for var in WANDB_DIR_VARS:
        env[var] = str(root / var.lower())
    env["OFFGEN_TOOLS_CACHE"] = str(root / "offgen_tools_cache")
    env["MPLCONFIGDIR"] = str(root / "mpl")
    for value in env.values():
        if value.startswith("/"):
            Path(value).mkdir(parents=True, exist_ok=True)
    return env


@pytest.fixture(autouse=True)
def _isolate_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    root = tmp_path_factory.mktemp("home")
    for key, value in isolated_env(root).items():
        monkeypatch.setenv(key, value)
    yield


@pytest.fixture(scope="session")
def session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Session-wide isolated environment (restored afterwards)."""
    root = tmp_path_factory.mktemp("session_home")
    env = isolated_env(root)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def wandb_runs(tmp_path_factory: pytest.TempPathFactory, session_env: dict[str, str]) -> Path:
    """A folder with real WandB offline runs (``<root>/wandb/offline-run-*``), one of them crashed.

    Runs are made by ``make_wandb_runs.py`` in subprocesses with ``WANDB_MODE=offline`` and
    every WandB directory and HOME inside the temp dir. The crashed run's process group is
    killed with SIGKILL after its log file holds more than two 32 KiB blocks.
    """
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("wandb")
    root = tmp_path_factory.mktemp("wandb_runs")
    env = {**os.environ, **session_env, "WANDB_DIR": str(root)}
    script = str(HERE / "make_wandb_runs.py")
    subprocess.run([sys.executable, script, "normal"], env=env, cwd=root, check=True, timeout=300)
    before = set((root / "wandb").glob("offline-run-*"))
    proc = subprocess.Popen(
        [sys.executable, script, "crash"],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "LOGGED"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            new = [d for d in (root / "wandb").glob("offline-run-*") if d not in before]
            files = [f for d in new for f in d.glob("run-*.wandb")]
            if files and files[0].stat().st_size > 2 * 32768:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("crashing run never wrote its log")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return root


@pytest.fixture(scope="session")
def offgen_wandb_runs(
    tmp_path_factory: pytest.TempPathFactory, session_env: dict[str, str]
) -> Path:
    """Real WandB offline runs shaped like offgen's baselines (project ``offgen-baselines``)."""
    import subprocess
    import sys

    pytest.importorskip("wandb")
    root = tmp_path_factory.mktemp("offgen_wandb_runs")
    env = {**os.environ, **session_env, "WANDB_DIR": str(root)}
    script = str(HERE / "make_wandb_runs.py")
    subprocess.run([sys.executable, script, "offgen"], env=env, cwd=root, check=True, timeout=300)
    return root


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real single-node SLURM with accounting on localhost.

    Skipped (with the reason) only when this process is not root, the one case where the
    daemons cannot start. As root, any start failure (apt-get, munged, MariaDB, slurmdbd,
    slurmctld, slurmd, the srun/sacct probes) FAILS the tests, with the daemon logs.
    """
    from .slurm_cluster import SlurmCluster, is_root

    if not is_root():
        pytest.skip(
            "SLURM tests need root (they apt-get install and start munged, MariaDB, slurmdbd, "
            "slurmctld and slurmd); run pytest as root, as CI does"
        )
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Exception as exc:
        cluster.stop()
        pytest.fail(f"SLURM failed to start as root: {exc}", pytrace=False)
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
