"""``offgen-download`` end to end against a loopback mirror, as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from fixtures.factories import BUNDLE_100K, SCHEME1_COINRUN, SCHEME2_COINRUN, LegacyFactory

import offgen
from hub.archive_server import ArchiveServer
from offgen.data import Episode
from offgen.errors import ChecksumError, CorruptStoreError, DownloadError
from offgen.hub.download import download_dataset, verify_archives
from offgen.hub.http import RetryPolicy

BIN = Path(sys.executable).parent
FAST = RetryPolicy(attempts=2, backoff_s=0.0, timeout_s=20)


def _cli(
    *args: str, base: str | None = None, prog: str = "offgen-download", **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a console script beside the interpreter, as a user types it (``base``: via the env)."""
    full_env = {**os.environ, "OFFGEN_HTTP_BACKOFF": "0", **env}
    full_env.pop("OFFGEN_BASE_URL", None)
    if base is not None:
        full_env["OFFGEN_BASE_URL"] = base
    return subprocess.run(
        [str(BIN / prog), *args], capture_output=True, text=True, env=full_env, timeout=300
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
    assert dataset.info.dataset == "expert_1M"
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
    logs: list[str] = []
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
        log=logs.append,
    )
    assert [r.status for r in results] == ["downloaded", "downloaded"]
    assert mirror.requests["/" + BUNDLE_100K] == 1  # one download served both games
    legacy = tmp_path / "level1_expert_100k" / "legacy"
    assert len(list((legacy / "coinrun").glob("*.npy"))) == 3
    assert len(list((legacy / "maze").glob("*.npz"))) == 2
    # The registry says the bundle holds all 16 games; 14 were never unpacked, so it is kept.
    bundle = tmp_path / "level1_expert_100k" / "archives" / "dgrl" / "100k_procgen_dataset_1.tar"
    assert bundle.is_file()
    [kept] = [m for m in logs if m.startswith("kept ")]
    assert str(bundle) in kept and "14 are not unpacked" in kept and "bigfish" in kept
    assert "coinrun" not in kept
    # Unpacked bytes equal what was published.
    with tarfile.open(mirror.root / BUNDLE_100K) as tar:
        member = tar.getmember(f"coinrun/{next((legacy / 'coinrun').glob('*.npy')).name}")
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
    assert (legacy / member.name).read_bytes() == data


def test_cli_clear_archives_keeps_a_bundle_until_every_game_is_present(
    mirror: ArchiveServer,
    short_episodes: list[Episode],
    tmp_path: Path,
    legacy_factory: LegacyFactory,
) -> None:
    """A 100k bundle (one .tar, 16 games) survives --clear-archives for a subset of games, is
    reused by a later run for the others (no second download), and deleted once all are there."""
    from offgen.registry import GAMES

    rel = "DGRL/100k_procgen_dataset_40.tar"
    files: dict[str, list[Path]] = {}
    with tarfile.open(mirror.root / rel, "w") as tar:
        for i, game in enumerate(GAMES):
            eps = [short_episodes[i % len(short_episodes)]]
            files[game] = legacy_factory.files(eps, tmp_path / "src" / game, ext="npz", start=i)
            for f in files[game]:
                tar.add(f, arcname=f"{game}/{f.name}")
    out = tmp_path / "out"
    base = mirror.url("DGRL")
    args = ["-d", "level_40_E", "-o", str(out), "--format", "legacy", "--clear-archives", "-q"]
    first = _cli(*args, "-g", "coinrun,maze", "--workers", "2", base=base)
    assert first.returncode == 0, first.stderr
    bundle = out / "level40_expert_100k" / "archives" / "dgrl" / "100k_procgen_dataset_40.tar"
    assert bundle.is_file()
    assert f"kept {bundle}" in first.stderr and "14 are not unpacked" in first.stderr
    second = _cli(*args, base=base)  # every game
    assert second.returncode == 0, second.stderr
    status = dict(line.split("\t")[:2] for line in second.stdout.splitlines())
    assert status.pop("coinrun") == status.pop("maze") == "present"
    assert all(s.startswith("downloaded") for s in status.values()) and len(status) == 14
    assert mirror.requests["/" + rel] == 1  # the kept bundle served the other 14 games
    assert not bundle.exists() and f"deleted {bundle}" in second.stderr
    for game, sources in files.items():
        [got] = (out / "level40_expert_100k" / "legacy" / game).glob("*.npz")
        assert got.read_bytes() == sources[0].read_bytes()


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


