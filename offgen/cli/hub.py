"""CLI: ``offgen download`` (also ``offgen-download``), ``offgen push``, ``offgen pull``, ``offgen card``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["download", "register"]


def download(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            "--category",
            "--category_name",
            "-d",
            help="Dataset name or the predecessor's category: expert_1M (1M_E), mixed_1M (1M_S), "
            "expert_10M (10M), suboptimal_25M (25M), level1_expert_100k (level_1_E), ...",
        ),
    ],
    games: Annotated[
        list[str] | None,
        typer.Option(
            "--games",
            "-g",
            help="Games to fetch; repeat the flag or separate by commas (default: all 16).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "--download_folder",
            "-o",
            help="Parent folder; each dataset gets its own subfolder (default: $OFFGEN_HOME/datasets, "
            "where offgen.load looks).",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="offgen: convert into one offgen store per game (default). legacy: keep the "
            "unpacked predecessor files under <output>/<dataset>/legacy/<game>/.",
        ),
    ] = "offgen",
    clear_archives: Annotated[
        bool,
        typer.Option(
            "--clear-archives",
            "--clear_archives_after_unpacking",
            help="Delete each archive once its contents are unpacked (and converted) and verified.",
        ),
    ] = False,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Games in parallel.")] = 4,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="OFFGEN_BASE_URL",
            help="Mirror base replacing https://dl.fbaipublicfiles.com/DGRL: an http(s) URL, a "
            "file:// URL or a local folder with the same tree; several separated by commas.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Download the published Procgen offline datasets, verified and resumable.

    Each archive is downloaded (resuming a partial file), checked against the sizes and sha256
    recorded in <output>/<dataset>/offgen.lock.json by the first verified download, unpacked safely
    and converted into an offgen store. Rerun the same command after an interruption to continue.

    Examples:

      offgen-download --dataset expert_1M --games coinrun,maze

      offgen-download --category 1M_E --output /data/procgen --clear-archives

      OFFGEN_BASE_URL=http://mirror.lab/DGRL offgen download -d mixed_1M -g chaser --format legacy
    """
    from offgen.hub.download import download_dataset, format_bytes

    if fmt not in ("offgen", "legacy"):
        raise typer.BadParameter("--format must be 'offgen' or 'legacy'")
    names = [g.strip() for item in (games or []) for g in item.split(",") if g.strip()]
    results = download_dataset(
        dataset,
        names or None,
        output=output,
        fmt=fmt,  # type: ignore[arg-type]
        clear_archives=clear_archives,
        workers=workers,
        base_url=base_url,
        progress=not quiet,
    )
    for result in results:
        size = f" ({format_bytes(result.bytes)})" if result.bytes else ""
        typer.echo(f"{result.game}\t{result.status}{size}\t{result.path}")


def register(app: typer.Typer) -> None:
    """Add the hub commands to the ``offgen`` app."""
    app.command("download")(download)
