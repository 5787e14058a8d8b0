"""Encode whole observation shards in parallel and store them through zarr's store.

zarr's sharding codec compresses a shard's inner chunks one after another; the writer's throughput
was bound by that single core. :class:`ShardEncoder` compresses the 512-frame inner chunks in a
small thread pool (numcodecs' zstd releases the GIL) and assembles the shard file exactly as the
array's own metadata says (zarr v3 sharding: inner codecs ``bytes`` + ``zstd``, index at the end,
``(offset, nbytes)`` little-endian uint64 per inner chunk, ``2**64 - 1`` twice for an absent one,
followed by the crc32c of the index). The file is written with the store's ``set`` (an atomic
replace for a local store), so readers see zarr's own format. Arrays configured differently are
not handled (:func:`ShardEncoder.for_array` returns ``None``) and the caller writes through zarr.

Complete inner chunks of the shard being filled are encoded once and kept, so committing a
partial shard repeatedly only compresses what changed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ShardEncoder"]

_ABSENT = 2**64 - 1


class ShardEncoder:
    """Writes shards of a sharded, zstd-compressed uint8 zarr array.

    Args:
        array: The zarr array (its metadata fixes the chunk key and the codecs).
        level: zstd level of the inner chunks.
        checksum: Whether the inner zstd frames carry checksums.
        threads: Compression threads.
    """

    def __init__(self, array: Any, *, level: int, checksum: bool, threads: int = 2) -> None:
        from numcodecs import Zstd

        self._array = array
        sharding = array.metadata.codecs[0]
        self._shard_frames = int(array.metadata.chunk_grid.chunk_shape[0])
        self._chunk_shape = tuple(int(n) for n in sharding.chunk_shape)
        self._chunk_frames = self._chunk_shape[0]
        self._chunks_per_shard = self._shard_frames // self._chunk_frames
        self._zstd = Zstd(level=level, checksum=checksum)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="offgen-zstd")
        self._shard_index = -1
        self._encoded: dict[int, bytes] = {}  # complete inner chunks of the current shard

    @classmethod
    def for_array(cls, array: Any, *, threads: int = 2) -> ShardEncoder | None:
        """An encoder for ``array`` if it is configured exactly as offgen writes it, else ``None``."""
        from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec
        from zarr.codecs.sharding import ShardingCodecIndexLocation

        meta = array.metadata
        codecs: tuple[Any, ...] = tuple(getattr(meta, "codecs", ()))
        if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec) or array.dtype != np.uint8:
            return None
        sharding = codecs[0]
        inner = sharding.codecs
        index = sharding.index_codecs
        shard_shape = tuple(meta.chunk_grid.chunk_shape)
        chunk_shape = tuple(sharding.chunk_shape)
        if not (
            sharding.index_location == ShardingCodecIndexLocation.end
            and len(inner) == 2
            and isinstance(inner[0], BytesCodec)
            and isinstance(inner[1], ZstdCodec)
            and len(index) == 2
            and isinstance(index[0], BytesCodec)
            and index[0].endian is not None
            and index[0].endian.value == "little"
            and isinstance(index[1], Crc32cCodec)
            and shard_shape[1:] == chunk_shape[1:] == tuple(array.shape[1:])
            and shard_shape[0] % chunk_shape[0] == 0
            and meta.fill_value == 0
        ):
            return None
        return cls(array, level=inner[1].level, checksum=inner[1].checksum, threads=threads)

    def close(self) -> None:
        """Stop the compression threads."""
        self._pool.shutdown(wait=True)

    def _encode(self, chunk: npt.NDArray[np.uint8]) -> bytes:
        return bytes(self._zstd.encode(chunk))

    def write(self, shard_index: int, frames: npt.NDArray[np.uint8]) -> None:
        """Write ``frames`` (the first frames of shard ``shard_index``) as that shard's file.

        The array must already be at least as long as what is written. The last inner chunk is
        padded with zeros (the fill value) like zarr pads chunks at the end of an array.
        """
        import google_crc32c
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        count = len(frames)
        if count == 0 or count > self._shard_frames:
            raise ValueError(f"a shard holds 1 to {self._shard_frames} frames, got {count}")
        if shard_index != self._shard_index:
            self._shard_index = shard_index
            self._encoded.clear()
        step = self._chunk_frames
        todo: list[tuple[int, npt.NDArray[np.uint8]]] = []
        for j in range(-(-count // step)):
            part = frames[j * step : (j + 1) * step]
            if len(part) == step and j in self._encoded:
                continue
            if len(part) < step:
                padded = np.zeros(self._chunk_shape, dtype=np.uint8)
                padded[: len(part)] = part
                part = padded
            todo.append((j, np.ascontiguousarray(part)))
        encoded = dict(self._encoded)
        for (j, _part), data in zip(
            todo, self._pool.map(self._encode, [p for _, p in todo]), strict=True
        ):
            encoded[j] = data
            if (j + 1) * step <= count:
                self._encoded[j] = data
        index = np.full((self._chunks_per_shard, 2), _ABSENT, dtype="<u8")
        parts: list[bytes] = []
        offset = 0
        for j in sorted(encoded):
            if j * step >= count:  # a stale chunk beyond what is written now (cannot happen)
                continue
            data = encoded[j]
            index[j] = (offset, len(data))
            parts.append(data)
            offset += len(data)
        index_bytes = index.tobytes()
        parts.append(index_bytes)
        parts.append(int(google_crc32c.value(index_bytes)).to_bytes(4, "little"))
        key = f"{self._array.path}/{self._array.metadata.encode_chunk_key((shard_index,) + (0,) * (self._array.ndim - 1))}"
        buffer = default_buffer_prototype().buffer.from_bytes(b"".join(parts))
        sync(self._array.store.set(key.lstrip("/"), buffer))
