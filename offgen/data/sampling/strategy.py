"""Choosing where decoded frames live: ``ram``, ``memmap`` or ``stream``.

``auto`` picks, in order:

1. ``memmap`` if a current frame cache of the store already exists (opening it costs nothing);
2. ``ram`` if the selected episodes' decoded frames fit in the memory budget;
3. ``memmap`` if the store's decoded frames fit on the cache disk (keeping 10% of it free) and the
   store is not bigger than the disk budget;
4. ``stream`` otherwise (bounded memory whatever the dataset size).

The memory budget defaults to half the memory available now (``psutil``), overridable by
``memory_budget=`` or ``$OFFGEN_MEMORY_BUDGET`` (bytes, or with a ``K``/``M``/``G`` suffix); the disk
budget by ``disk_budget=`` or ``$OFFGEN_DISK_BUDGET``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

__all__ = ["Strategy", "StrategyChoice", "choose_strategy", "parse_bytes"]

Strategy = Literal["auto", "ram", "memmap", "stream"]

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text: str | int) -> int:
    """``"2G"`` -> 2147483648; plain integers pass through.

    Raises:
        ValueError: On anything else.
    """
    if isinstance(text, int):
        return text
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _SUFFIX else ""
    number = raw[: len(raw) - len(unit)]
    try:
        return int(float(number) * _SUFFIX[unit])
    except ValueError as exc:
        raise ValueError(f"cannot read {text!r} as a size in bytes (e.g. 4G, 512M)") from exc


@dataclass(frozen=True)
class StrategyChoice:
    """The strategy chosen and why (shown in logs and ``repr``)."""

    strategy: Literal["ram", "memmap", "stream"]
    reason: str


def _free_disk(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def choose_strategy(
    requested: Strategy,
    *,
    selected_bytes: int,
    store_bytes: int,
    cache_exists: bool,
    cache_root: Path,
    memory_budget: int | str | None = None,
    disk_budget: int | str | None = None,
) -> StrategyChoice:
    """Resolve ``requested`` (``auto`` or an explicit strategy) to a concrete one.

    Args:
        requested: The user's choice.
        selected_bytes: Decoded bytes of the selected episodes' frames (what ``ram`` holds).
        store_bytes: Decoded bytes of every frame of the store (what the memmap cache holds).
        cache_exists: Whether a current frame cache is already on disk.
        cache_root: Where the cache would be written (its free space is checked).
        memory_budget: Bytes ``ram`` may use.
        disk_budget: Bytes the cache may use.
    """
    if requested != "auto":
        if requested not in ("ram", "memmap", "stream"):
            raise ValueError(
                f"unknown strategy {requested!r}; use 'auto', 'ram', 'memmap' or 'stream'"
            )
        return StrategyChoice(requested, "requested")
    if cache_exists:
        return StrategyChoice("memmap", "a frame cache of this store already exists")
    env_mem = os.environ.get("OFFGEN_MEMORY_BUDGET")
    mem = parse_bytes(
        memory_budget
        if memory_budget is not None
        else env_mem
        if env_mem
        else psutil.virtual_memory().available // 2
    )
    if selected_bytes <= mem:
        return StrategyChoice(
            "ram",
            f"{selected_bytes / 2**30:.2f} GiB of frames fit the {mem / 2**30:.2f} GiB budget",
        )
    env_disk = os.environ.get("OFFGEN_DISK_BUDGET")
    free = int(_free_disk(cache_root) * 0.9)
    disk = min(free, parse_bytes(disk_budget if disk_budget is not None else env_disk or free))
    if store_bytes <= disk:
        return StrategyChoice(
            "memmap",
            f"frames exceed the memory budget ({mem / 2**30:.2f} GiB) but fit on disk "
            f"({disk / 2**30:.1f} GiB)",
        )
    return StrategyChoice(
        "stream",
        f"frames ({store_bytes / 2**30:.1f} GiB) fit neither memory ({mem / 2**30:.1f} GiB) "
        f"nor disk ({disk / 2**30:.1f} GiB)",
    )
