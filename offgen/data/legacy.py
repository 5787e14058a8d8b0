"""The predecessor's per-episode files: write them exactly, read them safely.

File name: ``<YYYYmmddTHHMMSS>_<index>_<T>_<level_seed>_<return:.2f>.<npz|npy>`` (the return may be
negative). Content: a dict with

* ``observations`` ``(T+1, 3, 64, 64)`` float32 holding 0-255, channel first; row ``T`` is the next
  level's first frame (Procgen auto-reset), not the true final frame;
* ``actions`` ``(T, 1)`` int64; ``rewards`` ``(T, 1)`` float32;
* ``dones`` ``(T,)`` float32, only the last is 1.

The collector wrote ``np.savez_compressed`` ``.npz`` files; the published archives hold ``.npy``
files that are a *pickled* 0-d object array wrapping the dict. Unpickling runs arbitrary code, so
:func:`read_legacy_episode` parses ``.npy`` files with a restricted unpickler that can only rebuild
plain numpy arrays, dtypes and dicts, and raises :class:`~offgen.errors.UnsafeFileError` for
anything else. ``.npz`` files are read with ``allow_pickle=False``.

What the files do not hold: the level seed and return live only in the file name, and there is no
terminated / truncated flag. offgen infers ``truncated`` when the length equals the game's time
limit (:attr:`offgen.registry.GameSpec.max_episode_steps`) and ``terminated`` otherwise; an agent
that happened to finish on exactly the last allowed step is labelled truncated.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import os
import pickle
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen._io import atomic_open
from offgen.data._npy_pickle import FileRegion, file_identity, mapped_region, read_pickled_npy
from offgen.data.schema import FRAME_SHAPE_CHW, FRAME_SHAPE_HWC, Episode, frames_placeholder
from offgen.errors import CorruptStoreError, SchemaError, UnsafeFileError
from offgen.registry import resolve_game


def _load_compiled_decode() -> Callable[[Any, Any, int, int], int] | None:
    try:
        from offgen._decode import chw_float32_to_hwc_uint8
    except ImportError:  # pragma: no cover - built without a C compiler (numpy path, same frames)
        return None
    return chw_float32_to_hwc_uint8


_compiled_decode = _load_compiled_decode()

COMPILED_DECODE: bool = _compiled_decode is not None
"""Whether float32 CHW frames are decoded by the compiled kernel (``offgen/_decode.c``) rather than
by numpy. Both give identical frames and reject the same values; the kernel decodes ~1.7x more
frames per second from memory (see the conversion numbers in ``docs/benchmarks.md``)."""

__all__ = [
    "LEGACY_KEYS",
    "LegacyFrames",
    "LegacyName",
    "find_legacy_files",
    "iter_legacy_episodes",
    "legacy_arrays",
    "open_legacy_episode",
    "read_legacy_episode",
    "write_npz_episode",
]

LEGACY_KEYS = ("observations", "actions", "rewards", "dones")
_SUFFIXES = (".npz", ".npy")
_NAME = re.compile(
    r"^(?P<timestamp>\d{8}T\d{6})_(?P<index>\d+)_(?P<length>\d+)_(?P<seed>-?\d+)_"
    r"(?P<ret>-?\d+\.\d+)\.(?P<suffix>npz|npy)$"
)
_TIMESTAMP = "%Y%m%dT%H%M%S"


@dataclass(frozen=True, order=True)
class LegacyName:
    """The fields of a legacy episode file name (ordered by index, then timestamp).

    Attributes:
        index: Episode counter of the collection run.
        timestamp: ``YYYYmmddTHHMMSS`` when the file was written.
        length: Steps ``T``.
        level_seed: Procgen level seed.
        episode_return: Undiscounted return, rounded to 2 decimals.
        suffix: ``"npz"`` or ``"npy"``.
    """

    index: int
    timestamp: str
    length: int
    level_seed: int
    episode_return: float
    suffix: str = "npz"

    @classmethod
    def parse(cls, name: str) -> LegacyName:
        """Parse a file name (a bare name or a path).

        Raises:
            SchemaError: If the name does not follow the legacy pattern.
        """
        base = os.path.basename(name)
        match = _NAME.match(base)
        if match is None:
            raise SchemaError(
                f"{name}: not a legacy episode file name; expected "
                "<YYYYmmddTHHMMSS>_<index>_<T>_<level_seed>_<return>.npz|npy, e.g. "
                "20230101T120000_17_250_42_10.00.npz"
            )
        return cls(
            index=int(match["index"]),
            timestamp=match["timestamp"],
            length=int(match["length"]),
            level_seed=int(match["seed"]),
            episode_return=float(match["ret"]),
            suffix=match["suffix"],
        )

    def format(self) -> str:
        """The file name, e.g. ``20230101T120000_17_250_42_10.00.npz``."""
        return (
            f"{self.timestamp}_{self.index}_{self.length}_{self.level_seed}_"
            f"{self.episode_return:.2f}.{self.suffix}"
        )


# ---------------------------------------------------------------------------------------- writing
def write_npz_episode(
    directory: str | os.PathLike[str],
    episode: Episode,
    index: int,
    timestamp: _dt.datetime | str | None = None,
) -> Path:
    """Write ``episode`` as the predecessor's collector did: one ``np.savez_compressed`` file.

    The keys, shapes, dtypes and file name match the published data (see the module docstring), so
    existing code reads the result. The write is atomic.

    Args:
        directory: Folder to write into (created if missing).
        episode: The episode.
        index: Episode counter written into the file name.
        timestamp: Time in the name; a datetime, a ``YYYYmmddTHHMMSS`` string, or now (UTC).

    Returns:
        The path of the written file.
    """
    if timestamp is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime(_TIMESTAMP)
    elif isinstance(timestamp, _dt.datetime):
        stamp = timestamp.strftime(_TIMESTAMP)
    else:
        stamp = timestamp
    name = LegacyName(
        index=index,
        timestamp=stamp,
        length=episode.length,
        level_seed=episode.level_seed,
        episode_return=episode.episode_return,
    )
    LegacyName.parse(name.format())  # refuses a malformed timestamp before anything is written
    steps = episode.length
    dones = np.zeros(steps, dtype=np.float32)
    dones[-1] = 1.0
    arrays = {
        "observations": np.moveaxis(episode.observations, -1, 1).astype(np.float32),
        "actions": episode.actions.astype(np.int64).reshape(steps, 1),
        "rewards": episode.rewards.astype(np.float32).reshape(steps, 1),
        "dones": dones,
    }
    path = Path(directory) / name.format()
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
    return path


# ---------------------------------------------------------------------------------------- reading
def _reconstruct(*args: Any) -> Any:
    from numpy._core.multiarray import _reconstruct as reconstruct

    return reconstruct(*args)


def _scalar(*args: Any) -> Any:
    from numpy._core.multiarray import scalar

    dtype = args[0] if args else None
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refusing a numpy object scalar")
    return scalar(*args)


# Everything a pickled dict of plain ndarrays needs, mapped to offgen's own references so that no
# module is imported by name from the file. numpy 1.x pickles say numpy.core, numpy 2 numpy._core.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds only plain numpy arrays, dtypes, dicts and lists; never imports or calls code."""

    def __init__(self, stream: io.BufferedIOBase, source: str) -> None:
        super().__init__(stream)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f"{self._source}: refusing to load '{module}.{name}' from a pickle; a legacy "
                "episode file may only hold plain arrays and dicts. The file is not a genuine "
                "episode (it could run code); delete it or get the dataset from its source."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeFileError(f"{self._source}: pickle uses persistent ids; refusing to load it")