def test_cli_verify_checks_kept_archives_against_the_lockfile(
    mirror: ArchiveServer, _isolated_home: Path
) -> None:
    proc = _cli("-d", "expert_1M", "-g", "coinrun", "-q", base=mirror.url("DGRL"))
    assert proc.returncode == 0, proc.stderr
    root = _isolated_home / "datasets" / "expert_1M"
    archive = root / "archives" / "dgrl" / "coinrun.tar.xz"
    ok = _cli("verify", "expert_1M", "--game", "coinrun", prog="offgen")
    assert ok.returncode == 0, ok.stderr
    assert "coinrun.tar.xz" in ok.stdout and "offgen.lock.json" in ok.stdout
    # One flipped byte in the kept archive: the store itself is fine, the archive is not.
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    bad = _cli("verify", "expert_1M", "--game", "coinrun", prog="offgen")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    assert str(archive) in bad.stderr and "sha256" in bad.stderr
    assert str(root / "offgen.lock.json") in bad.stderr and "download again" in bad.stderr
    # --quick compares sizes only: a truncated archive is caught without hashing.
    archive.write_bytes(bytes(data[:-10]))
    quick = _cli("verify", "expert_1M", "-g", "coinrun", "--quick", prog="offgen")
    assert quick.returncode == 2 and str(archive) in quick.stderr and "size" in quick.stderr
    # An archive never recorded (not from a verified download) is reported too, by name.
    archive.unlink()
    stray = root / "archives" / "dgrl-procgen" / "coinrun.tar.xz"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not an archive")
    never = _cli("verify", "expert_1M", "-g", "coinrun", prog="offgen")
    assert never.returncode == 2 and str(stray) in never.stderr
    assert "never verified" in never.stderr and "Delete it" in never.stderr
    stray.unlink()
    assert _cli("verify", "expert_1M", "-g", "coinrun", prog="offgen").returncode == 0


def test_overall_progress_counts_each_file_once_and_resumed_bytes(
    mirror: ArchiveServer, tmp_path: Path
) -> None:
    path = "/" + SCHEME1_COINRUN
    size = (mirror.root / SCHEME1_COINRUN).stat().st_size
    mirror.faults.not_found.add("/" + SCHEME2_COINRUN)
    kw = {"output": tmp_path, "base_url": mirror.url("DGRL"), "progress": False}
    # A connection dropped half-way and resumed in the same run: the total stays the file's size.
    mirror.faults.drop_after[path] = size // 2
    seen: list[tuple[int, int]] = []
    download_dataset(
        "expert_1M", ["coinrun"], policy=FAST, on_progress=lambda *a: seen.append(a), **kw
    )  # type: ignore[arg-type]
    assert mirror.range_requests, "the second attempt should have resumed with Range"
    assert max(total for _, total in seen) == size
    assert seen[-1] == (size, size)
    assert all(0 <= done <= total for done, total in seen if total)
    # A run that stops half-way, then a new run: the bytes already on disk count as done.
    import shutil

    shutil.rmtree(tmp_path / "expert_1M")
    mirror.faults.drop_after[path] = size // 3
    once = RetryPolicy(attempts=1, backoff_s=0.0, timeout_s=20)
    with pytest.raises(DownloadError):
        download_dataset("expert_1M", ["coinrun"], policy=once, **kw)  # type: ignore[arg-type]
    part = tmp_path / "expert_1M" / "archives" / "dgrl" / "coinrun.tar.xz.part"
    have = part.stat().st_size
    assert 0 < have < size
    seen.clear()
    download_dataset(
        "expert_1M", ["coinrun"], policy=once, on_progress=lambda *a: seen.append(a), **kw
    )  # type: ignore[arg-type]
    assert seen[0] == (have, 0)  # credited before the first new byte arrives
    assert max(total for _, total in seen) == size
    assert seen[-1] == (size, size)


