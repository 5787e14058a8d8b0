"""Progress bars that suit where stderr goes: live bars on a terminal, one line per step in logs.

Every progress bar offgen shows is made by :func:`progress_bar`. On a terminal (or in a notebook)
it is a live tqdm bar. When stderr is a file or a pipe (a batch job's log, ``nohup``, CI), a live
bar would write a carriage-return update every fraction of a second into the log, so there the bar
stays silent while it runs and writes one plain line when its step ends, e.g.
``decoding frames: 100% 20000/20000 [00:02<00:00, 9.1kframe/s]``.

``OFFGEN_PROGRESS`` overrides the choice: ``auto`` (the default, as above), ``bars`` (live bars
anywhere), ``lines`` (one line per step anywhere) or ``off`` (nothing).
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any, Literal

import tqdm.auto
import tqdm.autonotebook
import tqdm.std

from offgen.errors import UnknownNameError

__all__ = ["ProgressMode", "progress_bar", "progress_mode"]

ProgressMode = Literal["bars", "lines", "off"]

_MODES = ("auto", "bars", "lines", "off")


def progress_mode() -> ProgressMode:
    """How bars are shown now: ``OFFGEN_PROGRESS``, else ``bars`` on a terminal or in a notebook.

    Raises:
        UnknownNameError: If ``OFFGEN_PROGRESS`` holds another value.
    """
    value = os.environ.get("OFFGEN_PROGRESS", "auto").strip().lower() or "auto"
    if value not in _MODES:
        raise UnknownNameError(
            f"OFFGEN_PROGRESS={value!r} is not a progress mode; use one of {', '.join(_MODES)}"
        )
    if value != "auto":
        return value  # type: ignore[return-value]
    if tqdm.autonotebook.tqdm is not tqdm.std.tqdm:  # a notebook: widgets, not text, are shown
        return "bars"
    stream = sys.stderr
    return "bars" if stream is not None and stream.isatty() else "lines"


class _LineBar(tqdm.std.tqdm):  # type: ignore[type-arg]
    """A tqdm that draws nothing while it runs and writes one summary line to stderr on close."""

    def display(self, msg: str | None = None, pos: int | None = None) -> None:
        return None

    def close(self) -> None:
        if not getattr(self, "disable", True):
            meter = dict(self.format_dict)
            meter["ncols"] = 0  # statistics only: no bar drawn in a log
            line = self.format_meter(**meter)
            super().close()
            print(line, file=sys.stderr, flush=True)
        else:
            super().close()


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> tqdm.std.tqdm:  # type: ignore[type-arg]
    """A progress bar for one step of work (tqdm's arguments), shown as :func:`progress_mode` says.

    Args:
        iterable: What to iterate, as for ``tqdm``.
        enabled: ``False`` shows nothing (a caller's ``progress=False``).
        **kwargs: Passed to ``tqdm`` (``total``, ``desc``, ``unit``, ``leave``, ...).
    """
    mode = progress_mode() if enabled else "off"
    if mode == "bars":
        return tqdm.auto.tqdm(iterable, **kwargs)
    if mode == "off":
        return tqdm.std.tqdm(iterable, disable=True, **kwargs)
    kwargs.pop("dynamic_ncols", None)
    kwargs.pop("position", None)
    return _LineBar(iterable, file=io.StringIO(), **kwargs)
