"""Zero-copy reader of the predecessor's pickled ``.npy`` episodes.

A published episode file is a ``.npy`` header followed by the pickle that ``np.save`` writes for a
0-d object array wrapping a dict of plain arrays. ``pickle`` (even restricted) copies every array
payload twice; here the file is memory-mapped and its pickle opcodes are walked by a tiny,
strict interpreter that never imports or calls anything: the only globals it accepts are numpy's
``_reconstruct``, ``ndarray`` and ``dtype``, which become inert tokens; ``REDUCE`` and ``BUILD``
are accepted only in the exact shapes numpy produces; each array's bytes become an
``np.frombuffer`` view of the mapping.

:func:`mapped_region` tells where such a view's bytes lie in its file, and which file that was, so
that large arrays (the frames) can be read with ``pread`` into a small, cache-resident buffer
instead of through the mapping: a mapping faults every page in and out again, and raises
``SIGBUS`` if the file shrinks.

Anything else (another opcode, a different shape of call, a truncated file) makes
:func:`read_pickled_npy` return ``None`` so the caller can use the restricted unpickler, which
reports what exactly is wrong (and refuses unsafe files).
"""

from __future__ import annotations

import io
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.data.legacy._errors import MALFORMED

__all__ = [
    "FileRegion",
    "file_identity",
    "mapped_region",
    "read_pickled_npy",
    "read_pickled_npy_bytes",
]

_RECONSTRUCT = "reconstruct"
_NDARRAY = "ndarray"
_DTYPE = "dtype"
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DTYPE,
}
# Plain numeric dtypes of the legacy arrays, plus the outer object array's "O8".
_DTYPE_CODES = frozenset(
    {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "O8"}
)
_MAX_OPS = 100_000  # an episode pickle has a few hundred opcodes


FileIdentity = tuple[int, int, int, int]
"""``st_dev, st_ino, st_size, st_mtime_ns``: a file that is replaced or rewritten gets another."""


def file_identity(stat: os.stat_result) -> FileIdentity:
    """The :data:`FileIdentity` of a file's ``stat`` (or ``fstat``) result."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class FileRegion:
    """Where an array's bytes lie in its file, and which file it was when it was mapped."""

    offset: int
    identity: FileIdentity


class _FileMap(mmap.mmap):
    """A read-only map of a whole file that remembers the identity of the file it maps."""

    identity: FileIdentity


_Buffer = mmap.mmap | bytes | bytearray | memoryview
"""What the walker reads: a mapped file or a member read into memory (indexing, ``find``,
``struct.unpack_from`` and ``np.frombuffer`` work alike on both)."""


class _Unsupported(Exception):
    """The pickle is not in the exact shape numpy writes; use the restricted unpickler."""


# Either way the restricted unpickler then reads the file and says what exactly is wrong.
_UNREADABLE: tuple[type[Exception], ...] = (OSError, *MALFORMED)
_NOT_NUMPYS: tuple[type[Exception], ...] = (_Unsupported, IndexError, TypeError, *MALFORMED)


@dataclass
class _Payload:
    offset: int
    length: int
    short: bytes | None  # the bytes themselves when tiny (the b"b" argument of _reconstruct)


@dataclass
class _DtypeStub:
    code: str
    value: np.dtype[Any] | None = None


@dataclass
class _ArrayStub:
    value: Any = None


class _Mark:
    pass


_MARK = _Mark()
_U1, _U2, _U4, _U8, _I4 = (struct.Struct(f) for f in ("<B", "<H", "<I", "<Q", "<i"))


def _need(ok: bool) -> None:
    if not ok:
        raise _Unsupported


def _build_dtype(stub: _DtypeStub, state: Any) -> None:
    _need(isinstance(state, tuple) and len(state) == 8 and stub.value is None)
    version, order, sub, names, fields, elsize, align, flags = state
    _need(version == 3 and order in ("<", ">", "|", "=") and (sub, names, fields) == (None,) * 3)
    _need(elsize == -1 and align == -1 and isinstance(flags, int))
    dtype = np.dtype(stub.code)
    if order in "<>" and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(order)
    _need(flags == (63 if dtype.hasobject else 0))
    stub.value = dtype