def test_cli_npz_archives_download_convert_load_and_legacy_format(
    mirror: ArchiveServer,
    bigfish_openings: list[Episode],
    maze_openings: list[Episode],
    tmp_path: Path,
    _isolated_home: Path,
    legacy_factory: LegacyFactory,
) -> None:
    """Per-game .tar.xz archives of .npz episode files (as the collector wrote them), fetched by
    offgen-download with two workers, converted, loaded with offgen.load; then --format legacy."""
    sources = {"bigfish": bigfish_openings, "maze": maze_openings}
    published: dict[str, list[Path]] = {}
    for game, eps in sources.items():
        out = mirror.root / "DGRL" / "1M" / "suboptimal" / f"{game}.tar.xz"
        legacy_factory.archive(eps, game, out, work=tmp_path / "work", ext="npz")
        published[game] = sorted((tmp_path / "work" / game).glob("*.npz"))
    base = mirror.url("DGRL")
    proc = _cli(
        "--dataset", "mixed_1M", "--games", "bigfish,maze", "--base-url", base, "--workers", "2"
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["bigfish", "maze"]
    assert all(line.split("\t")[1].startswith("downloaded") for line in lines)
    for game, eps in sources.items():
        dataset = offgen.load("mixed_1M", game=game)
        _assert_same_episodes(dataset, eps)
        assert dataset.info.dataset == "mixed_1M" and dataset.info.game == game
    lock = json.loads((_isolated_home / "datasets" / "mixed_1M" / "offgen.lock.json").read_text())
    assert sorted(lock["archives"]) == ["dgrl/bigfish.tar.xz", "dgrl/maze.tar.xz"]
    # --format legacy keeps the predecessor's files, byte for byte, from the kept archive.
    before = sum(mirror.requests.values())
    legacy = _cli("-d", "1M_S", "-g", "maze", "--format", "legacy", "--base-url", base, "-q")
    assert legacy.returncode == 0, legacy.stderr
    folder = _isolated_home / "datasets" / "mixed_1M" / "legacy" / "maze"
    assert legacy.stdout.split("\t")[1].startswith("downloaded")
    assert legacy.stdout.rstrip().endswith(str(folder))
    assert sum(mirror.requests.values()) == before  # served by the archive kept from the first run
    assert sorted(p.name for p in folder.glob("*.npz")) == [p.name for p in published["maze"]]
    for src in published["maze"]:
        assert (folder / src.name).read_bytes() == src.read_bytes()
    again = _cli("-d", "1M_S", "-g", "maze", "--format", "legacy", "--base-url", base, "-q")
    assert again.returncode == 0 and "maze\tpresent" in again.stdout


def test_cli_damaged_episode_file_in_archive_is_one_line_naming_it(
    mirror: ArchiveServer,
    short_episodes: list[Episode],
    tmp_path: Path,
    legacy_factory: LegacyFactory,
) -> None:
    """Issue 12 item 4: a damaged .npy inside an intact archive ended in a traceback."""
    files = legacy_factory.files(short_episodes, tmp_path / "work" / "coinrun")
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (), "  # the dict never closes
    files[1].write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    with tarfile.open(mirror.root / SCHEME1_COINRUN, "w:xz") as tar:
        for f in files:
            tar.add(f, arcname=f"coinrun/{f.name}")
    proc = _cli("-d", "1M_E", "-g", "coinrun", "-q", base=mirror.url("DGRL"))
    last = proc.stderr.rstrip("\n").split("\n")[-1]
    assert proc.returncode == 2 and last.startswith("error: ") and files[1].name in last
    assert "Traceback" not in proc.stderr


def test_cli_refuses_another_games_frames_unless_forced(
    mirror: ArchiveServer,
    short_episodes: list[Episode],
    tmp_path: Path,
    _isolated_home: Path,
    legacy_factory: LegacyFactory,
) -> None:
    """Issue 12 item 6 on the download path: a mirror's maze archive holding coinrun frames is
    refused in one line naming the archive (no store looks complete); --force converts it."""
    out = mirror.root / "DGRL" / "1M" / "suboptimal" / "maze.tar.xz"
    legacy_factory.archive(short_episodes, "maze", out, work=tmp_path / "work")
    args = ("-d", "1M_S", "-g", "maze", "-q", "--base-url", mirror.url("DGRL"))
    refused = _cli(*args)
    last = refused.stderr.rstrip("\n").split("\n")[-1]
    assert refused.returncode == 2 and last.startswith("error: ") and "Traceback" not in last
    assert "maze.tar.xz" in last and "look like coinrun, not maze" in last and "--force" in last
    store = _isolated_home / "datasets" / "mixed_1M" / "maze"
    assert not store.exists() or json.loads((store / "info.json").read_text())["status"] != (
        "complete"
    )
    forced = _cli(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    dataset = offgen.load("mixed_1M", game="maze")
    _assert_same_episodes(dataset, short_episodes)
