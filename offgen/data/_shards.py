"""Stream frames into the shards of the observation array, compressing as they arrive.

zarr's sharding codec compresses a shard's inner chunks one after another, and the writer had to
hold a whole shard (192 MiB, fresh memory that the kernel must fault in) before compressing it.
:class:`ShardStream` instead copies frames into a few reused 512-frame chunk buffers and hands each
complete inner chunk to a small thread pool (numcodecs' zstd releases the GIL), so compression runs
while frames keep coming and memory stays at a few chunks plus one shard's compressed bytes.
:meth:`ShardStream.persist` assembles the shard file exactly as the array's own metadata says (zarr
v3 sharding: inner codecs ``bytes`` + ``zstd``, index at the end, ``(offset, nbytes)``
little-endian uint64 per inner chunk, ``2**64 - 1`` twice for an absent one, then the crc32c of the
index; the last, partial chunk padded with the fill value 0) and writes it with the store's ``set``
(an atomic replace for a local store): byte-identical to what zarr writes. Arrays configured any
other way get :class:`ZarrShardSink`, which buffers a shard and writes it through zarr.

Deferred frames (:meth:`ShardStream.push_from`): a :class:`~offgen.data.schema.FrameSource` is
asked for its frames by the compression thread, straight into the chunk buffer, just before that
chunk is compressed. Legacy conversion decodes the predecessor's float frames this way: no decoded
episode array, no copy into the chunk, and the decoded frames are still in cache when zstd reads
them (see the conversion numbers in ``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from offgen.data.schema import FrameSource

__all__ = ["ShardSink", "ShardStream", "ZarrShardSink"]

_ABSENT = 2**64 - 1

_Fill = tuple[FrameSource, int, int, int]
"""Deferred frames of a chunk: source, first source frame, count, position in the chunk."""


class ShardSink(Protocol):
    """Where :class:`~offgen.data.writer.StoreWriter` puts the frames of the current shard."""

    def start(self, shard_index: int, frames: npt.NDArray[np.uint8]) -> None:
        """Begin shard ``shard_index`` holding ``frames`` already (resume), or none."""

    def push(self, frames: npt.NDArray[np.uint8]) -> None:
        """Append frames to the current shard (the caller never overfills it)."""

    def push_from(self, source: FrameSource, start: int, count: int) -> None:
        """Append frames ``start .. start + count`` of ``source`` (made when convenient)."""

    def persist(self) -> None:
        """Write the current shard's file with every frame pushed so far."""

    def seal(self) -> Future[None]:
        """Write the current, full shard's file, possibly in the background (done: on disk)."""

    def close(self) -> None:
        """Release threads and buffers."""


class ZarrShardSink:
    """Buffers a whole shard and writes it through zarr (for arrays laid out unlike offgen's)."""

    def __init__(self, array: Any) -> None:
        self._array = array
        self._shard_frames = int(array.metadata.chunk_grid.chunk_shape[0])
        self._buffer = np.empty((self._shard_frames, *array.shape[1:]), dtype=array.dtype)
        self._start = self._fill = 0

    def start(self, shard_index: int, frames: npt.NDArray[np.uint8]) -> None:
        self._start = shard_index * self._shard_frames
        self._fill = 0
        self.push(frames)

    def push(self, frames: npt.NDArray[np.uint8]) -> None:
        self._buffer[self._fill : self._fill + len(frames)] = frames
        self._fill += len(frames)

    def push_from(self, source: FrameSource, start: int, count: int) -> None:
        source.fill(start, self._buffer[self._fill : self._fill + count])
        self._fill += count

    def persist(self) -> None:
        if self._fill:
            self._array[self._start : self._start + self._fill] = self._buffer[: self._fill]

    def seal(self) -> Future[None]:
        self.persist()
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def close(self) -> None:
        pass