def _build_array(stub: _ArrayStub, state: Any, buffer: _Buffer) -> None:
    _need(isinstance(state, tuple) and len(state) == 5 and stub.value is None)
    version, shape, dtype_stub, fortran, data = state
    _need(version == 1 and isinstance(shape, tuple) and isinstance(fortran, bool))
    _need(all(isinstance(n, int) and n >= 0 for n in shape) and isinstance(dtype_stub, _DtypeStub))
    dtype = dtype_stub.value
    _need(dtype is not None)
    assert dtype is not None
    if dtype.hasobject:
        # The outer 0-d array holding the episode dict: keep the dict itself.
        _need(shape == () and isinstance(data, list) and len(data) == 1)
        stub.value = data[0]
        return
    _need(isinstance(data, _Payload))
    count = 1
    for n in shape:
        count *= n
    _need(data.length == count * dtype.itemsize)
    flat: npt.NDArray[Any] = np.frombuffer(buffer, dtype=dtype, count=count, offset=data.offset)
    stub.value = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _reduce(func: Any, args: Any) -> Any:
    _need(isinstance(args, tuple))
    if func == _RECONSTRUCT:
        _need(len(args) == 3 and args[0] == _NDARRAY and args[1] == (0,))
        _need(isinstance(args[2], _Payload) and args[2].short == b"b")
        return _ArrayStub()
    if func == _DTYPE:
        _need(len(args) == 3 and args[0] in _DTYPE_CODES and args[1:] == (False, True))
        return _DtypeStub(args[0])
    raise _Unsupported


def _resolve(value: Any) -> Any:
    return value.value if isinstance(value, _ArrayStub) else value


def _walk(buffer: _Buffer, pos: int) -> Any:
    end = len(buffer)
    stack: list[Any] = []
    marks: list[list[Any]] = []
    memo: dict[int, Any] = {}

    def take(n: int) -> int:
        nonlocal pos
        _need(pos + n <= end)
        start = pos
        pos += n
        return start

    def text(n: int) -> str:
        start = take(n)
        return bytes(buffer[start : start + n]).decode("utf-8")

    def pop_mark() -> list[Any]:
        nonlocal stack
        _need(bool(marks))
        items = stack
        stack = marks.pop()
        return items

    for _ in range(_MAX_OPS):
        op = buffer[take(1)]
        if op == 0x80:  # PROTO
            _need(buffer[take(1)] in (2, 3, 4))
        elif op == 0x95:  # FRAME: frames are inline, nothing to do but skip the length
            take(8)
        elif op == 0x2E:  # STOP
            _need(len(stack) == 1 and not marks)
            return _resolve(stack[0])
        elif op == 0x28:  # MARK
            marks.append(stack)
            stack = []
        elif op == 0x29:  # EMPTY_TUPLE
            stack.append(())
        elif op == 0x74:  # TUPLE
            items = pop_mark()  # rebinds stack: pop before appending
            stack.append(tuple(items))
        elif op in (0x85, 0x86, 0x87):  # TUPLE1-3
            n = op - 0x84
            _need(len(stack) >= n)
            packed = tuple(stack[-n:])
            del stack[-n:]
            stack.append(packed)
        elif op == 0x5D:  # EMPTY_LIST
            stack.append([])
        elif op == 0x7D:  # EMPTY_DICT
            stack.append({})
        elif op in (0x61, 0x65):  # APPEND, APPENDS
            items = [stack.pop()] if op == 0x61 else pop_mark()
            _need(bool(stack) and isinstance(stack[-1], list))
            stack[-1].extend(items)
        elif op in (0x73, 0x75):  # SETITEM, SETITEMS
            items = stack[-2:] if op == 0x73 else pop_mark()
            if op == 0x73:
                del stack[-2:]
            _need(len(items) % 2 == 0 and bool(stack) and isinstance(stack[-1], dict))
            for key, value in zip(items[::2], items[1::2], strict=True):
                _need(isinstance(key, str))
                stack[-1][key] = value
        elif op == 0x4E:  # NONE
            stack.append(None)
        elif op in (0x88, 0x89):  # NEWTRUE, NEWFALSE
            stack.append(op == 0x88)
        elif op == 0x4B:  # BININT1
            stack.append(buffer[take(1)])
        elif op == 0x4D:  # BININT2
            stack.append(_U2.unpack_from(buffer, take(2))[0])
        elif op == 0x4A:  # BININT
            stack.append(_I4.unpack_from(buffer, take(4))[0])
        elif op == 0x8C:  # SHORT_BINUNICODE
            stack.append(text(buffer[take(1)]))
        elif op == 0x58:  # BINUNICODE
            stack.append(text(_U4.unpack_from(buffer, take(4))[0]))
        elif op in (0x43, 0x42, 0x8E):  # SHORT_BINBYTES, BINBYTES, BINBYTES8
            size = {0x43: _U1, 0x42: _U4, 0x8E: _U8}[op]
            length = size.unpack_from(buffer, take(size.size))[0]
            start = take(length)
            short = bytes(buffer[start:pos]) if length <= 16 else None
            stack.append(_Payload(start, length, short))
        elif op == 0x63:  # GLOBAL "module\nname\n"
            line_end = _find_newline(buffer, pos, min(end, pos + 256))
            _need(line_end >= 0)
            module = text(line_end - pos)
            take(1)
            line_end = _find_newline(buffer, pos, min(end, pos + 256))
            _need(line_end >= 0)
            name = text(line_end - pos)
            take(1)
            _need((module, name) in _GLOBALS)
            stack.append(_GLOBALS[(module, name)])
        elif op == 0x93:  # STACK_GLOBAL
            _need(len(stack) >= 2)
            module, name = stack[-2:]
            del stack[-2:]
            _need(isinstance(module, str) and isinstance(name, str))
            _need((module, name) in _GLOBALS)
            stack.append(_GLOBALS[(module, name)])
        elif op == 0x52:  # REDUCE
            _need(len(stack) >= 2)
            args = stack.pop()
            stack[-1] = _reduce(stack[-1], args)
        elif op == 0x62:  # BUILD
            _need(len(stack) >= 2)
            state = stack.pop()
            target = stack[-1]
            if isinstance(target, _DtypeStub):
                _build_dtype(target, state)
            elif isinstance(target, _ArrayStub):
                _build_array(target, state, buffer)
            else:
                raise _Unsupported
        elif op == 0x94:  # MEMOIZE
            _need(bool(stack))
            memo[len(memo)] = stack[-1]
        elif op in (0x71, 0x72):  # BINPUT, LONG_BINPUT
            index = buffer[take(1)] if op == 0x71 else _U4.unpack_from(buffer, take(4))[0]
            _need(bool(stack))
            memo[index] = stack[-1]
        elif op in (0x68, 0x6A):  # BINGET, LONG_BINGET
            index = buffer[take(1)] if op == 0x68 else _U4.unpack_from(buffer, take(4))[0]
            _need(index in memo)
            stack.append(memo[index])
        else:
            raise _Unsupported
    raise _Unsupported


