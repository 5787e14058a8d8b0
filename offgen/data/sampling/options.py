"""The settings every sampler shares, in one frozen, validated value.

:class:`SamplerOptions` holds what ``ds.transitions``, ``ds.windows`` and ``offgen.data.mix`` have in
common (seed, frame stack, layout, strategy, epochs, memory budget, progress bars) and the stream
strategy's :class:`StreamOptions`. Those calls also take the same settings as keywords
(:class:`SamplerKeywords`); :func:`resolve_options` turns the keywords into the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from offgen.data.sampling.strategy import Strategy, parse_bytes
from offgen.data.schema import Layout

__all__ = ["SamplerKeywords", "SamplerOptions", "StreamOptions", "resolve_options"]

DEFAULT_UNIT_FRAMES = 4096
DEFAULT_POOL_BYTES = 1 << 30


@dataclass(frozen=True)
class StreamOptions:
    """Settings of the ``stream`` strategy (see ``docs/sampling.md``).

    Attributes:
        pool_bytes: Memory for the pool's decoded frames (default 1 GiB).
        unit_frames: Target store frames per unit (a run of whole episodes read with one call).
        reuse: Expected draws of each step while it is in the pool.
    """

    pool_bytes: int = DEFAULT_POOL_BYTES
    unit_frames: int = DEFAULT_UNIT_FRAMES
    reuse: float = 1.0

    def __post_init__(self) -> None:
        if self.pool_bytes < 1 or self.unit_frames < 1 or not self.reuse > 0:
            raise ValueError(
                f"stream options need pool_bytes >= 1, unit_frames >= 1 and reuse > 0, got "
                f"{self.pool_bytes}, {self.unit_frames}, {self.reuse}"
            )


@dataclass(frozen=True)
class SamplerOptions:
    """Settings shared by every sampler.

    Attributes:
        seed: Seed; the same seed gives the same batches.
        frame_stack: Frames per observation ``k``; stacks are padded at episode starts by
            repeating the first frame.
        layout: ``"HWC"`` (as stored) or ``"CHW"``; frames are decoded in this layout once, so
            both cost the same per batch.
        strategy: ``"ram"``, ``"memmap"``, ``"stream"`` or ``"auto"`` (chosen by budget).
        replacement: ``True``: uniform draws; ``False``: epochs, each position once per epoch
            (``ram`` / ``memmap`` only).
        memory_budget: Bytes (or ``"8G"``) ``auto`` may spend on decoded frames in RAM.
        progress: Show progress bars while decoding.
        stream: Settings of the ``stream`` strategy.

    Raises:
        ValueError: On a value out of range (named in the message).
    """

    seed: int = 0
    frame_stack: int = 1
    layout: Layout = "HWC"
    strategy: Strategy = "auto"
    replacement: bool = True
    memory_budget: int | str | None = None
    progress: bool = True
    stream: StreamOptions = field(default_factory=StreamOptions)

    def __post_init__(self) -> None:
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {self.frame_stack}")
        if self.layout not in ("HWC", "CHW"):
            raise ValueError(f"layout must be 'HWC' or 'CHW', got {self.layout!r}")
        if self.strategy not in ("auto", "ram", "memmap", "stream"):
            raise ValueError(
                f"unknown strategy {self.strategy!r}; use 'auto', 'ram', 'memmap' or 'stream'"
            )
        if self.strategy == "stream" and not self.replacement:
            raise ValueError(_NO_STREAM_EPOCHS)
        if self.memory_budget is not None:
            parse_bytes(self.memory_budget)  # a bad size fails here, not at the first auto choice


_NO_STREAM_EPOCHS = (
    "replacement=False (exact epochs) needs strategy='ram' or 'memmap'; the stream strategy "
    "visits data in shuffled blocks instead"
)


class SamplerKeywords(TypedDict, total=False):
    """The fields of :class:`SamplerOptions` and :class:`StreamOptions` as keywords."""

    seed: int
    frame_stack: int
    layout: Layout
    strategy: Strategy
    replacement: bool
    memory_budget: int | str | None
    progress: bool
    pool_bytes: int
    unit_frames: int
    reuse: float


_STREAM = frozenset(f.name for f in dataclasses.fields(StreamOptions))
_SHARED = frozenset(f.name for f in dataclasses.fields(SamplerOptions)) - {"stream"}


def resolve_options(options: SamplerOptions | None, keywords: Mapping[str, Any]) -> SamplerOptions:
    """``options`` (default settings when ``None``) with the fields named in ``keywords`` replaced.

    Raises:
        TypeError: If a keyword names no option.
        ValueError: If a value is out of range.
    """
    base = options if options is not None else SamplerOptions()
    unknown = set(keywords) - _SHARED - _STREAM
    if unknown:
        raise TypeError(
            f"unknown options {sorted(unknown)}; sampler options are {sorted(_SHARED)} and "
            f"stream options are {sorted(_STREAM)}"
        )
    if not keywords:
        return base
    stream = {k: v for k, v in keywords.items() if k in _STREAM}
    shared = {k: v for k, v in keywords.items() if k in _SHARED}
    return dataclasses.replace(base, stream=dataclasses.replace(base.stream, **stream), **shared)


def stream_epochs_error() -> ValueError:
    """The error for exact epochs (``replacement=False``) on the stream strategy."""
    return ValueError(_NO_STREAM_EPOCHS)
