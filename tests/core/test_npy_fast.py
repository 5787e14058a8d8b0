"""The zero-copy ``.npy`` pickle walker agrees with the restricted unpickler, or steps aside."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import offgen.data.legacy as legacy
import offgen.data.legacy.npy as legacy_npy
from offgen.data.legacy.npy_walk import read_pickled_npy
from offgen.errors import UnsafeFileError


def _arrays(rng: np.random.Generator) -> dict[str, Any]:
    steps = 7
    return {
        "observations": rng.integers(0, 256, (steps + 1, 3, 64, 64)).astype(np.float32),
        "actions": rng.integers(0, 15, (steps, 1)).astype(np.int64),
        "rewards": rng.random((steps, 1), dtype=np.float32),
        "dones": np.eye(1, steps, steps - 1, dtype=np.float32)[0],
        "big_endian": np.arange(5, dtype=">i4"),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
        "empty": np.zeros((0, 3), dtype=np.uint8),
        "flags": np.array([True, False]),
    }


def _write(path: Path, payload: Any, protocol: int | None = None) -> Path:
    if protocol is None:  # exactly what np.save writes (what the published files are)
        np.save(path, np.array(payload, dtype=object), allow_pickle=True)
        return path
    header = io.BytesIO()  # magic and header, as np.save writes them
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|O", "fortran_order": False, "shape": ()}
    )
    with open(path, "wb") as handle:
        handle.write(header.getvalue())
        pickle.dump(np.array(payload, dtype=object), handle, protocol=protocol)
    return path


def _restricted(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    with monkeypatch.context() as patch:
        patch.setattr(legacy_npy, "read_pickled_npy", lambda _path: None)
        return legacy_npy.load_npy(path)


@pytest.mark.parametrize("protocol", [None, 3, 4])
def test_fast_path_equals_restricted_unpickler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: int | None
) -> None:
    expected = _arrays(np.random.default_rng(protocol or 0))
    path = _write(tmp_path / "episode.npy", expected, protocol)
    fast = read_pickled_npy(path)
    assert fast is not None, "the fast path must handle what numpy writes"
    slow = _restricted(path, monkeypatch)
    assert fast.keys() == slow.keys() == expected.keys()
    for key, value in expected.items():
        for got in (fast[key], slow[key]):
            # Same kind and size; numpy's own unpickler may hand big-endian data back native.
            assert got.dtype.str[1:] == value.dtype.str[1:] and got.shape == value.shape, key
            np.testing.assert_array_equal(got, value)
    assert not fast["observations"].flags.writeable  # a view of the read-only mapping
    assert legacy.legacy_arrays(path)["observations"].base is not None


def test_fast_path_frames_match_the_predecessor_reader(tmp_path: Path) -> None:
    path = _write(tmp_path / "20230101T000000_0_7_3_0.00.npy", _arrays(np.random.default_rng(1)))
    episode = legacy.read_legacy_episode(path, "coinrun")
    reference = np.load(path, allow_pickle=True).item()["observations"]
    np.testing.assert_array_equal(episode.observations, np.moveaxis(reference, 1, -1))


@pytest.mark.parametrize("protocol", [2, 5])
def test_other_pickle_shapes_fall_back(tmp_path: Path, protocol: int) -> None:
    # Protocol 2 pickles bytes through codecs.encode, protocol 5 arrays through _frombuffer:
    # neither is the shape the walker accepts, so it steps aside for the restricted unpickler.
    path = _write(tmp_path / "episode.npy", _arrays(np.random.default_rng(2)), protocol)
    assert read_pickled_npy(path) is None


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_unsafe_and_damaged_files_fall_back(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    bad = _write(tmp_path / "20230101T000000_1_3_1_0.00.npy", {"observations": _Exploit(marker)})
    assert read_pickled_npy(bad) is None
    with pytest.raises(UnsafeFileError):
        legacy.read_legacy_episode(bad, "coinrun")
    assert not marker.exists()

    good = _write(tmp_path / "good.npy", _arrays(np.random.default_rng(3)))
    data = good.read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    assert read_pickled_npy(tmp_path / "cut.npy") is None
    payload = data.index(b"observations")  # an unknown opcode where a string was
    (tmp_path / "opcode.npy").write_bytes(data[: payload - 2] + b"\xff" + data[payload - 1 :])
    assert read_pickled_npy(tmp_path / "opcode.npy") is None
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros(3))
    assert read_pickled_npy(plain) is None
    (tmp_path / "empty.npy").write_bytes(b"")
    assert read_pickled_npy(tmp_path / "empty.npy") is None