def read_pickled_npy(path: Path) -> dict[str, npt.NDArray[Any]] | None:
    """The arrays of a predecessor ``.npy`` episode as views of the memory-mapped file.

    Returns:
        The episode dict, or ``None`` when the file is not exactly what ``np.save`` writes for a
        dict of plain arrays (the caller then uses the restricted unpickler, which explains).
    """
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(handle)
            elif version in ((2, 0), (3, 0)):
                header = np.lib.format.read_array_header_2_0(handle)
            else:
                return None
            shape, _fortran, dtype = header
            if shape != () or not dtype.hasobject:
                return None
            start = handle.tell()
            buffer = _FileMap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            buffer.identity = file_identity(os.fstat(handle.fileno()))
        # Read ahead the whole file: it is about to be read front to back (a no-op when cached).
        for advice in ("MADV_SEQUENTIAL", "MADV_WILLNEED"):
            if hasattr(mmap, advice):
                buffer.madvise(getattr(mmap, advice))
    except _UNREADABLE:
        return None
    return _arrays(buffer, start)


_HEADER_MAX = 1 << 16


def _find_newline(buffer: _Buffer, start: int, stop: int) -> int:
    """``buffer.find(b"\\n", start, stop)`` for every buffer type (a memoryview has no ``find``)."""
    if isinstance(buffer, memoryview):
        found = bytes(buffer[start:stop]).find(b"\n")
        return found + start if found >= 0 else -1
    return buffer.find(b"\n", start, stop)


def read_pickled_npy_bytes(
    data: bytes | bytearray | memoryview,
) -> dict[str, npt.NDArray[Any]] | None:
    """As :func:`read_pickled_npy`, for a file already read into memory (a member streamed out of
    an archive): the arrays are read-only views of ``data``."""
    # The header only: BytesIO would copy a whole bytearray (a longer header than this falls
    # back to the restricted unpickler).
    handle = io.BytesIO(bytes(memoryview(data)[:_HEADER_MAX]))
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            header = np.lib.format.read_array_header_2_0(handle)
        else:
            return None
    except _UNREADABLE:
        return None
    shape, _fortran, dtype = header
    if shape != () or not dtype.hasobject:
        return None
    return _arrays(data, handle.tell())


def _arrays(buffer: _Buffer, start: int) -> dict[str, npt.NDArray[Any]] | None:
    try:
        result = _walk(buffer, start)
    except _NOT_NUMPYS:
        return None
    if not isinstance(result, dict):
        return None
    out: dict[str, npt.NDArray[Any]] = {}
    for key, value in result.items():
        value = _resolve(value)
        if not isinstance(value, np.ndarray):
            return None
        out[key] = value
    return out


def mapped_region(array: npt.NDArray[Any]) -> FileRegion | None:
    """Where in its file a C-contiguous array returned by :func:`read_pickled_npy` lies.

    Returns:
        The region (the identity is that of the file as it was mapped), or ``None`` when ``array``
        is not a contiguous view of such a mapping (for example an array the restricted
        unpickler built in memory).
    """
    base: Any = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    if not isinstance(base, _FileMap) or not array.flags.c_contiguous:
        return None
    # The mapping covers the whole file from byte 0, so addresses in it are file offsets.
    start = int(np.frombuffer(base, dtype=np.uint8, count=0).ctypes.data)
    return FileRegion(int(array.ctypes.data) - start, base.identity)