class ShardStream:
    """Streams frames into the shards of a sharded, zstd-compressed uint8 zarr array.

    Args:
        array: The zarr array (its metadata fixes the chunk key and the codecs).
        level: zstd level of the inner chunks.
        checksum: Whether the inner zstd frames carry checksums.
        threads: Compression threads.
        ring: Raw chunk buffers (complete chunks wait in them to be compressed).
    """

    def __init__(
        self, array: Any, *, level: int, checksum: bool, threads: int = 2, ring: int = 4
    ) -> None:
        from numcodecs import Zstd

        self._array = array
        sharding = array.metadata.codecs[0]
        self._shard_frames = int(array.metadata.chunk_grid.chunk_shape[0])
        self._chunk_shape = tuple(int(n) for n in sharding.chunk_shape)
        self._chunk_frames = self._chunk_shape[0]
        self._chunks_per_shard = self._shard_frames // self._chunk_frames
        self._zstd = Zstd(level=level, checksum=checksum)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="offgen-zstd")
        # Full shards are written by their own thread, so compression never waits for a write.
        self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offgen-shard")
        self._free = [np.empty(self._chunk_shape, dtype=np.uint8) for _ in range(ring)]
        self._busy: deque[tuple[Future[bytes], npt.NDArray[np.uint8]]] = deque()
        self._shard_index = 0
        self._chunks: list[Future[bytes]] = []  # the current shard's complete chunks, in order
        self._raw = self._take_buffer()  # the chunk being filled
        self._raw_fill = 0
        self._fills: list[_Fill] = []  # deferred frames of the chunk being filled

    @classmethod
    def for_array(cls, array: Any, *, threads: int = 2) -> ShardStream | None:
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
        """Stop the compression and shard-writing threads."""
        self._sealer.shutdown(wait=True)
        self._pool.shutdown(wait=True)

    def _encode(self, chunk: npt.NDArray[np.uint8], fills: list[_Fill]) -> bytes:
        for source, start, count, at in fills:
            source.fill(start, chunk[at : at + count])
        return bytes(self._zstd.encode(chunk))

    def _take_buffer(self) -> npt.NDArray[np.uint8]:
        while not self._free:  # every buffer waits to be compressed: wait for the oldest
            future, buffer = self._busy.popleft()
            future.result()
            self._free.append(buffer)
        while self._busy and self._busy[0][0].done():
            future, buffer = self._busy.popleft()
            future.result()  # a failed chunk (e.g. an invalid deferred frame) raises here
            self._free.append(buffer)
        return self._free.pop()

    def start(self, shard_index: int, frames: npt.NDArray[np.uint8]) -> None:
        """Begin shard ``shard_index`` holding ``frames`` already (resume), or none."""
        for future in self._chunks:
            future.cancel()
        self._shard_index = shard_index
        self._chunks = []
        self._raw_fill = 0
        self._fills = []
        self.push(frames)

    def push(self, frames: npt.NDArray[np.uint8]) -> None:
        """Append frames to the current shard (copied now); complete chunks start compressing."""
        self._append(len(frames), frames, None, 0)

    def push_from(self, source: FrameSource, start: int, count: int) -> None:
        """Append frames ``start .. start + count`` of ``source``. They are made in the chunk
        buffer by the compression thread, just before it compresses the chunk (``source`` must
        stay valid until then); an error ``source`` raises surfaces on a later push or persist."""
        self._append(count, None, source, start)

    def _append(
        self,
        count: int,
        frames: npt.NDArray[np.uint8] | None,
        source: FrameSource | None,
        source_start: int,
    ) -> None:
        step = self._chunk_frames
        if (len(self._chunks) * step + self._raw_fill + count) > self._shard_frames:
            raise ValueError(f"a shard holds {self._shard_frames} frames; pushed too many")
        done = 0
        while done < count:
            take = min(count - done, step - self._raw_fill)
            if frames is not None:
                self._raw[self._raw_fill : self._raw_fill + take] = frames[done : done + take]
            elif source is not None:
                self._fills.append((source, source_start + done, take, self._raw_fill))
            self._raw_fill += take
            done += take
            if self._raw_fill == step:
                future = self._pool.submit(self._encode, self._raw, self._fills)
                self._busy.append((future, self._raw))
                self._chunks.append(future)
                self._raw = self._take_buffer()
                self._raw_fill = 0
                self._fills = []

    def persist(self) -> None:
        """Write the current shard's file with every frame pushed so far (waits for its chunks)."""
        tail: list[bytes] = []
        if self._raw_fill:
            # Make the partial chunk's deferred frames now (later pushes append to them), and pad
            # it with zeros (the fill value), as zarr pads it.
            fills, self._fills = self._fills, []
            self._raw[self._raw_fill :] = 0
            tail.append(self._encode(self._raw, fills))
        self._write_shard(self._shard_index, self._chunks, tail)

    def seal(self) -> Future[None]:
        """Write the current shard, which must be full, in the background; call :meth:`start`
        for the next one at once. The future fails if a chunk or the write failed."""
        if self._raw_fill or len(self._chunks) != self._chunks_per_shard:
            raise ValueError("only a full shard can be sealed")
        chunks, self._chunks = self._chunks, []
        return self._sealer.submit(self._write_shard, self._shard_index, chunks, [])

    def _write_shard(
        self, shard_index: int, chunks: list[Future[bytes]], tail: list[bytes]
    ) -> None:
        import google_crc32c
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        parts = [future.result() for future in chunks] + tail
        if not parts:
            return
        index = np.full((self._chunks_per_shard, 2), _ABSENT, dtype="<u8")
        offset = 0
        for j, data in enumerate(parts):
            index[j] = (offset, len(data))
            offset += len(data)
        index_bytes = index.tobytes()
        parts.append(index_bytes)
        parts.append(int(google_crc32c.value(index_bytes)).to_bytes(4, "little"))
        coords = (shard_index,) + (0,) * (self._array.ndim - 1)
        key = f"{self._array.path}/{self._array.metadata.encode_chunk_key(coords)}".lstrip("/")
        buffer = default_buffer_prototype().buffer.from_bytes(b"".join(parts))
        sync(self._array.store.set(key, buffer))
