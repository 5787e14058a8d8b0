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