def _load_npy(path: Path) -> dict[str, Any]:
    fast = read_pickled_npy(path)  # zero-copy views of the mapped file, for what np.save writes
    if fast is not None:
        return dict(fast)
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ValueError(f"unknown .npy format version {version}")
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            header = read_header(handle)
        except (ValueError, EOFError, SyntaxError) as exc:
            raise CorruptStoreError(
                f"{path}: not a readable .npy file ({exc}); it is truncated or corrupt. "
                "Re-extract it from the dataset archive."
            ) from exc
        shape, _fortran, dtype = header
        if not dtype.hasobject:
            raise SchemaError(
                f"{path}: holds a plain {dtype} array of shape {shape}, not the pickled dict of a "
                "legacy episode (keys observations, actions, rewards, dones)"
            )
        try:
            obj = _RestrictedUnpickler(handle, str(path)).load()
        except UnsafeFileError:
            raise
        except Exception as exc:
            raise CorruptStoreError(
                f"{path}: the pickled episode is truncated or corrupt "
                f"({type(exc).__name__}: {exc}). Re-extract it from the dataset archive."
            ) from exc
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise SchemaError(f"{path}: expected a pickled dict of arrays, got {type(obj).__name__}")
    return obj


def _inflater() -> Any:
    # isal's inflate is 2.5-3x faster than zlib's and, like zlib, releases the GIL.
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the safe fallback
        return zlib


