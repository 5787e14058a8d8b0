"""The ``offgen`` command line (typer).

Each command group lives in its own module with a ``register(app)`` function, so features add
commands without touching each other. Errors derived from :class:`offgen.errors.OffgenError` are
printed as one ``error: ...`` line (exit status 2), never as a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

# No offgen command does BLAS work, but numpy's bundled OpenBLAS starts a thread per core at import
# that spins for a while: on a 2-core machine ~0.1 CPU-s taken from decoding and compression.
# Before numpy is imported; a value the user set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from offgen.errors import OffgenError, os_error_message

__all__ = ["app", "collect_main", "download_main", "main", "run_app"]

app = typer.Typer(
    name="offgen",
    help="Offline-RL datasets for Procgen: list, inspect, convert, verify, collect, download, share.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Command modules; each defines register(app).
_COMMAND_MODULES = (
    "offgen.cli.data",
    "offgen.cli.collect",
    "offgen.cli.hub",
    "offgen.cli.evaluate",
)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def run_app(application: Callable[..., object], prog_name: str) -> None:
    """Run a typer app, turning offgen errors into one clear line and exit status 2."""
    try:
        application(prog_name=prog_name)
    except OffgenError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except (
        OSError
    ) as exc:  # the machine refused: full disk, read-only file system, a file in the way
        typer.secho(f"error: {os_error_message(exc)}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted; rerun the same command to resume", err=True)
        sys.exit(130)


def main() -> None:
    """Entry point of ``offgen``."""
    run_app(app, "offgen")


def _single_command_app(module: str, attribute: str, prog_name: str) -> None:
    command = getattr(importlib.import_module(module), attribute)
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command()(command)
    run_app(single, prog_name)


def download_main() -> None:
    """Entry point of ``offgen-download`` (same as ``offgen download``)."""
    _single_command_app("offgen.cli.hub", "download", "offgen-download")


def collect_main() -> None:
    """Entry point of ``offgen-collect`` (same as ``offgen collect``)."""
    _single_command_app("offgen.cli.collect", "collect", "offgen-collect")
