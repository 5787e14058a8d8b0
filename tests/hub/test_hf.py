"""Push / pull / revision pinning / offline mode through ``huggingface_hub`` against a loopback hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import offgen
from hub.archive_server import ArchiveServer
from hub.hub_server import HubServer
from offgen.data import Episode, StoreWriter
from offgen.errors import DatasetNotFoundError
from offgen.paths import dataset_dir

BIN = Path(sys.executable).parent
REPO = "lab/procgen-offline"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        yield server


def _write_store(path: Path, episodes: list[Episode]) -> Path:
    with StoreWriter(path, game="coinrun", dataset="expert_1M", mode="overwrite") as writer:
        for ep in episodes:
            writer.write(ep)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "offgen"), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )


def test_push_then_load_from_hub_pinned_and_offline(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _write_store(dataset_dir("expert_1M", "coinrun"), short_episodes)
    pushed = _cli("push", "expert_1M", "--game", "coinrun", "--repo", REPO)
    assert pushed.returncode == 0, pushed.stderr
    repo = hub.repos[REPO]
    head = repo.commits[repo.refs["main"]]
    assert "expert_1M/coinrun/info.json" in head and "expert_1M/coinrun/manifest.json" in head
    assert head["README.md"].startswith(b"---\nlicense:")
    assert "images/coinrun_returns.png" in head
    assert hub.validated and hub.validated[-1]["task_categories"] == ["reinforcement-learning"]
    table_v1 = (local / "episodes.bin").read_bytes()

    # The local store goes away: load() now pulls from the hub and pins the commit.
    import shutil

    shutil.rmtree(local)
    monkeypatch.setenv("OFFGEN_HUB_REPO", REPO)
    monkeypatch.setenv("OFFGEN_SOURCES", "local,hub")
    ds = offgen.load("expert_1M", game="coinrun")
    assert len(ds) == len(short_episodes)
    np.testing.assert_array_equal(ds.episode(0).observations, short_episodes[0].observations)
    lock = json.loads((dataset_dir("expert_1M", "coinrun").parent / "offgen.lock.json").read_text())
    pinned = lock["hub"][f"{REPO}:expert_1M/coinrun"]["commit"]
    assert pinned == repo.refs["main"]

    # A new push moves main; loads stay on the pinned commit, byte-identical.
    _write_store(tmp_path / "v2", short_episodes[:1])
    assert _cli("push", str(tmp_path / "v2"), "--game", "coinrun", "--repo", REPO).returncode == 0
    assert repo.refs["main"] != pinned
    again = offgen.load("expert_1M", game="coinrun")
    assert len(again) == len(short_episodes)
    assert (Path(again.store.location) / "episodes.bin").read_bytes() == table_v1

    # Offline: the pinned snapshot is served from the hub cache without the server.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.requests.clear()
    assert len(offgen.load("expert_1M", game="coinrun")) == len(short_episodes)
    assert sum(hub.requests.values()) == 0
    with pytest.raises(DatasetNotFoundError, match="offline"):
        offgen.load("expert_1M", game="maze")


def test_pull_cli_revision_tag_and_allow_patterns(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path
) -> None:
    from huggingface_hub import HfApi

    _write_store(tmp_path / "v1", short_episodes)
    assert _cli("push", str(tmp_path / "v1"), "-g", "coinrun", "-r", REPO).returncode == 0
    HfApi(endpoint=hub.endpoint).create_tag(REPO, tag="v1", repo_type="dataset")
    _write_store(tmp_path / "v2", short_episodes[:2])
    assert _cli("push", str(tmp_path / "v2"), "-g", "coinrun", "-r", REPO).returncode == 0

    got = _cli("pull", "expert_1M", "--game", "coinrun", "--repo", REPO, "--revision", "v1")
    assert got.returncode == 0, got.stderr
    _name, commit, store = got.stdout.strip().split("\t")
    assert len(offgen.load(store)) == len(short_episodes)
    # Only the requested store was fetched (not the README or images).
    downloaded = [k for k in hub.requests if k.startswith("GET /datasets/")]
    assert downloaded and all("/expert_1M/coinrun/" in k for k in downloaded)
    latest = _cli("pull", "expert_1M", "-g", "coinrun", "-r", REPO, "--revision", "main")
    assert len(offgen.load(latest.stdout.strip().split("\t")[2])) == 2
    assert commit != latest.stdout.split("\t")[1]


def test_offline_mode_never_downloads_archives(
    monkeypatch: pytest.MonkeyPatch, mirror: ArchiveServer
) -> None:
    monkeypatch.setenv("OFFGEN_BASE_URL", mirror.url("DGRL"))
    monkeypatch.setenv("OFFGEN_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError, match=r"offline mode .* is on"):
        offgen.load("expert_1M", game="coinrun")
    assert sum(mirror.requests.values()) == 0


def test_load_downloads_missing_dataset_from_archives(
    monkeypatch: pytest.MonkeyPatch,
    mirror: ArchiveServer,
    short_episodes: list[Episode],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OFFGEN_BASE_URL", mirror.url("DGRL"))
    ds = offgen.load("1M_E", game="coinrun")
    assert len(ds) == len(short_episodes)
    err = capsys.readouterr().err
    size = (mirror.root / "DGRL/1M/expert/coinrun.tar.xz").stat().st_size
    assert "not on this machine; downloading" in err and f"{size / 1e6:.1f} MB" in err