_LOCAL_HEADER = struct.Struct("<4s22xHH")
_MAX_MEMBER = 1 << 31  # 2 GiB: ~40k float32 frames, far above any episode


def _corrupt(path: Path, what: str) -> CorruptStoreError:
    return CorruptStoreError(
        f"{path}: {what}; the file is truncated or corrupt. Re-extract it from the dataset archive."
    )


def _npy_from_bytes(data: bytes, path: Path, key: str) -> npt.NDArray[Any]:
    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(buffer)
    except (ValueError, EOFError, SyntaxError) as exc:
        raise _corrupt(path, f"member {key}.npy has no valid .npy header ({exc})") from exc
    if dtype.hasobject:
        raise UnsafeFileError(
            f"{path}: member {key}.npy holds pickled objects, which offgen never loads; a legacy "
            ".npz holds plain arrays only. Get the file from the dataset's source."
        )
    count = int(np.prod(shape, dtype=np.int64))
    offset = buffer.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise _corrupt(path, f"member {key}.npy holds {len(data) - offset} bytes, not {shape}")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _load_npz(path: Path) -> dict[str, Any]:
    """Read the legacy members of an ``.npz`` without pickles, inflating each in one call."""
    inflater = _inflater()
    out: dict[str, Any] = {}
    try:
        with open(path, "rb") as handle:
            archive = zipfile.ZipFile(handle)
            for member in archive.infolist():
                key = member.filename.removesuffix(".npy")
                if key not in LEGACY_KEYS:
                    continue
                if member.file_size > _MAX_MEMBER:
                    raise _corrupt(path, f"member {member.filename} claims {member.file_size} B")
                if member.compress_type == zipfile.ZIP_DEFLATED and not member.flag_bits & 1:
                    handle.seek(member.header_offset)
                    magic, name_len, extra_len = _LOCAL_HEADER.unpack(handle.read(30))
                    if magic != b"PK\x03\x04":
                        raise _corrupt(path, f"bad zip entry header for {member.filename}")
                    handle.seek(member.header_offset + 30 + name_len + extra_len)
                    raw = handle.read(member.compress_size)
                    if len(raw) != member.compress_size:
                        raise _corrupt(path, f"member {member.filename} is cut short")
                    stream = inflater.decompressobj(-15)
                    # max_length bounds memory even if the header lies about the size.
                    data = stream.decompress(raw, member.file_size + 1)
                else:  # stored (np.savez) or unusual members: let zipfile do it
                    data = archive.read(member)
                if len(data) != member.file_size or inflater.crc32(data) != member.CRC:
                    raise _corrupt(path, f"member {member.filename} fails its CRC-32 check")
                out[key] = _npy_from_bytes(data, path, key)
    except (zipfile.BadZipFile, EOFError, zlib.error, struct.error) as exc:
        raise _corrupt(path, f"unreadable .npz ({type(exc).__name__}: {exc})") from exc
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _corrupt(path, f"unreadable .npz ({type(exc).__name__}: {exc})") from exc
    return out


