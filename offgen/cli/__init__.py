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

from offgen.cli import flags
from offgen.errors import OffgenError, os_error_message

__all__ = ["app", "collect_main", "download_main", "main", "run_app"]

_EPILOG = f"""
Examples:

  offgen list                              # registered datasets and your own

  offgen download --dataset expert_1M --games coinrun

  offgen info my_random --game coinrun     # $OFFGEN_HOME/datasets/my_random

  offgen collect --game coinrun --policy random --num-env-steps 100000 \\
      --dataset my_random --output $OFFGEN_HOME/datasets/my_random/coinrun

  offgen push my_random --game coinrun --repo my-lab/offgen-procgen

Run offgen COMMAND --help for a command's flags and examples. {flags.FLAG_NOTE}
"""

app = typer.Typer(
    name="offgen",
    help="Offline-RL datasets for Procgen: list, inspect, convert, verify, collect, download, share.",
    epilog=_EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help: rich's table cuts long flag names at 80 columns
    context_settings=flags.CONTEXT_SETTINGS,
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
    flags.apply(app)


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


def _single_command_app(name: str, prog_name: str) -> None:
    """Run the ``offgen NAME`` command alone, as registered (help, examples, flags)."""
    single = typer.Typer(
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings=flags.CONTEXT_SETTINGS,
    )
    single.registered_commands = [i for i in app.registered_commands if i.name == name]
    run_app(single, prog_name)


def download_main() -> None:
    """Entry point of ``offgen-download`` (same as ``offgen download``)."""
    _single_command_app("download", "offgen-download")


def collect_main() -> None:
    """Entry point of ``offgen-collect`` (same as ``offgen collect``)."""
    _single_command_app("collect", "offgen-collect")
