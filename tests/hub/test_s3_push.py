"""``offgen push`` / ``offgen pull`` to a real S3-compatible bucket (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures.factories import EpisodeFactory, StoreFactory
from fixtures.s3_server import S3Server

import offgen
from offgen.errors import DatasetNotFoundError
from offgen.hub.objstore import pull_store_url, push_store_url
from offgen.paths import dataset_dir

BIN = Path(sys.executable).parent


def _cli(server: S3Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "offgen"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **server.env, **env},
        timeout=300,
    )


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _s3(server: S3Server) -> Any:
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options)


@pytest.mark.slow  # two CLI runs (a card with pictures and a preview): ~25 s on 2 busy cores
def test_push_load_in_place_pull_and_repush_nothing(
    s3_server: S3Server,
    s3_bucket: str,
    store_factory: StoreFactory,
    episode_factory: EpisodeFactory,
) -> None:
    episodes = episode_factory.mixed(3, 8)
    local = store_factory(dataset_dir("my_random", "coinrun"), episodes, dataset="my_random")
    files = _files(local)
    prefix = f"s3://{s3_bucket}/offgen"
    pushed = _cli(s3_server, "push", "my_random", "--game", "coinrun", "--repo", prefix)
    assert pushed.returncode == 0, pushed.stderr
    assert (
        f"pushed {len(files)} files" in pushed.stdout and f"{len(files)} uploaded" in pushed.stdout
    )
    fs = _s3(s3_server)
    assert fs.cat_file(f"{s3_bucket}/offgen/my_random/README.md").startswith(b"---\n")
    assert fs.exists(f"{s3_bucket}/offgen/my_random/images/coinrun_returns.png")

    # Read in place, chunk by chunk.
    remote = offgen.load(
        f"{prefix}/my_random/coinrun", game="coinrun", storage_options=s3_server.storage_options
    )
    np.testing.assert_array_equal(remote.episode(2).observations, episodes[2].observations)

    # Pulled back by name into $OFFGEN_HOME: byte-identical, then loadable by name.
    shutil.rmtree(local)
    pulled = _cli(s3_server, "pull", "my_random", "-g", "coinrun", "-r", prefix)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip().split("\t")[2] == str(local)
    assert _files(local) == files
    assert len(offgen.load("my_random", game="coinrun")) == len(episodes)

    # Nothing changed: nothing uploaded; pulling again is a no-op (the API, as the CLI calls it).
    options = s3_server.storage_options
    again = push_store_url(
        local, prefix, dataset="my_random", game="coinrun", storage_options=options
    )
    assert again.uploaded == 0 and again.files == len(files)
    same = pull_store_url(
        prefix, dataset="my_random", game="coinrun", dest=local, storage_options=options
    )
    assert same == local and _files(local) == files


def test_interrupted_push_is_no_store_and_resumes(
    s3_server: S3Server,
    s3_bucket: str,
    tmp_path: Path,
    store_factory: StoreFactory,
    episode_factory: EpisodeFactory,
) -> None:
    store = store_factory(
        tmp_path / "coinrun", episode_factory.mixed(4, 12), shard_frames=32, chunk_frames=16
    )
    files = _files(store)
    assert len(files) >= 8
    prefix, options = f"s3://{s3_bucket}/p", s3_server.storage_options

    def die_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt  # the process stopped mid-push

    with pytest.raises(KeyboardInterrupt):
        push_store_url(
            store, prefix, dataset="d", game="coinrun", storage_options=options,
            on_upload=die_after_three,
        )  # fmt: skip
    # Three data files are there, no headers: neither a load nor a pull takes it for a store.
    with pytest.raises(DatasetNotFoundError, match="no offgen store"):
        offgen.load(f"{prefix}/d/coinrun", storage_options=options)
    with pytest.raises(DatasetNotFoundError, match="no finished offgen store"):
        pull_store_url(
            prefix, dataset="d", game="coinrun", dest=tmp_path / "pulled", storage_options=options
        )

    resumed = push_store_url(store, prefix, dataset="d", game="coinrun", storage_options=options)
    assert resumed.uploaded == len(files) - 3  # the three already there were not sent again
    dest = pull_store_url(
        prefix, dataset="d", game="coinrun", dest=tmp_path / "pulled", storage_options=options
    )
    assert _files(dest) == files

    # A smaller store pushed over it replaces the folder exactly (stale shards removed).
    small = store_factory(
        tmp_path / "small", episode_factory.mixed(4, 2), shard_frames=32, chunk_frames=16
    )
    push_store_url(small, prefix, dataset="d", game="coinrun", storage_options=options)
    listed = _s3(s3_server).find(f"{s3_bucket}/p/d/coinrun/")
    assert sorted(p.split("/d/coinrun/", 1)[1] for p in listed) == sorted(_files(small))


def test_push_errors_are_one_line(
    s3_server: S3Server,
    s3_bucket: str,
    tmp_path: Path,
    store_factory: StoreFactory,
    episode_factory: EpisodeFactory,
) -> None:
    store = str(store_factory(tmp_path / "coinrun", episode_factory.mixed(5, 2)))
    missing = _cli(s3_server, "push", store, "-g", "coinrun", "-r", "s3://no-such-bucket/x")
    assert missing.returncode != 0
    assert missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr, missing.stderr
    refused = _cli(
        s3_server, "push", store, "-g", "coinrun", "-r", f"s3://{s3_bucket}/x",
        AWS_SECRET_ACCESS_KEY="wrong",
    )  # fmt: skip
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and "refused access" in refused.stderr, refused.stderr
