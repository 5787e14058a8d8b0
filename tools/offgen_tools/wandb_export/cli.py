"""``offgen-wandb``: download WandB metrics into folder layouts, or export them to NumPy/CSV."""

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from offgen_tools._cli import OneLineErrors, fail
from offgen_tools.runs.api import ApiSource, default_api
from offgen_tools.runs.cache import HistoryCache
from offgen_tools.runs.engine import RunQuery, RunSource
from offgen_tools.runs.offline import OfflineSource
from offgen_tools.wandb_export.exporter import export_experiment
from offgen_tools.wandb_export.layouts import BUILTIN_LAYOUTS, SELECTIONS, Layout, load_layouts
from offgen_tools.wandb_export.presets import download, options_from
from offgen_tools.wandb_export.yaml_config import load_config

#: Options that take several values (``--levels 1 2 3``, as in the original scripts).
LIST_FLAGS = frozenset(
    {
        "--levels",
        "--seeds",
        "--envs",
        "--metrics",
        "--algos",
        "--wandb-tags",
        "--wandb_tags",
        "--include-runs",
        "--include_runs",
        "--states",
        "--forbidden-tags",
        "--forbidden_tags",
        "--offline-dir",
        "--config-key",
        "-e",
        "--experiments",
    }
)

#: Factory of the ``wandb.Api`` object used for server downloads (replaceable for embedding).
API_FACTORY: Callable[[], Any] = default_api

app = typer.Typer(
    help=(
        "Download WandB metrics into folder layouts or export histories to NumPy/CSV.\n\n"
        "download: offgen's own runs (Procgen games, the baselines' algorithms). "
        "tags, cost-scale, safety-bound: the seed project's presets.\n\n"
        "Examples:\n\n"
        "  offgen-wandb download --project my-team/offgen --envs coinrun bigfish --algos bc cql\n\n"
        "  offgen-wandb download --project offgen --offline-dir ./wandb\n\n"
        "  offgen-wandb tags --project safety-doom/experiments --wandb-tags NIPS\n\n"
        "  offgen-wandb cost-scale --project safety-doom/experiments --envs armament_burden volcanic_venture\n\n"
        "  offgen-wandb safety-bound --project safety-doom/experiments --hard-constraint --levels 1 2\n\n"
        "  offgen-wandb tags --project p --offline-dir ./wandb --metrics reward/reward --overwrite\n\n"
        "  offgen-wandb layout --layout-file my_layouts.yaml --name lr_sweep --project team/p\n\n"
        "  offgen-wandb export config.yaml -e my_experiment1 my_experiment2 -o"
    ),
    no_args_is_help=True,
    cls=OneLineErrors,
    add_completion=False,
)


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """Expand ``--flag a b c`` into ``--flag a --flag b --flag c`` for list options.

    The original scripts took several values after one flag; typer wants the flag repeated.
    Values may also be comma-separated (``--levels 1,2``). A YAML path after ``-e`` ends the
    experiment list.

    Args:
        argv: Command-line arguments (without the program name).

    Returns:
        The expanded arguments.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        flag, eq, inline = token.partition("=")
        if flag in LIST_FLAGS:
            values: list[str] = [inline] if eq else []
            i += 1
            while i < len(argv) and not (argv[i].startswith("-") and not _is_number(argv[i])):
                if flag in ("-e", "--experiments") and argv[i].endswith((".yaml", ".yml")):
                    break
                values.append(argv[i])
                i += 1
            for value in values:
                for part in value.split(",") if flag != "--config-key" else [value]:
                    if part:
                        out += [flag, part]
            if not values:
                out.append(flag)
            continue
        out.append(token)
        i += 1
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _query(
    project: str,
    offline_dirs: Sequence[Path] | None,
    workers: int,
    cache_dir: Path | None,
    no_cache: bool,
) -> RunQuery:
    source: RunSource
    if offline_dirs:
        source = OfflineSource(offline_dirs, project=project)
    else:
        source = ApiSource(API_FACTORY(), project)
    cache = None if no_cache else HistoryCache(cache_dir)
    return RunQuery(source, cache=cache, max_workers=workers)


def _samples(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        fail(f"--samples must be 'all' or a positive integer, got {text!r}")
    return value


ListOpt = list[str] | None
# The run-source options of every command.
OfflineDirOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--offline-dir",
        help="Read offline runs from these folders instead of the server "
        "(export: overrides the config's offline_dirs).",
    ),
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Concurrent history downloads.")]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="History cache (default: $OFFGEN_TOOLS_CACHE)."),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not use the history cache.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def _run_layout(layout: Layout, params: dict[str, Any]) -> None:
    if params["hard_constraint"] and not layout.hard_constraint:
        fail(f"layout {layout.name!r} has no hard-constraint mode")
    for name, ctor in (("levels", int), ("seeds", int)):
        values = params.get(name)
        if values is not None:
            try:
                params[name] = [ctor(v) for v in values]
            except ValueError:
                fail(f"--{name} takes integers, got {values}")
    if params.get("config_key"):
        keys = dict(layout.config_keys)
        for item in params["config_key"]:
            name, sep, key = item.partition("=")
            if not sep or name not in keys:
                fail(
                    f"--config-key takes PLACEHOLDER=CONFIG_KEY with a placeholder in {sorted(keys)}, got {item!r}"
                )
            keys[name] = key
        layout = Layout(
            layout.name, layout.path, keys, layout.defaults, layout.hard_constraint, layout.help
        )
    if params.get("tags_from_config"):
        params["tags_field"] = f"config.{params['tags_from_config']}"
    params["samples"] = _samples(params["samples"])
    opts = options_from(layout, params["project"], params)
    query = _query(
        params["project"],
        params.get("offline_dir"),
        params["workers"],
        params["cache_dir"],
        params["no_cache"],
    )
    summary = download(layout, opts, query, progress=not params["quiet"])
    typer.echo(summary.render())
    if params.get("summary_json"):
        Path(params["summary_json"]).write_text(json.dumps(summary.to_json(), indent=1))
    if summary.failed:
        raise typer.Exit(1)


def _shown(layout: Layout, flag: str) -> str:
    """A selection flag's default for its help: the values, or what an empty one means."""
    placeholder = dict(SELECTIONS).get(flag)
    if placeholder is not None and placeholder not in layout.config_keys:
        return f"not read by this layout: no {placeholder!r} config key"
    values = layout.default(flag)
    if not values:
        return "default: none" if flag == "forbidden_tags" else "default: any"
    return f"default: {' '.join(str(v) for v in values)}"


