"""What both console scripts share: one-line errors."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from offgen_tools.errors import OffgenToolsError

__all__ = ["OneLineErrors", "fail"]


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with status 2."""
    typer.secho(f"error: {' '.join(message.split())}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


class OneLineErrors(TyperGroup):
    """A command group whose commands report a user's error in one line, not a traceback.

    Errors of offgen_tools (bad files, flags, filters, a missing extra, a refused WandB API
    request) and the operating system's (a path that cannot be written) end the command with
    ``error: ...`` and status 2; anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context, a private type
        """Run the chosen command, turning a user's error into one line."""
        try:
            return super().invoke(ctx)
        except (OffgenToolsError, OSError) as exc:
            fail(str(exc))
