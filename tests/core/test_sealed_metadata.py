"""Every metadata file a reader trusts is covered: ``info.json`` by its own checksum, the manifest
by the sha256 ``info.json`` records, policies and zarr metadata by the manifest. An edit is caught by
``offgen verify`` and, cheaply, by every open (``offgen.load``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import offgen
from offgen.cli import app
from offgen.data import OffgenStore, StoreWriter
from offgen.data.format import INFO, MANIFEST, OBSERVATIONS, POLICIES
from offgen.errors import ChecksumError, CorruptStoreError

from .conftest import build_store


@pytest.fixture
def legacy_like(tmp_path: Path, small_episodes) -> Path:  # type: ignore[no-untyped-def]
    """A finished store like a converted one: row T is the next level's first frame."""
    path = tmp_path / "store"
    with StoreWriter(
        path,
        game="coinrun",
        final_frame_is_true=False,
        env_options={"distribution_mode": "easy", "start_level": 0, "num_levels": 200},
        shard_frames=256,
        chunk_frames=64,
    ) as writer:
        for episode in small_episodes[:4]:
            writer.write(episode)
    return path


def _edit_json(rel: str, edit: Callable[[Any], None]) -> Callable[[Path], str]:
    def damage(store: Path) -> str:
        value = json.loads((store / rel).read_bytes())
        edit(value)
        (store / rel).write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
        return rel

    return damage


def _flip_key(store: Path) -> str:
    """The campaign's one flipped bit: "final_frame" -> "ginal_frame"."""
    data = (store / INFO).read_bytes()
    assert data.count(b'"final_frame"') == 1
    (store / INFO).write_bytes(data.replace(b'"final_frame"', b'"ginal_frame"'))
    return INFO


EDITS = {
    "final-frame-key-bit-flip": _flip_key,
    "final-frame-value": _edit_json(INFO, lambda i: i["observation"].update(final_frame="true")),
    "game": _edit_json(INFO, lambda i: i.update(game="maze")),
    "distribution-mode": _edit_json(INFO, lambda i: i["env"].update(distribution_mode="hard")),
    "num-levels": _edit_json(INFO, lambda i: i["env"].update(num_levels=0)),
    "seal-removed": _edit_json(INFO, lambda i: i.pop("info_sha256")),
    "policy-renamed": _edit_json(POLICIES, lambda p: p[0].update(id="expert")),
    "zarr-fill-value": _edit_json(f"{OBSERVATIONS}/zarr.json", lambda m: m.update(fill_value=7)),
    "manifest-entry": _edit_json(
        MANIFEST, lambda m: m["files"]["episodes.bin"].update(sha256="0" * 64)
    ),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_metadata_edits_are_caught_by_verify_and_load(legacy_like: Path, case: str) -> None:
    rel = EDITS[case](legacy_like)
    for args in (["verify", str(legacy_like)], ["verify", str(legacy_like), "--quick"]):
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, CorruptStoreError), (args, result.output)
        assert rel in str(result.exception) and "\n" not in str(result.exception)
    with pytest.raises(CorruptStoreError, match=rel.replace(".", r"\.")) as err:
        offgen.load(legacy_like)
    assert "estore" in str(err.value) or "e-download" in str(err.value)


def test_an_intact_store_is_sealed_and_verifies(legacy_like: Path) -> None:
    store = OffgenStore(legacy_like)
    assert store.sealed and not store.final_frame_is_true
    assert POLICIES in store.verify()
    result = CliRunner().invoke(app, ["verify", str(legacy_like)])
    assert result.exit_code == 0 and "note:" not in result.output
    assert "info.json and the manifest against their checksums" in result.output


def test_a_store_being_written_is_sealed_too(tmp_path: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "store"
    writer = StoreWriter(path, game="coinrun")
    writer.write(small_episodes[0])
    writer.close(finalize=False)
    assert OffgenStore(path, allow_incomplete=True).sealed
    _edit_json(INFO, lambda i: i.update(game="maze"))(path)
    with pytest.raises(ChecksumError, match=r"info\.json: content does not match its checksum"):
        OffgenStore(path, allow_incomplete=True)


def _unseal(store: Path) -> None:
    """Make the store look written by offgen before sealing: no checksum keys at all."""
    info = json.loads((store / INFO).read_bytes())
    del info["info_sha256"], info["manifest_sha256"]
    (store / INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def test_a_store_written_before_sealing_opens_and_verifies_with_a_note(
    tmp_path: Path,
    small_episodes,  # type: ignore[no-untyped-def]
) -> None:
    path = build_store(tmp_path / "old", small_episodes[:3])
    _unseal(path)
    store = OffgenStore(path)
    assert not store.sealed and len(store.table) == 3
    assert POLICIES in store.verify()
    result = CliRunner().invoke(app, ["verify", str(path)])
    assert result.exit_code == 0, result.output
    assert "against their checksums" not in result.output
    assert "note:" in result.output and "checked against its schema only" in result.output
    # Its data files stay covered by the manifest; its info.json only by the schema.
    (path / POLICIES).write_text('[{"id": "expert"}]')
    with pytest.raises(ChecksumError, match=r"policies\.json"):
        OffgenStore(path).verify()
    # Resuming its writer seals it.
    with StoreWriter(path, game="coinrun", mode="append"):
        pass
    assert OffgenStore(path).sealed