def _layout_command(layout: Layout) -> Callable[..., None]:
    def command(
        project: Annotated[str, typer.Option("--project", help="WandB project, entity/project.")],
        levels: Annotated[
            ListOpt, typer.Option("--levels", help=f"Levels ({_shown(layout, 'levels')}).")
        ] = None,
        seeds: Annotated[
            ListOpt, typer.Option("--seeds", help=f"Seeds ({_shown(layout, 'seeds')}).")
        ] = None,
        envs: Annotated[
            ListOpt, typer.Option("--envs", help=f"Environments ({_shown(layout, 'envs')}).")
        ] = None,
        metrics: Annotated[
            ListOpt,
            typer.Option(
                "--metrics",
                help=f"Metrics as KEY or KEY=FILE_STEM ({_shown(layout, 'metrics')}).",
            ),
        ] = None,
        algos: Annotated[
            ListOpt, typer.Option("--algos", help=f"Algorithms ({_shown(layout, 'algos')}).")
        ] = None,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output", help=f"Base output folder (default: {layout.default('output')})."
            ),
        ] = None,
        wandb_tags: Annotated[
            ListOpt,
            typer.Option(
                "--wandb-tags",
                "--wandb_tags",
                help=f"Runs must carry one of these tags ({_shown(layout, 'wandb_tags')}).",
            ),
        ] = None,
        hard_constraint: Annotated[
            bool,
            typer.Option(
                "--hard-constraint",
                "--hard_constraint",
                help="Hard-constraint runs, files named *_hard.json.",
            ),
        ] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Rewrite existing files.")
        ] = False,
        include_runs: Annotated[
            ListOpt,
            typer.Option(
                "--include-runs",
                "--include_runs",
                help="Run names/ids forced in regardless of filters.",
            ),
        ] = None,
        states: Annotated[
            ListOpt,
            typer.Option("--states", help=f"Run states ({_shown(layout, 'states')})."),
        ] = None,
        forbidden_tags: Annotated[
            ListOpt,
            typer.Option(
                "--forbidden-tags",
                "--forbidden_tags",
                help=f"Excluded unless also in --wandb-tags ({_shown(layout, 'forbidden_tags')}).",
            ),
        ] = None,
        tags_from_config: Annotated[
            str | None,
            typer.Option(
                "--tags-from-config",
                help="Read tags from this config key (the original used wandb_tags).",
            ),
        ] = None,
        config_key: Annotated[
            ListOpt,
            typer.Option(
                "--config-key", help="Override a placeholder's config key: PLACEHOLDER=KEY."
            ),
        ] = None,
        default_tag: Annotated[
            str | None,
            typer.Option("--default-tag", help="{tag} when no requested tag (default: main)."),
        ] = None,
        samples: Annotated[
            str, typer.Option("--samples", help="'all' (complete history) or sampled rows.")
        ] = "all",
        legacy_lists: Annotated[
            bool,
            typer.Option(
                "--legacy-lists",
                help="Write bare lists of floats (NaNs dropped, steps lost) like the original.",
            ),
        ] = False,
        offline_dir: OfflineDirOpt = None,
        workers: WorkersOpt = 8,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        summary_json: Annotated[
            Path | None, typer.Option("--summary-json", help="Also write the summary as JSON.")
        ] = None,
        quiet: QuietOpt = False,
    ) -> None:
        _run_layout(layout, dict(locals()))

    select = (
        "--levels 1 2 --seeds 1 2 3"
        if "level" in layout.config_keys
        else "--envs coinrun --seeds 1 2"
    )
    command.__doc__ = (
        f"{layout.help}\n\nExamples:\n\n  offgen-wandb {layout.name} --project team/proj {select}\n\n"
        f"  offgen-wandb {layout.name} --project team/proj --offline-dir ./wandb --overwrite --legacy-lists"
    )
    return command


