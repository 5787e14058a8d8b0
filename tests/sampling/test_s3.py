"""A store in a real S3-compatible bucket (SeaweedFS on 127.0.0.1) opens and samples by URL,
reading only the chunks a read needs, with one-line errors for the usual misconfigurations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures.assertions import Reference
from fixtures.factories import DatasetFactory, EpisodeFactory
from fixtures.s3_server import S3Server

import offgen
from offgen.data.dataset import OffgenDataset
from offgen.errors import AccessDeniedError, DatasetNotFoundError, MissingDependencyError


def upload(server: S3Server, local: Path, url: str) -> None:
    """Copy a store folder file by file to ``url`` (what ``offgen push`` does, minus its checks)."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options)
    files = [p for p in sorted(local.rglob("*")) if p.is_file() and not p.name.startswith(".")]
    remote = [f"{url.removeprefix('s3://')}/{p.relative_to(local).as_posix()}" for p in files]
    fs.put([str(p) for p in files], remote)  # concurrent uploads


@pytest.fixture
def s3_store(
    s3_server: S3Server,
    s3_bucket: str,
    tmp_path: Path,
    dataset_factory: DatasetFactory,
    episode_factory: EpisodeFactory,
) -> tuple[str, OffgenDataset]:
    local = dataset_factory(tmp_path / "coinrun", episode_factory.mixed(5, 24))
    url = f"s3://{s3_bucket}/stores/coinrun"
    upload(s3_server, Path(local.store.location), url)
    return url, local


def _obs_bytes(local: OffgenDataset) -> int:
    root = Path(local.store.location) / "observations"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_load_s3_url_samples_like_the_local_store(
    s3_server: S3Server, s3_store: tuple[str, OffgenDataset]
) -> None:
    url, local = s3_store
    ds = offgen.load(url, game="coinrun", storage_options=s3_server.storage_options)
    assert len(ds) == len(local) and ds.num_transitions == local.num_transitions
    ref = Reference(local)
    stream = ds.transitions(64, strategy="stream", unit_frames=32, seed=1, progress=False)
    for _ in range(3):
        ref.check_transitions(next(stream))
    ref.check_transitions(next(ds.transitions(64, strategy="ram", progress=False)))
    ref.check_windows(next(ds.windows(5, 16, strategy="stream", unit_frames=32)), 5, "left")


def test_reads_fetch_only_the_chunks_needed(
    s3_server: S3Server, s3_store: tuple[str, OffgenDataset], s3_bucket: str
) -> None:
    url, local = s3_store
    frames = _obs_bytes(local)
    root = Path(local.store.location)
    metadata = sum(
        p.stat().st_size for p in root.rglob("*") if p.is_file() and "/c/" not in p.as_posix()
    )
    before = s3_server.sent_bytes(s3_bucket)
    ds = OffgenDataset.open(url, storage_options=s3_server.storage_options)
    opened = s3_server.sent_bytes(s3_bucket)
    assert 0 < opened - before <= metadata  # info, table, policies, zarr metadata: no frames

    # One episode of 24: its chunks and the shard indexes, a small part of the frames.
    longest = max(range(len(local)), key=lambda i: local.episode(i).length)
    episode = ds.episode(longest)
    read = s3_server.sent_bytes(s3_bucket) - opened
    assert episode.observations.nbytes <= read < frames / 4, (read, frames)

    # A stream sampler with a pool of ~2 units reads those units, not the store.
    mark = s3_server.sent_bytes(s3_bucket)
    stream = ds.transitions(
        32, strategy="stream", unit_frames=32, pool_bytes=64 * 64 * 64 * 3, progress=False
    )
    Reference(local).check_transitions(next(stream))
    assert 0 < s3_server.sent_bytes(s3_bucket) - mark < frames / 2
    assert s3_server.requests(s3_bucket)["GET"] > 0


def test_missing_bucket_is_one_line(s3_server: S3Server) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"bucket 'no-such-bucket' does not exist"):
        offgen.load("s3://no-such-bucket/coinrun", storage_options=s3_server.storage_options)


def test_bad_credentials_are_one_line(
    s3_server: S3Server, s3_store: tuple[str, OffgenDataset]
) -> None:
    url, _ = s3_store
    wrong: dict[str, Any] = {**s3_server.storage_options, "secret": "not-the-secret"}
    with pytest.raises(AccessDeniedError, match="AWS_SECRET_ACCESS_KEY"):
        offgen.load(url, storage_options=wrong)
    # The CLI prints it as one line and fails (credentials from the environment).
    env = {**os.environ, **s3_server.env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "offgen"), "info", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "refused access" in done.stderr, done.stderr


def test_missing_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'offgen\[s3\]'"):
        offgen.load("s3://bucket/coinrun", storage_options={"anon": True})
