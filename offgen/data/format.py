"""The offgen store, format version 1: file names, ``info.json`` and the manifest.

One directory per (game, dataset)::

    <store>/
      info.json        format, status ("writing" | "complete"), game, Procgen options, specs,
                       codec, counts, provenance, mixture recipe
      policies.json    behaviour policies; the episode table's ``policy`` column indexes it
      episodes.bin     the episode table (see offgen.data.table), append-only, checksummed
      zarr.json        zarr v3 group holding the arrays below
      observations/    (frames, 64, 64, 3) uint8 HWC, chunks of 512 frames along time,
                       zstd level 3, sharded 16384 frames per file (~1.5k files at 25M)
      actions/         (steps,) uint8, chunks of 65536
      rewards/         (steps,) float32, chunks of 65536
      manifest.json    size and sha256 of every other file, written when the store is finished

``info.json`` is read and written as a typed :class:`offgen.data.info.StoreInfo`.

A store whose ``info.json`` says ``"status": "writing"`` is being written or its writer was killed;
readers refuse it unless asked for its committed episodes explicitly.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from offgen._io import atomic_write_json, sha256_file
from offgen.data._fields import Fields, corrupt, load_json
from offgen.errors import ChecksumError, CorruptStoreError

__all__ = [
    "ACTIONS",
    "CHUNK_FRAMES",
    "CHUNK_STEPS",
    "EPISODES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "INFO",
    "MANIFEST",
    "OBSERVATIONS",
    "POLICIES",
    "REWARDS",
    "SHARD_FRAMES",
    "build_manifest",
    "check_manifest_entry",
    "now_iso",
    "parse_manifest",
    "verify_manifest",
    "write_manifest",
]

FORMAT_NAME = "offgen-store"
FORMAT_VERSION = 1

INFO = "info.json"
POLICIES = "policies.json"
EPISODES = "episodes.bin"
MANIFEST = "manifest.json"
OBSERVATIONS = "observations"
ACTIONS = "actions"
REWARDS = "rewards"

CHUNK_FRAMES = 512
SHARD_FRAMES = 16384
CHUNK_STEPS = 65536
ZSTD_LEVEL = 3


def now_iso() -> str:
    """Current UTC time as ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _store_files(root: Path) -> list[str]:
    files = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if rel in (MANIFEST, INFO) or name.startswith(".") or name.endswith(".partial"):
                continue
            files.append(rel.replace(os.sep, "/"))
    return sorted(files)


def write_manifest(root: Path) -> str:
    """Write the manifest of the store at ``root`` atomically; return its own sha256 (which
    ``info.json`` records, so the manifest is covered too)."""
    atomic_write_json(root / MANIFEST, build_manifest(root))
    return sha256_file(root / MANIFEST)


def build_manifest(root: Path) -> dict[str, Any]:
    """Size and sha256 of every data file of the store (``info.json`` is checked by parsing)."""
    entries = {}
    for rel in _store_files(root):
        path = root / rel
        entries[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "files": entries}


_FIX_MANIFEST = (
    "the manifest is damaged; re-download or restore the store (a store you wrote: resume its "
    "writer with --resume to rebuild the manifest)"
)
_REQUIRED_FILES = (EPISODES, POLICIES, "zarr.json")


def parse_manifest(data: bytes, source: str) -> dict[str, dict[str, Any]]:
    """The ``files`` table of a manifest's bytes (``source`` names it in errors).

    Each entry is ``{"size": bytes, "sha256": hex digest}``; the store's metadata files must be
    listed.

    Raises:
        CorruptStoreError: If the manifest does not match this schema.
    """
    manifest = Fields(load_json(data, source, _FIX_MANIFEST), source, fix=_FIX_MANIFEST)
    if manifest.raw.get("format") != FORMAT_NAME:
        corrupt(source, f"format is {manifest.raw.get('format')!r}, not {FORMAT_NAME!r}",
                _FIX_MANIFEST)  # fmt: skip
    table = manifest.obj("files")
    files: dict[str, dict[str, Any]] = {}
    for rel in table.raw:
        entry = table.obj(rel)
        digest = entry.text("sha256")
        if len(digest) != 64 or digest.strip("0123456789abcdef"):
            corrupt(source, f"files.{rel}.sha256 is not a sha256 hex digest", _FIX_MANIFEST)
        files[rel] = {"size": entry.integer("size", minimum=0), "sha256": digest}
    missing = [rel for rel in _REQUIRED_FILES if rel not in files]
    if missing:
        corrupt(source, f"does not list the store's metadata files {missing}", _FIX_MANIFEST)
    return files


def check_manifest_entry(
    source: str, entry: Mapping[str, Any], size: int, sha256: str | None
) -> None:
    """Compare one file's size (and sha256 unless ``None``) with its manifest entry.

    Raises:
        ChecksumError: On a difference, naming ``source``.
    """
    if size != entry["size"]:
        raise ChecksumError(
            f"{source}: size {size} bytes, manifest says {entry['size']}; the file is "
            "truncated or was modified. Re-download or restore the store."
        )
    if sha256 is not None and sha256 != entry["sha256"]:
        raise ChecksumError(
            f"{source}: sha256 mismatch with the manifest; the file is corrupt. "
            "Re-download or restore the store."
        )


def verify_manifest(root: Path, *, check_hashes: bool = True) -> list[str]:
    """Check every file of a finished store against its manifest.

    Returns:
        The relative paths checked.

    Raises:
        CorruptStoreError: If the manifest is missing or unreadable, or a file is missing.
        ChecksumError: If a file's size or sha256 differs, or an unlisted data file exists.
    """
    path = root / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CorruptStoreError(
            f"{path}: manifest missing; the store was not finished. Resume its writer or rerun "
            "the conversion."
        ) from exc
    files = parse_manifest(data, str(path))
    for rel, entry in files.items():
        file = root / rel
        if not file.is_file():
            raise CorruptStoreError(f"{file}: listed in the manifest but missing")
        digest = sha256_file(file) if check_hashes else None
        check_manifest_entry(str(file), entry, file.stat().st_size, digest)
    extra = sorted(set(_store_files(root)) - set(files))
    if extra:
        raise ChecksumError(f"{root}: files not in the manifest: {extra[:5]}")
    return sorted(files)