for _name, _layout in BUILTIN_LAYOUTS.items():
    app.command(_name)(_layout_command(_layout))


@app.command("layout", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def layout_cmd(
    ctx: typer.Context,
    layout_file: Annotated[
        Path, typer.Option("--layout-file", help="YAML/JSON file of layouts.", exists=True)
    ],
    name: Annotated[str, typer.Option("--name", help="Layout name in the file.")],
) -> None:
    """Download with a layout defined in a file; all preset options follow.

    Examples:

      offgen-wandb layout --layout-file layouts.yaml --name lr_sweep --project team/proj --levels 1

      offgen-wandb layout --layout-file layouts.yaml --name lr_sweep --help-options
    """
    layouts = load_layouts(layout_file)
    if name not in layouts:
        fail(f"{layout_file}: no layout {name!r}; available: {sorted(layouts)}")
    sub = typer.Typer(add_completion=False)
    sub.command(name)(_layout_command(layouts[name]))
    args = list(ctx.args)
    if "--help-options" in args:
        args = ["--help"]
    # Not standalone, so the sub-command returns its exit status instead of exiting: pass it on.
    status = sub(args=args, prog_name=f"offgen-wandb layout --name {name}", standalone_mode=False)
    if isinstance(status, int) and status != 0:
        raise typer.Exit(status)


@app.command("export")
def export_cmd(
    config: Annotated[
        Path,
        typer.Argument(help="YAML config (DEFAULT + experiments).", exists=True, dir_okay=False),
    ],
    overwrite: Annotated[
        bool, typer.Option("-o", "--overwrite", help="Overwrite previously exported data.")
    ] = False,
    experiments: Annotated[
        list[str] | None,
        typer.Option("-e", "--experiments", help="Only these experiments (several after one -e)."),
    ] = None,
    offline_dir: OfflineDirOpt = None,
    workers: WorkersOpt = 8,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Export run histories to NumPy (.npz) or CSV matrices (runs x steps, NaN-padded).

    Examples:

      offgen-wandb export config.yaml

      offgen-wandb export config.yaml -o -e my_experiment1 my_experiment2

      offgen-wandb export config.yaml --offline-dir ./wandb
    """
    exps = load_config(config)
    if experiments:
        known = {e.name for e in exps}
        unknown = sorted(set(experiments) - known)
        if unknown:
            fail(f"{config}: unknown experiment(s) {unknown}; available: {sorted(known)}")
        exps = [e for e in exps if e.name in experiments]
    failures = 0
    for exp in exps:
        dirs = offline_dir or list(exp.offline_dirs)
        query = _query(exp.path, dirs, workers, cache_dir, no_cache)
        result = export_experiment(exp, query, overwrite=overwrite, progress=not quiet)
        if result.skipped:
            typer.echo(f"{exp.name}: skipped: {result.skipped}")
            continue
        typer.echo(
            f"{exp.name}: {result.runs} runs -> {len(result.files)} files in {exp.output_dir}"
        )
        for line in result.failed:
            typer.echo(f"  failed: {line}")
        failures += len(result.failed)
    if failures:
        raise typer.Exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (expands multi-value flags first)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = normalize_argv(sys.argv[1:] if argv is None else argv)
    app(args=args, prog_name="offgen-wandb")


if __name__ == "__main__":
    main()
