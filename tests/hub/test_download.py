"""``offgen-download`` end to end against a loopback mirror, as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import offgen
from hub.archive_server import ArchiveServer
from hub.conftest import BUNDLE_100K, SCHEME1_COINRUN, SCHEME2_COINRUN
from offgen.data import Episode
from offgen.errors import ChecksumError, CorruptStoreError
from offgen.hub.download import download_dataset, verify_archives
from offgen.hub.http import RetryPolicy

BIN = Path(sys.executable).parent
FAST = RetryPolicy(attempts=2, backoff_s=0.0, timeout_s=20)


def _cli(*args: str, base: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "OFFGEN_BASE_URL": base, "OFFGEN_HTTP_BACKOFF": "0", **env}
    return subprocess.run(
        [str(BIN / "offgen-download"), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


def _assert_same_episodes(dataset: offgen.data.OffgenDataset, episodes: list[Episode]) -> None:
    assert len(dataset) == len(episodes)
    for i, original in enumerate(episodes):
        got = dataset.episode(i)
        np.testing.assert_array_equal(got.observations, original.observations)
        np.testing.assert_array_equal(got.actions, original.actions)
        np.testing.assert_array_equal(got.rewards, original.rewards)
        assert got.level_seed == original.level_seed


def test_cli_end_to_end_download_convert_load(
    mirror: ArchiveServer, short_episodes: list[Episode], _isolated_home: Path
) -> None:
    proc = _cli(
        "--dataset", "1M_E", "--games", "coinrun", "--clear-archives", base=mirror.url("DGRL")
    )
    assert proc.returncode == 0, proc.stderr
    assert "coinrun\tdownloaded" in proc.stdout
    root = _isolated_home / "datasets" / "expert_1M"
    lock = json.loads((root / "offgen.lock.json").read_text())
    entry = lock["archives"]["dgrl/coinrun.tar.xz"]
    assert entry["size"] == (mirror.root / SCHEME1_COINRUN).stat().st_size
    assert not (root / "archives" / "dgrl" / "coinrun.tar.xz").exists()  # cleared after verify
    assert not (root / ".unpacked" / "coinrun").exists()
    dataset = offgen.load("expert_1M", game="coinrun")
    _assert_same_episodes(dataset, short_episodes)
    assert dataset.info["dataset"] == "expert_1M"
    # A second run finds everything present and fetches nothing.
    before = sum(mirror.requests.values())
    again = _cli("-d", "expert_1M", "-g", "coinrun", "-q", base=mirror.url("DGRL"))
    assert again.returncode == 0 and "coinrun\tpresent" in again.stdout
    assert sum(mirror.requests.values()) == before


def test_404_on_first_scheme_uses_second(mirror: ArchiveServer, tmp_path: Path) -> None:
    mirror.faults.not_found.add("/" + SCHEME1_COINRUN)
    [result] = download_dataset(
        "expert_1M",
        ["coinrun"],
        output=tmp_path,
        base_url=mirror.url("DGRL"),
        policy=FAST,
        progress=False,
    )
    assert result.url == mirror.url(SCHEME2_COINRUN)
    lock = json.loads((tmp_path / "expert_1M" / "offgen.lock.json").read_text())
    assert list(lock["archives"]) == ["dgrl-procgen/coinrun.tar.xz"]


def test_interrupted_cli_run_resumes(
    mirror: ArchiveServer, short_episodes: list[Episode], tmp_path: Path
) -> None:
    path = "/" + SCHEME1_COINRUN
    size = (mirror.root / SCHEME1_COINRUN).stat().st_size
    mirror.faults.drop_after[path] = size // 2
    mirror.faults.not_found.add("/" + SCHEME2_COINRUN)
    out = str(tmp_path / "out")
    first = _cli(
        "-d",
        "expert_1M",
        "-g",
        "coinrun",
        "-o",
        out,
        "-q",
        base=mirror.url("DGRL"),
        OFFGEN_HTTP_RETRIES="1",
    )
    assert first.returncode == 2
    assert first.stderr.startswith("error: ") and "connection" in first.stderr
    assert "Traceback" not in first.stderr
    part = tmp_path / "out" / "expert_1M" / "archives" / "dgrl" / "coinrun.tar.xz.part"
    assert 0 < part.stat().st_size <= size // 2
    second = _cli("-d", "expert_1M", "-g", "coinrun", "-o", out, "-q", base=mirror.url("DGRL"))
    assert second.returncode == 0, second.stderr
    assert mirror.range_requests == [
        (path, f"bytes={part.stat().st_size if part.exists() else 0}-")
    ] or (len(mirror.range_requests) == 1 and mirror.range_requests[0][0] == path)
    _assert_same_episodes(offgen.load(tmp_path / "out" / "expert_1M" / "coinrun"), short_episodes)


def test_corrupted_byte_is_a_checksum_error_against_the_lockfile(
    mirror: ArchiveServer, tmp_path: Path
) -> None:
    kw = {"output": tmp_path, "base_url": mirror.url("DGRL"), "policy": FAST, "progress": False}
    download_dataset("expert_1M", ["coinrun"], clear_archives=True, **kw)  # type: ignore[arg-type]
    # Fetch again from scratch (store and archive gone): the mirror now flips one byte.
    import shutil

    shutil.rmtree(tmp_path / "expert_1M" / "coinrun")
    mirror.faults.corrupt_byte["/" + SCHEME1_COINRUN] = 1000
    with pytest.raises(ChecksumError) as info:
        download_dataset("expert_1M", ["coinrun"], **kw)  # type: ignore[arg-type]
    assert "coinrun.tar.xz" in str(info.value) and "offgen.lock.json" in str(info.value)
    assert not (tmp_path / "expert_1M" / "coinrun").exists()


def test_truncated_archive_is_refused_and_not_pinned(mirror: ArchiveServer, tmp_path: Path) -> None:
    file = mirror.root / SCHEME1_COINRUN
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(CorruptStoreError, match=r"coinrun\.tar\.xz"):
        download_dataset(
            "expert_1M",
            ["coinrun"],
            output=tmp_path,
            base_url=mirror.url("DGRL"),
            policy=FAST,
            progress=False,
        )
    lock = tmp_path / "expert_1M" / "offgen.lock.json"
    assert not lock.exists() or json.loads(lock.read_text())["archives"] == {}
    assert not (tmp_path / "expert_1M" / "coinrun" / "info.json").exists()


def test_bundle_archive_serves_two_games_legacy_format(
    mirror: ArchiveServer, short_episodes: list[Episode], tmp_path: Path
) -> None:
    results = download_dataset(
        "level_1_E",
        ["coinrun", "maze"],
        output=tmp_path,
        fmt="legacy",
        clear_archives=True,
        base_url=mirror.url("DGRL"),
        policy=FAST,
        progress=False,
        workers=2,
    )
    assert [r.status for r in results] == ["downloaded", "downloaded"]
    assert mirror.requests["/" + BUNDLE_100K] == 1  # one download served both games
    legacy = tmp_path / "level1_expert_100k" / "legacy"
    assert len(list((legacy / "coinrun").glob("*.npy"))) == 3
    assert len(list((legacy / "maze").glob("*.npz"))) == 2
    assert not (
        tmp_path / "level1_expert_100k" / "archives" / "dgrl" / "100k_procgen_dataset_1.tar"
    ).exists()
    # Unpacked bytes equal what was published.
    import tarfile

    with tarfile.open(mirror.root / BUNDLE_100K) as tar:
        member = tar.getmember(f"coinrun/{next((legacy / 'coinrun').glob('*.npy')).name}")
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
    assert (legacy / member.name).read_bytes() == data


def test_two_concurrent_downloads_share_one_fetch(mirror: ArchiveServer, tmp_path: Path) -> None:
    out = str(tmp_path / "shared")
    env = {**os.environ, "OFFGEN_BASE_URL": mirror.url("DGRL")}
    cmd = [str(BIN / "offgen-download"), "-d", "expert_1M", "-g", "coinrun", "-o", out, "-q"]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    statuses = sorted(o[0].split("\t")[1].split()[0] for o in outputs)
    assert statuses == ["downloaded", "present"]
    assert mirror.requests["/" + SCHEME1_COINRUN] == 1


def test_verify_archives_detects_a_changed_archive(mirror: ArchiveServer, tmp_path: Path) -> None:
    download_dataset(
        "expert_1M",
        ["coinrun"],
        output=tmp_path,
        base_url=mirror.url("DGRL"),
        policy=FAST,
        progress=False,
    )
    folder = tmp_path / "expert_1M"
    [archive] = verify_archives(folder)
    data = bytearray(archive.read_bytes())
    data[500] ^= 1
    archive.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"coinrun\.tar\.xz"):
        verify_archives(folder)
