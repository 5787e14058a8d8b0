"""Turning sweep indices into shell commands: render, print, save, run locally."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from offgen_tools.errors import GridError
from offgen_tools.sweeps.grid import Grid, Setting


def parse_indices(spec: str) -> list[int]:
    """Parse an index list such as ``0-9,12,20-22`` (ranges inclusive).

    Args:
        spec: Comma-separated indices and ``a-b`` ranges.

    Returns:
        Sorted unique indices.

    Raises:
        GridError: On malformed input.
    """
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo or lo < 0:
                    raise ValueError
                out.update(range(lo, hi + 1))
            else:
                value = int(part)
                if value < 0:
                    raise ValueError
                out.add(value)
        except ValueError:
            raise GridError(f"bad index or range {part!r} in {spec!r} (use e.g. 0-9,12)") from None
    return sorted(out)


def sweep_indices(grid: Grid, runs: int = 1, *, start_run: int = 0) -> list[int]:
    """All indices for runs ``start_run .. start_run + runs - 1`` of every setting."""
    return list(range(start_run * grid.size, (start_run + runs) * grid.size))


def _format_arg(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        import json

        return json.dumps(value)
    return str(value)


#: ``{args}`` separator of ``commands --new-line``: one ``--name value`` per line, continued.
NEW_LINE = " \\\n    "


def render(
    template: str,
    setting: Setting,
    extra: Mapping[str, Any] | None = None,
    *,
    separator: str = " ",
) -> str:
    """Fill a command template for one index.

    Placeholders: ``{index}``, ``{setting}``, ``{run}``, ``{seed}``, ``{params[name]}``
    (dotted names for nested parameters) and ``{args}`` (every parameter as
    ``--name value``, shell-quoted), plus any ``extra`` fields (``{module}``).

    Args:
        template: e.g. ``python main.py --agent-json a.json --index {index}``.
        setting: The resolved index.
        extra: More named fields.
        separator: Between the ``--name value`` pairs of ``{args}``; :data:`NEW_LINE` puts
            each on its own shell-continued line (the predecessor's ``make_cmd --new_line``).

    Returns:
        The command line.

    Raises:
        GridError: On an unknown placeholder.
    """
    args = separator.join(
        f"--{name} {shlex.quote(_format_arg(v))}" for name, v in setting.flat.items()
    )
    fields: dict[str, Any] = {
        "index": setting.index,
        "setting": setting.setting,
        "run": setting.run,
        "seed": setting.seed,
        "params": dict(setting.flat),
        "args": args,
        **(extra or {}),
    }
    try:
        return template.format(**fields)
    except (KeyError, IndexError) as exc:
        raise GridError(
            f"command template {template!r} uses unknown field {exc}; known: "
            f"index, setting, run, seed, params[<name>], args"
            + (", " + ", ".join(extra) if extra else "")
        ) from None


def commands_for(
    grid: Grid,
    template: str,
    indices: Iterable[int],
    extra: Mapping[str, Any] | None = None,
    *,
    separator: str = " ",
) -> list[str]:
    """Render the template for each index (see :func:`render`)."""
    return [render(template, grid.resolve(i), extra, separator=separator) for i in indices]


def save_commands(commands: Sequence[str], path: str | Path) -> Path:
    """Write commands one per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{c}\n" for c in commands))
    return path


@dataclass(frozen=True)
class CommandOutcome:
    """The outcome of one command.

    Attributes:
        command: The command line.
        returncode: Its exit status.
    """

    command: str
    returncode: int


def run_commands(
    commands: Sequence[str],
    *,
    jobs: int = 1,
    cwd: str | Path | None = None,
    progress: bool = False,
) -> list[CommandOutcome]:
    """Run commands locally through the shell, ``jobs`` at a time.

    Args:
        commands: Command lines.
        jobs: Parallel commands.
        cwd: Working directory.
        progress: Show a tqdm progress bar.

    Returns:
        One outcome per command, in order.
    """

    def one(command: str) -> CommandOutcome:
        proc = subprocess.run(command, shell=True, cwd=cwd, check=False)
        return CommandOutcome(command, proc.returncode)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        it: Iterable[CommandOutcome] = pool.map(one, commands)
        if progress:
            it = tqdm(it, total=len(commands), desc="commands", unit="cmd")
        return list(it)
