"""Checked reads of parsed JSON: each store metadata file is read through :class:`Fields`.

Every wrong type, missing key or unknown key becomes one :class:`~offgen.errors.CorruptStoreError`
naming the file, the key path and how to repair the store, instead of a ``KeyError`` or
``TypeError`` surfacing wherever the value is first used.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, NoReturn

from offgen.errors import CorruptStoreError

__all__ = ["REPAIR", "Fields", "corrupt", "frozen_json", "load_json"]

REPAIR = (
    "the store's metadata is damaged; re-download or restore the store, or rebuild it with "
    "`offgen convert` / `offgen collect`"
)


def corrupt(source: str, problem: str, fix: str = REPAIR) -> NoReturn:
    """Raise the one-line :class:`CorruptStoreError` of a damaged metadata file."""
    raise CorruptStoreError(f"{source}: {problem}; {fix}.")


def load_json(data: bytes, source: str, fix: str = REPAIR) -> Any:
    """Parse JSON bytes, turning undecodable or invalid text into a :class:`CorruptStoreError`."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        corrupt(source, f"not valid JSON ({exc})", fix)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Fields:
    """The members of one JSON object, read with their expected types.

    Args:
        value: The parsed JSON value that must be an object.
        source: The file, for messages.
        path: Where the object sits in the file (``"codec"``, ``"recipe.mixture[1]"``).
        fix: How to repair the file, for messages.
    """

    def __init__(self, value: object, source: str, path: str = "", fix: str = REPAIR) -> None:
        self.source, self.path, self.fix = source, path, fix
        if not isinstance(value, dict):
            self._fail(path or "the file", f"must be a JSON object, got {_kind(value)}")
        self.raw: dict[str, Any] = value

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _fail(self, where: str, problem: str) -> NoReturn:
        corrupt(self.source, f"{where} {problem}", self.fix)

    def _value(self, key: str, default: object, what: str) -> Any:
        if key not in self.raw:
            if default is _REQUIRED:
                self._fail(self._where(key), f"is missing (expected {what})")
            return default
        return self.raw[key]

    def _typed(self, key: str, default: object, what: str, ok: type | tuple[type, ...]) -> Any:
        value = self._value(key, default, what)
        if value is None and default is None:
            return None
        if isinstance(value, bool) and bool not in (ok if isinstance(ok, tuple) else (ok,)):
            self._fail(self._where(key), f"must be {what}, got {value!r}")
        if not isinstance(value, ok):
            self._fail(self._where(key), f"must be {what}, got {_kind(value)} {value!r}")
        return value

    def text(self, key: str, *, choices: Collection[str] | None = None) -> str:
        """A required string (one of ``choices`` when given)."""
        value: str = self._typed(key, _REQUIRED, "a string", str)
        if choices is not None and value not in choices:
            self._fail(self._where(key), f"is {value!r}, expected one of {sorted(choices)}")
        return value

    def opt_text(self, key: str) -> str | None:
        """A string, ``null`` or absent."""
        value: str | None = self._typed(key, None, "a string or null", str)
        return value

    def integer(self, key: str, *, minimum: int | None = None) -> int:
        """A required integer (``>= minimum`` when given)."""
        value: int = self._typed(key, _REQUIRED, "an integer", int)
        if minimum is not None and value < minimum:
            self._fail(self._where(key), f"is {value}, must be >= {minimum}")
        return value

    def opt_integer(self, key: str) -> int | None:
        """An integer, ``null`` or absent."""
        value: int | None = self._typed(key, None, "an integer or null", int)
        return value

    def number(self, key: str) -> float:
        """A required number (an integer is kept as written, so files round-trip exactly)."""
        value: float = self._typed(key, _REQUIRED, "a number", (int, float))
        return value

    def opt_number(self, key: str) -> float | None:
        """A number, ``null`` or absent."""
        value: float | None = self._typed(key, None, "a number or null", (int, float))
        return value

    def flag(self, key: str) -> bool:
        """A required boolean."""
        value: bool = self._typed(key, _REQUIRED, "true or false", bool)
        return value

    def opt_flag(self, key: str) -> bool | None:
        """A boolean, ``null`` or absent."""
        value: bool | None = self._typed(key, None, "true, false or null", bool)
        return value

    def obj(self, key: str, *, required: bool = True) -> Fields:
        """A nested object (``{}`` when absent and not ``required``)."""
        value = self._value(key, _REQUIRED if required else {}, "an object")
        return Fields(value, self.source, self._where(key), self.fix)

    def array(self, key: str) -> list[Any]:
        """A required JSON array."""
        value: list[Any] = self._typed(key, _REQUIRED, "an array", list)
        return value

    def items(self, key: str) -> list[Fields]:
        """A required array of objects."""
        where = self._where(key)
        return [
            Fields(item, self.source, f"{where}[{i}]", self.fix)
            for i, item in enumerate(self.array(key))
        ]

    def only(self, known: Collection[str]) -> None:
        """Refuse keys outside ``known`` (a flipped bit in a key name must not pass unnoticed)."""
        extra = sorted(set(self.raw) - set(known))
        if extra:
            self._fail(self.path or "the file", f"has unknown keys {extra}")


_REQUIRED: Any = object()


def frozen_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object (callers cannot change a frozen record through it)."""
    copy: dict[str, Any] = json.loads(json.dumps(value))
    return copy
