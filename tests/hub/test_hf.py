"""Push / pull / revision pinning / offline mode through ``huggingface_hub`` against a loopback hub."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
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
from offgen.errors import DatasetNotFoundError, UnknownNameError
from offgen.paths import dataset_dir, offgen_home

BIN = Path(sys.executable).parent
REPO = "lab/procgen-offline"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        yield server


def _write_store(
    path: Path,
    episodes: list[Episode],
    *,
    game: str = "coinrun",
    dataset: str = "expert_1M",
    **codec: int,
) -> Path:
    # Shaped like a published dataset converted (legacy policy id, next-level final frames), so
    # it may be pushed under a registered name (a random-policy store may not: see below).
    with StoreWriter(
        path,
        game=game,
        dataset=dataset,
        mode="overwrite",
        final_frame_is_true=False,
        **codec,  # type: ignore[arg-type]
    ) as writer:
        for ep in episodes:
            writer.write(
                dataclasses.replace(
                    ep, game=game, policy_id=f"legacy:{dataset}", final_frame_is_true=False
                )
            )
    return path


def _store_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


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


def test_source_order_is_a_preference_and_unlisted_sources_are_never_used(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_store(tmp_path / "published", short_episodes)
    assert _cli("push", str(tmp_path / "published"), "-g", "coinrun", "-r", REPO).returncode == 0
    _write_store(dataset_dir("expert_1M", "coinrun"), short_episodes[:1])  # a different local copy
    monkeypatch.setenv("OFFGEN_HUB_REPO", REPO)

    monkeypatch.setenv("OFFGEN_SOURCES", "local,hub")
    assert len(offgen.load("expert_1M", game="coinrun")) == 1
    monkeypatch.setenv("OFFGEN_SOURCES", "hub,local")
    assert len(offgen.load("expert_1M", game="coinrun")) == len(short_episodes) > 1

    # Without "local" the local store is not a fallback: a failing hub is the error.
    monkeypatch.setenv("OFFGEN_SOURCES", "hub")
    monkeypatch.setenv("OFFGEN_HUB_REPO", "lab/no-such-repo")
    with pytest.raises(DatasetNotFoundError, match="hub lab/no-such-repo") as err:
        offgen.load("expert_1M", game="coinrun")
    assert "local:" not in str(err.value)


def test_pull_cli_revision_tag_and_allow_patterns(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path
) -> None:
    from huggingface_hub import HfApi

    _write_store(tmp_path / "v1", short_episodes)
    assert _cli("push", str(tmp_path / "v1"), "-g", "coinrun", "-r", REPO).returncode == 0
    HfApi(endpoint=hub.endpoint).create_tag(REPO, tag="v1", repo_type="dataset")
    _write_store(tmp_path / "v2", short_episodes[:2])
    assert _cli("push", str(tmp_path / "v2"), "-g", "coinrun", "-r", REPO).returncode == 0

    hub.requests.clear()  # pushes read card_stats.json; count the pull's requests only
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


PREFIX = "expert_1M/coinrun/"


def _pushed(hub: HubServer, since: int = 0) -> list[str]:
    """Store files whose bytes reached the hub in commit requests (from the server's log)."""
    return [p[len(PREFIX) :] for p in hub.uploaded[since:] if p.startswith(PREFIX)]


def _committed(hub: HubServer) -> set[str]:
    return {p[len(PREFIX) :] for _s, added in hub.commits for p in added if p.startswith(PREFIX)}


def test_push_resumes_after_refused_commit_and_pull_is_byte_identical(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small shards and commits of at most 2 files: the store needs several commits.
    local = _write_store(
        dataset_dir("expert_1M", "coinrun"), short_episodes, shard_frames=32, chunk_frames=16
    )
    files = _store_files(local)
    assert len(files) >= 8
    monkeypatch.setenv("OFFGEN_PUSH_COMMIT_FILES", "2")
    hub.fail_commits = {3}  # the hub refuses the third commit request (once)

    first = _cli("push", "expert_1M", "--game", "coinrun", "--repo", REPO)
    assert first.returncode != 0 and "Run the push again to resume" in first.stderr
    done = _committed(hub)
    assert len(done) == 4  # two commits of two files went through
    head = hub.repos[REPO].commits[hub.repos[REPO].refs["main"]]
    # The half-pushed folder has no info.json / manifest.json: never mistaken for a store.
    assert not any(p in head for p in (PREFIX + "info.json", PREFIX + "manifest.json"))
    assert "README.md" not in head  # the card comes after the store

    mark = len(hub.uploaded)
    second = _cli("push", "expert_1M", "--game", "coinrun", "--repo", REPO)
    assert second.returncode == 0, second.stderr
    again = _pushed(hub, mark)
    assert not set(again) & done, "files committed by the first push were uploaded again"
    assert done | set(again) == set(files)
    assert len(again) == len(set(again)) == len(files) - len(done)
    assert f"{len(files) - len(done)} uploaded" in second.stdout

    # Pull gives byte-identical files, nothing more.
    pulled = _cli("pull", "expert_1M", "-g", "coinrun", "-r", REPO, "--revision", "main")
    assert pulled.returncode == 0, pulled.stderr
    assert _store_files(Path(pulled.stdout.strip().split("\t")[2])) == files

    # Nothing changed: a third push uploads no store file and makes no store commit.
    mark, commits = len(hub.uploaded), len(hub.commits)
    third = _cli("push", "expert_1M", "--game", "coinrun", "--repo", REPO)
    assert third.returncode == 0, third.stderr
    assert _pushed(hub, mark) == [] and len(hub.commits) == commits + 1  # the card only


def test_push_killed_mid_way_resumes_without_reuploading(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _write_store(tmp_path / "store", short_episodes, shard_frames=32, chunk_frames=16)
    files = _store_files(store)
    monkeypatch.setenv("OFFGEN_PUSH_COMMIT_FILES", "1")
    proc = subprocess.Popen(
        [str(BIN / "offgen"), "push", str(store), "-g", "coinrun", "-r", REPO],
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # SIGKILL right after the first commit is reported
        if line.startswith("committed "):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    done = _committed(hub)
    assert 0 < len(done) < len(files)

    mark = len(hub.uploaded)
    resumed = _cli("push", str(store), "-g", "coinrun", "-r", REPO)
    assert resumed.returncode == 0, resumed.stderr
    again = _pushed(hub, mark)
    assert not set(again) & done and done | set(again) == set(files)
    head = hub.repos[REPO].commits[hub.repos[REPO].refs["main"]]
    assert {p[len(PREFIX) :]: d for p, d in head.items() if p.startswith(PREFIX)} == files


def test_repush_replaces_folder_exactly(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = _write_store(tmp_path / "big", short_episodes, shard_frames=32, chunk_frames=16)
    assert _cli("push", str(big), "-g", "coinrun", "-r", REPO).returncode == 0
    monkeypatch.setenv("OFFGEN_PUSH_COMMIT_FILES", "2")
    small = _write_store(tmp_path / "small", short_episodes[:1], shard_frames=32, chunk_frames=16)
    mark = len(hub.uploaded)
    assert _cli("push", str(small), "-g", "coinrun", "-r", REPO).returncode == 0
    head = hub.repos[REPO].commits[hub.repos[REPO].refs["main"]]
    remote = {p[len(PREFIX) :]: d for p, d in head.items() if p.startswith(PREFIX)}
    assert remote == _store_files(small)  # stale files of the big store are gone
    unchanged = {p for p, d in _store_files(big).items() if _store_files(small).get(p) == d}
    assert unchanged and not set(_pushed(hub, mark)) & unchanged


def test_card_keeps_every_pushed_game(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path
) -> None:
    coinrun = _write_store(tmp_path / "coinrun", short_episodes, game="coinrun")
    maze = _write_store(tmp_path / "maze", short_episodes[:2], game="maze")
    assert _cli("push", str(coinrun), "-g", "coinrun", "-r", REPO).returncode == 0
    pushed = _cli("push", str(maze), "-g", "maze", "-r", REPO)
    assert pushed.returncode == 0, pushed.stderr

    head = hub.repos[REPO].commits[hub.repos[REPO].refs["main"]]
    card = head["README.md"].decode()
    assert "- config_name: coinrun" in card and "path: expert_1M/coinrun/**" in card
    assert "- config_name: maze" in card and "path: expert_1M/maze/**" in card
    rows = [line for line in card.splitlines() if line.startswith(("| coinrun |", "| maze |"))]
    assert [r.split(" | ")[1] for r in rows] == [str(len(short_episodes)), "2"]
    assert "### coinrun" in card and "### maze" in card
    assert {"images/coinrun_returns.png", "images/maze_returns.png"} <= set(head)
    stats = json.loads(head["card_stats.json"])
    assert sorted(stats) == ["coinrun", "maze"] and stats["maze"]["episodes"] == 2
    assert hub.validated[-1]["configs"][1]["config_name"] == "maze"


def test_pushed_repo_has_a_parquet_preview_the_card_declares(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path
) -> None:
    import io

    import pyarrow.parquet as pq

    store = _write_store(tmp_path / "coinrun", short_episodes)
    pushed = _cli("push", str(store), "-g", "coinrun", "-r", REPO)
    assert pushed.returncode == 0, pushed.stderr
    head = hub.repos[REPO].commits[hub.repos[REPO].refs["main"]]
    preview = "preview/expert_1M/coinrun.parquet"
    assert preview in head
    assert {f"images/coinrun_{k}.png" for k in ("returns", "lengths", "levels", "frames")} <= set(
        head
    )
    table = pq.read_table(io.BytesIO(head[preview]))
    assert table.num_rows == len(short_episodes)
    rows = table.to_pylist()
    assert [r["length"] for r in rows] == [ep.length for ep in short_episodes]
    assert [r["level_seed"] for r in rows] == [ep.level_seed for ep in short_episodes]
    assert {r["policy"] for r in rows} == {"legacy:expert_1M"}
    for row in rows:
        assert row["thumbnail"]["bytes"][:8] == b"\x89PNG\r\n\x1a\n"
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["thumbnail"] == {"_type": "Image"}
    # The card's YAML header declares the preview, as the viewer's default config.
    configs = hub.validated[-1]["configs"]
    assert {"config_name": "coinrun-preview", "default": True,
            "data_files": [{"split": "train", "path": preview}]} in configs  # fmt: skip
    # The zarr store stays the data: pulled and loaded as before.
    assert "expert_1M/coinrun/manifest.json" in head


def test_push_refuses_a_store_that_contradicts_the_name_unless_forced(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path
) -> None:
    store = tmp_path / "random"
    with StoreWriter(store, game="coinrun", dataset="expert_1M") as writer:
        for ep in short_episodes:  # random policy, true final frames
            writer.write(ep)
    refused = _cli("push", str(store), "-g", "coinrun", "-r", REPO)
    assert (
        refused.returncode != 0 and "cannot be the registered dataset expert_1M" in refused.stderr
    )
    assert REPO not in hub.repos or not hub.repos[REPO].refs  # nothing was uploaded
    forced = _cli("push", str(store), "-g", "coinrun", "-r", REPO, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "warning: coinrun is carded as expert_1M with --force" in forced.stderr
    head = hub.repos[REPO].commits[hub.repos[REPO].refs["main"]]
    card = head["README.md"].decode()
    assert "[!WARNING]" in card and "offgen-label-forced" in card


def test_own_dataset_pushed_by_name_then_loaded_by_hub_name_pinned(
    hub: HubServer, short_episodes: list[Episode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi

    hub_repo = "my-lab/offgen-procgen"
    own = _write_store(dataset_dir("my_random", "coinrun"), short_episodes, dataset="my_random")
    pushed = _cli("push", "my_random", "--game", "coinrun", "--repo", hub_repo)
    assert pushed.returncode == 0, pushed.stderr
    repo = hub.repos[hub_repo]
    head = repo.commits[repo.refs["main"]]
    assert "my_random/coinrun/info.json" in head
    assert b'offgen.load("my_random", game="coinrun")' in head["README.md"]
    HfApi(endpoint=hub.endpoint).create_tag(hub_repo, tag="v1", repo_type="dataset")
    v1 = repo.refs["main"]
    smaller = _write_store(tmp_path / "v2", short_episodes[:2], dataset="my_random")
    moved = _cli("push", "my_random", "-g", "coinrun", "-r", hub_repo, "--store", str(smaller))
    assert moved.returncode == 0, moved.stderr

    import shutil

    shutil.rmtree(own.parent)  # only the hub has it now
    ds = offgen.load("hf://my-lab/offgen-procgen", game="coinrun", revision="v1")
    assert len(ds) == len(short_episodes)
    np.testing.assert_array_equal(ds.episode(0).observations, short_episodes[0].observations)
    lock = json.loads((offgen_home() / "hub" / hub_repo / "offgen.lock.json").read_text())
    assert lock["hub"][f"{hub_repo}:my_random/coinrun"]["commit"] == v1
    # Without a revision the pinned commit is read, not the moved main.
    assert len(offgen.load("hf://my-lab/offgen-procgen", game="coinrun")) == len(short_episodes)
    assert (
        len(offgen.load("hf://my-lab/offgen-procgen/my_random", game="coinrun", revision="main"))
        == 2
    )

    # Offline: the pinned snapshot comes from the hub cache, no request reaches the hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.requests.clear()
    assert len(offgen.load("hf://my-lab/offgen-procgen", game="coinrun")) == 2
    assert sum(hub.requests.values()) == 0
    monkeypatch.delenv("HF_HUB_OFFLINE")

    # A namespaced dataset beside it: the bare repository name is now ambiguous for coinrun.
    _write_store(dataset_dir("my-lab/coinrun-random", "coinrun"), short_episodes[:1])
    assert _cli("push", "my-lab/coinrun-random", "-g", "coinrun", "-r", hub_repo).returncode == 0
    named = "hf://my-lab/offgen-procgen/my-lab/coinrun-random"
    assert len(offgen.load(named, game="coinrun", revision="main")) == 1
    with pytest.raises(UnknownNameError, match=r"several datasets .*my-lab/coinrun-random"):
        offgen.load("hf://my-lab/offgen-procgen", game="coinrun", revision="main")
    info = _cli("info", named, "--game", "coinrun", "--no-card")
    assert info.returncode == 0, info.stderr
    assert "episodes      1" in info.stdout