def legacy_arrays(path: str | os.PathLike[str]) -> dict[str, npt.NDArray[Any]]:
    """The raw arrays of a legacy ``.npz`` / ``.npy`` episode file, loaded safely.

    Raises:
        UnsafeFileError: If the file holds anything but plain arrays and dicts.
        CorruptStoreError: If the file is truncated or corrupt.
        SchemaError: If a key is missing or an array is not a plain numeric array.
    """
    file = Path(path)
    if file.suffix not in _SUFFIXES:
        raise SchemaError(f"{file}: not a legacy episode file (expected .npz or .npy)")
    try:
        data = _load_npy(file) if file.suffix == ".npy" else _load_npz(file)
    except FileNotFoundError as exc:
        raise CorruptStoreError(f"{file}: file missing") from exc
    missing = [key for key in LEGACY_KEYS if key not in data]
    if missing:
        raise SchemaError(
            f"{file}: missing keys {missing}; a legacy episode has {list(LEGACY_KEYS)}"
        )
    out: dict[str, npt.NDArray[Any]] = {}
    for key in LEGACY_KEYS:
        arr = data[key]
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiub":
            raise SchemaError(f"{file}: {key} must be a numeric array, got {type(arr).__name__}")
        out[key] = arr
    return out


# Cast and check in blocks that stay in the L2 cache (768 KiB of float32 frames): each frame is
# read from memory (or the mapped file) once, every later pass hits the cache.
_BLOCK_FRAMES = 16


def _check_frames_shape(obs: npt.NDArray[Any], source: Path) -> None:
    if obs.ndim != 4 or obs.shape[1:] not in (FRAME_SHAPE_CHW, FRAME_SHAPE_HWC):
        raise SchemaError(
            f"{source}: observations have shape {obs.shape}, expected (T+1, 3, 64, 64)"
        )


def _not_whole_numbers(source: Path) -> SchemaError:
    return SchemaError(f"{source}: observations must hold whole numbers in [0, 255]")


def _decode_into(obs: npt.NDArray[Any], out: npt.NDArray[np.uint8], source: Path) -> None:
    """Cast stored frames (CHW or HWC, any numeric dtype) into ``out`` (HWC uint8), exactly."""
    count = obs.shape[0]
    if count == 0:
        return
    if obs.shape[1:] == FRAME_SHAPE_HWC:
        with np.errstate(invalid="ignore"):
            np.copyto(out, obs, casting="unsafe")
        if obs.dtype != np.uint8 and not np.array_equal(out, obs):
            raise _not_whole_numbers(source)
        return
    if (
        _compiled_decode is not None
        and obs.dtype == np.float32
        and obs.flags.c_contiguous
        and out.flags.c_contiguous
    ):
        if _compiled_decode(obs, out, count, FRAME_SHAPE_CHW[1] * FRAME_SHAPE_CHW[2]) >= 0:
            raise _not_whole_numbers(source)
        return
    pixels = out.reshape(count, -1, 3)
    block_shape = (min(count, _BLOCK_FRAMES), *FRAME_SHAPE_CHW)
    cast_buf = np.empty(block_shape, dtype=np.uint8)
    check = obs.dtype != np.uint8
    same_buf = np.empty(block_shape, dtype=bool)
    with np.errstate(invalid="ignore"):  # NaN / out of range are caught by the check below
        for start in range(0, count, _BLOCK_FRAMES):
            block = obs[start : start + _BLOCK_FRAMES]
            n = len(block)
            cast = cast_buf[:n]
            np.copyto(cast, block, casting="unsafe")
            if check:
                # Every value must survive the cast exactly: whole numbers in 0-255 (NaN,
                # fractions and out-of-range values compare unequal). The ufunc widens the uint8
                # side exactly, in its own small buffers: ~1.5x faster than casting back first.
                same = same_buf[:n]
                np.equal(cast, block, out=same)
                if not same.all():
                    raise _not_whole_numbers(source)
            # CHW -> HWC one channel at a time: 2-3x faster than numpy's general transpose copy.
            flat = cast.reshape(n, 3, -1)
            for channel in range(3):
                pixels[start : start + n, :, channel] = flat[:, channel]


