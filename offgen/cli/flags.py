"""How every offgen console script reads its flags, in one place.

* ``--num_env_steps`` and ``--num-env-steps`` are the same flag: the predecessor's scripts spelled
  flags in snake_case, the usual command-line style is kebab-case, and click compares option names
  through :func:`normalize_flag` (``token_normalize_func``), so both spellings of every flag work.
* A boolean flag takes ``--flag`` / ``--no-flag`` and, like the predecessor's argparse flags,
  ``--flag=True`` / ``--flag False`` (also ``yes/no``, ``1/0``, ``on/off`` after ``=``):
  :class:`OffgenCommand` adds the missing ``--no-`` form and rewrites the valued forms before click
  parses them, since click's own flags take no value.
* Help is click's plain layout (one option per row, names never cut, help text wrapped below them)
  rather than rich's table, which truncates long flag names at 80 columns.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperOption

__all__ = ["CONTEXT_SETTINGS", "FLAG_NOTE", "OffgenCommand", "apply", "normalize_flag"]

_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})
_SEPARATE = frozenset({"true", "false"})  # accepted as the next word: --save_dataset False

FLAG_NOTE = (
    "Every flag can be spelled in snake_case or kebab-case (--num_env_steps = --num-env-steps); "
    "boolean flags take --flag, --no-flag or --flag=True/False."
)


def normalize_flag(name: str) -> str:
    """The form click compares option names in: ``_`` and ``-`` are the same character."""
    return name.replace("_", "-")


CONTEXT_SETTINGS: dict[str, Any] = {"token_normalize_func": normalize_flag}
"""``context_settings`` of every offgen typer app (inherited by its commands)."""


def _long(opts: list[str]) -> str | None:
    return next((o for o in opts if o.startswith("--")), None)


def _truth(value: str, flag: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise typer.BadParameter(f"{flag}: expected True or False, got {value!r}")


class OffgenCommand(TyperCommand):
    """A typer command whose boolean flags also take ``--no-flag`` and ``--flag=VALUE``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperOption) and param.is_bool_flag and not param.secondary_opts:
                name = _long(param.opts)
                if name is not None:
                    param.secondary_opts = [f"--no-{name[2:]}"]

    def _bool_flags(self) -> dict[str, tuple[str, str, bool]]:
        """Normalised flag name -> (on form, off form, whether the name is the on form)."""
        flags: dict[str, tuple[str, str, bool]] = {}
        for param in self.params:
            if not (isinstance(param, TyperOption) and param.is_bool_flag):
                continue
            on, off = _long(param.opts), _long(param.secondary_opts)
            if on is None or off is None:
                continue
            for opt in param.opts:
                flags[normalize_flag(opt)] = (on, off, True)
            for opt in param.secondary_opts:
                flags[normalize_flag(opt)] = (on, off, False)
        return flags

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Rewrite ``--flag=VALUE`` / ``--flag True`` of boolean flags, then parse as click does."""
        flags = self._bool_flags()
        out: list[str] = []
        i = 0
        while i < len(args):
            token = args[i]
            if token == "--":
                out += args[i:]
                break
            name, eq, value = token.partition("=")
            flag = flags.get(normalize_flag(name)) if token.startswith("--") else None
            separate = not eq and i + 1 < len(args) and args[i + 1].lower() in _SEPARATE
            if flag is not None and separate:
                eq, value = "=", args[i + 1]
                i += 1
            if flag is not None and eq:
                on, off, positive = flag
                token = on if _truth(value, name) == positive else off
            out.append(token)
            i += 1
        return super().parse_args(ctx, out)


def _is_block(paragraph: str) -> bool:
    lines = [line for line in paragraph.split("\n") if line.strip()]
    return bool(lines) and all(line[:1].isspace() for line in lines)


def _keep_lines(text: object) -> object:
    """Mark indented paragraphs (examples) so that click prints them as written; prose
    paragraphs are still wrapped to the terminal."""
    if not isinstance(text, str):
        return text  # None, or typer's "not given" marker
    paragraphs = text.split("\n\n")
    return "\n\n".join(f"\b\n{p}" if _is_block(p) else p for p in paragraphs)


def apply(app: typer.Typer) -> None:
    """Make every command registered on ``app`` an :class:`OffgenCommand` (unless it names one),
    its epilog's example blocks kept line by line."""
    app.info.epilog = _keep_lines(app.info.epilog)  # type: ignore[assignment]
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = OffgenCommand
        info.epilog = _keep_lines(info.epilog)  # type: ignore[assignment]