@dataclass(frozen=True)
class LegacyFrames:
    """A legacy episode's frames as stored, decoded on demand (a
    :class:`~offgen.data.schema.FrameSource`).

    Frames of a ``.npy`` file are read with ``pread`` in blocks of 16 (768 KiB, which stay in the L2
    cache while they are decoded) rather than through the file mapping: measured on an 81k-frame
    conversion, ~12% less CPU (1.60-1.67 against 1.82-1.90 CPU-s), since no page of the mapping
    is faulted in and unmapped again. A file that changed or shrank since it was opened is a
    :class:`~offgen.errors.CorruptStoreError`, never a crash (a mapping would raise ``SIGBUS``)
    nor a mix of two files.

    Attributes:
        stored: ``(T + 1, 3, 64, 64)`` (or HWC) frames of any numeric dtype, usually a view of the
            memory-mapped ``.npy`` file.
        source: The file, named in errors.
        region: Where ``stored`` lies in ``source`` (read from the file when set).
    """

    stored: npt.NDArray[Any]
    source: Path
    region: FileRegion | None = None

    def __len__(self) -> int:
        return int(self.stored.shape[0])

    def fill(self, start: int, out: npt.NDArray[np.uint8]) -> None:
        """Decode frames ``start .. start + len(out)`` into ``out`` (HWC uint8), checking that each
        value is a whole number in [0, 255] (:class:`~offgen.errors.SchemaError` otherwise)."""
        if self.region is None:
            _decode_into(self.stored[start : start + len(out)], out, self.source)
        else:
            self._read_into(self.region, start, out)

    def decode(self) -> npt.NDArray[np.uint8]:
        """All frames, decoded into a new ``(T + 1, 64, 64, 3)`` uint8 array."""
        out = np.empty((len(self), *FRAME_SHAPE_HWC), dtype=np.uint8)
        self.fill(0, out)
        return out

    def _read_into(self, region: FileRegion, start: int, out: npt.NDArray[np.uint8]) -> None:
        frame_shape = self.stored.shape[1:]
        frame_bytes = self.stored[0].nbytes
        block = np.empty((min(len(out), _BLOCK_FRAMES), *frame_shape), dtype=self.stored.dtype)
        raw = block.reshape(-1).view(np.uint8).data
        fd = os.open(self.source, os.O_RDONLY)
        try:
            if file_identity(os.fstat(fd)) != region.identity:
                raise CorruptStoreError(
                    f"{self.source}: the file changed while it was being converted; run the "
                    "conversion again (it resumes where it stopped)"
                )
            for first in range(0, len(out), _BLOCK_FRAMES):
                count = min(_BLOCK_FRAMES, len(out) - first)
                wanted = count * frame_bytes
                position = region.offset + (start + first) * frame_bytes
                if os.preadv(fd, [raw[:wanted]], position) != wanted:
                    raise _corrupt(self.source, "its frames end before the header says")
                _decode_into(block[:count], out[first : first + count], self.source)
        finally:
            os.close(fd)


def read_legacy_episode(
    path: str | os.PathLike[str], game: str, *, policy_id: str = "unknown"
) -> Episode:
    """Read one legacy ``.npz`` or ``.npy`` episode file into an :class:`Episode`.

    Frames are cast to uint8 and moved to HWC; the level seed comes from the file name (``-1`` when
    the name does not follow the legacy pattern); ``truncated`` is inferred from the game's time
    limit; ``final_frame_is_true`` is false (row ``T`` is the next level's first frame).

    Raises:
        UnsafeFileError: If the file holds anything but plain arrays and dicts (never executed).
        CorruptStoreError: If the file is truncated or corrupt.
        SchemaError: If its arrays do not form a valid episode or disagree with its name.
    """
    episode, frames = open_legacy_episode(path, game, policy_id=policy_id)
    return dataclasses.replace(episode, observations=frames.decode())


def open_legacy_episode(
    path: str | os.PathLike[str], game: str, *, policy_id: str = "unknown"
) -> tuple[Episode, LegacyFrames]:
    """Read a legacy episode file's steps now and leave its frames to be decoded later.

    As :func:`read_legacy_episode`, except that the episode's ``observations`` are
    :func:`~offgen.data.schema.frames_placeholder` zeros and the real frames come back as a
    :class:`LegacyFrames` (for ``StoreWriter.write(episode, frames=...)``): a ``.npy`` file's
    frames are not read until they are decoded, and an invalid frame value is only found then.

    Raises:
        UnsafeFileError, CorruptStoreError, SchemaError: As :func:`read_legacy_episode`, except
            for frame values.
    """
    file = Path(path)
    spec = resolve_game(game)
    try:
        name: LegacyName | None = LegacyName.parse(file.name)
    except SchemaError:
        name = None
    arrays = legacy_arrays(file)
    actions = arrays["actions"].reshape(-1)
    steps = actions.shape[0]
    if name is not None and name.length != steps:
        raise SchemaError(f"{file}: the name says {name.length} steps but the file holds {steps}")
    if arrays["rewards"].size != steps or arrays["dones"].size != steps:
        raise SchemaError(
            f"{file}: {steps} actions but {arrays['rewards'].size} rewards and "
            f"{arrays['dones'].size} dones"
        )
    observations = arrays["observations"]
    _check_frames_shape(observations, file)
    truncated = steps >= spec.max_episode_steps
    try:
        episode = Episode(
            observations=frames_placeholder(observations.shape[0]),
            actions=_checked_actions(actions, file),
            rewards=arrays["rewards"].reshape(-1).astype(np.float32),
            terminated=not truncated,
            truncated=truncated,
            level_seed=name.level_seed if name is not None else -1,
            game=spec.name,
            policy_id=policy_id,
            final_frame_is_true=False,
            provenance={"source_file": file.name},
        )
    except SchemaError as exc:
        raise SchemaError(f"{file}: {exc}") from exc
    return episode, LegacyFrames(observations, file, mapped_region(observations))


def _checked_actions(actions: npt.NDArray[Any], source: Path) -> npt.NDArray[np.uint8]:
    if actions.size and (
        actions.min() < 0
        or actions.max() >= 15
        or (actions.dtype.kind == "f" and (actions % 1).any())
    ):
        raise SchemaError(f"{source}: actions must be whole numbers in [0, 15)")
    return actions.astype(np.uint8)


def find_legacy_files(
    source: str | os.PathLike[str], game: str | None = None
) -> list[tuple[LegacyName, Path]]:
    """Legacy episode files of a folder, sorted by episode index (then timestamp, then name).

    Accepts the archive layout ``<source>/<game>/<file>`` (when ``game`` is given and that folder
    exists) or a flat folder of files.

    Raises:
        CorruptStoreError: If the folder does not exist or holds no legacy files.
        SchemaError: If a ``.npz`` / ``.npy`` file's name does not follow the legacy pattern.
    """
    root = Path(source)
    if game is not None and (root / resolve_game(game).name).is_dir():
        root = root / resolve_game(game).name
    if not root.is_dir():
        raise CorruptStoreError(f"{root}: no such folder of legacy episode files")
    found: list[tuple[LegacyName, Path]] = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(_SUFFIXES):
                continue
            found.append((LegacyName.parse(entry.name), Path(entry.path)))
    if not found:
        raise CorruptStoreError(
            f"{root}: holds no legacy episode files (*.npz / *.npy); point at the folder of one "
            "game or at the extracted archive with --game"
        )
    found.sort(key=lambda item: (item[0].index, item[0].timestamp, item[1].name))
    return found


def iter_legacy_episodes(source: str | os.PathLike[str], game: str) -> Iterator[Episode]:
    """Read every legacy episode of a folder in index order (see :func:`find_legacy_files`)."""
    for _name, path in find_legacy_files(source, game):
        yield read_legacy_episode(path, game)
