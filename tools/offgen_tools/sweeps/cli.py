"""``offgen-sweep``: sweeps by index from the command line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from offgen_tools._cli import OneLineErrors, fail
from offgen_tools.errors import GridError, ResultError
from offgen_tools.sweeps.analysis import rank_settings
from offgen_tools.sweeps.commands import (
    NEW_LINE,
    commands_for,
    parse_indices,
    run_commands,
    save_commands,
    sweep_indices,
)
from offgen_tools.sweeps.grid import SeedRule, SweepConfig, find_grid_config, load_sweep
from offgen_tools.sweeps.offline import combine_offline_runs, offline_table, table_markdown
from offgen_tools.sweeps.plot import plot_best, plot_offline_table
from offgen_tools.sweeps.results import Combined, combine, load_combined
from offgen_tools.sweeps.submit import Resources, submit

app = typer.Typer(
    help=(
        "Hyperparameter sweeps by index: setting = index mod N, run = index div N.\n\n"
        "Examples:\n\n"
        "  offgen-sweep show sweep.json\n\n"
        "  offgen-sweep show sweep.json --index 37\n\n"
        "  offgen-sweep show sweep.json --find critic_lr=0.1 --runs 5\n\n"
        "  offgen-sweep commands sweep.json -t 'python main.py --index {index}' --runs 5 --save cmds.txt\n\n"
        "  offgen-sweep submit sweep.json -t 'python main.py --index {index}' --runs 5 --per-task 4 --time-min 30\n\n"
        "  offgen-sweep combine results/pendulum -o results/pendulum/data.json\n\n"
        "  offgen-sweep best results/pendulum/data.json --metric eval_episode_rewards --last-k 5\n\n"
        "  offgen-sweep plot SAC=results/sac/data.json --metric eval_episode_rewards --out plots/pendulum --stat iqm\n\n"
        "  offgen-sweep table runs/offline --out results/offline"
    ),
    no_args_is_help=True,
    cls=OneLineErrors,
    add_completion=False,
)

SweepArg = Annotated[
    Path, typer.Argument(help="Sweep JSON file (parameters as lists).", exists=True, dir_okay=False)
]
OrderOpt = Annotated[
    str | None,
    typer.Option(
        "--order", help="Index order: first-fastest (default) or last-fastest. Overrides the file."
    ),
]
SeedRuleOpt = Annotated[
    str | None,
    typer.Option(
        "--seed-rule", help="Seed rule: 'offset[:N]' (seed = N + run) or 'legacy' (32767 - run)."
    ),
]
TemplateOpt = Annotated[
    str | None,
    typer.Option(
        "--template",
        "-t",
        help="Command template with {index} {setting} {run} {seed} {params[name]} {args}. Default: the file's 'command'.",
    ),
]
RunsOpt = Annotated[
    int,
    typer.Option(
        "--runs",
        "-r",
        "--num_trials",
        "--num-trials",
        help="Runs per setting (indices 0 .. N*runs-1); seed = the rule's base + run.",
    ),
]
OptionalSweepArg = Annotated[
    Path | None,
    typer.Argument(
        help="Sweep JSON file (or name it with --grid_config).", exists=True, dir_okay=False
    ),
]
GridConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--grid_config",
        "--grid-config",
        help="Config name instead of a file: baselines/configs/<base_config>/<dir>/<NAME>.json.",
    ),
]
BaseConfigOpt = Annotated[
    str, typer.Option("--base_config", "--base-config", help="offline or online (--grid_config).")
]
ConfigDirOpt = Annotated[str, typer.Option("--dir", help="grids or final (--grid_config).")]
ModuleOpt = Annotated[
    str | None,
    typer.Option(
        "--module_name",
        "--module-name",
        help="Fills the template's {module} (e.g. baselines.evaluate_offline); without a "
        "template: 'python -m MODULE {args} --seed {seed}'.",
    ),
]
IndicesOpt = Annotated[
    str | None, typer.Option("--indices", "-i", help="Explicit indices, e.g. 0-9,12.")
]


def _seed_rule(spec: str | None) -> SeedRule | None:
    if spec is None:
        return None
    if spec == "legacy":
        return SeedRule("legacy")
    kind, _, offset = spec.partition(":")
    if kind != "offset":
        fail(f"--seed-rule must be 'offset[:N]' or 'legacy', got {spec!r}")
    try:
        return SeedRule("offset", int(offset or 0))
    except ValueError:
        fail(f"--seed-rule offset must be an integer, got {offset!r}")


def _load(path: Path, order: str | None, seed_rule: str | None) -> SweepConfig:
    return load_sweep(path, order=order, seed_rule=_seed_rule(seed_rule))


def _sweep_file(sweep_file: Path | None, grid_config: str | None, base: str, folder: str) -> Path:
    if (sweep_file is None) == (grid_config is None):
        fail("pass a sweep file or --grid_config NAME (one of them)")
    return (
        sweep_file if sweep_file is not None else find_grid_config(str(grid_config), base, folder)
    )


def _module_template(
    sweep: SweepConfig, template: str | None, module: str | None
) -> tuple[str, dict[str, str]]:
    """The template and its ``{module}`` field: ``--module_name``, else the file's ``module``."""
    chosen = module or sweep.module
    if module and not (template or sweep.command):
        template = "python -m {module} {args} --seed {seed}"
    text = _template(sweep, template)
    if module and "{module}" not in text:
        fail(f"--module_name {module}: the command template has no {{module}} field: {text!r}")
    return text, ({"module": chosen} if chosen else {})


def _indices(sweep: SweepConfig, runs: int, indices: str | None) -> list[int]:
    return parse_indices(indices) if indices else sweep_indices(sweep.grid, runs)


def _template(sweep: SweepConfig, template: str | None) -> str:
    chosen = template or sweep.command
    if not chosen:
        fail("no command template: pass --template or add a 'command' key to the sweep file")
    return str(chosen)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


@app.command()
def show(
    sweep_file: SweepArg,
    index: Annotated[int | None, typer.Option("--index", help="Resolve one index.")] = None,
    find: Annotated[
        list[str] | None,
        typer.Option("--find", help="name=value (JSON value); repeat. Lists matching indices."),
    ] = None,
    runs: RunsOpt = 1,
    order: OrderOpt = None,
    seed_rule: SeedRuleOpt = None,
) -> None:
    """Describe the grid, resolve an index, or find the indices of a setting.

    Examples:

      offgen-sweep show sweep.json

      offgen-sweep show sweep.json --index 37

      offgen-sweep show sweep.json --find actor_lr=0.1 --find scaled=true --runs 3
    """
    sweep = _load(sweep_file, order, seed_rule)
    grid = sweep.grid
    try:
        if index is not None:
            s = grid.resolve(index)
            _echo_json(
                {
                    "index": s.index,
                    "setting": s.setting,
                    "run": s.run,
                    "seed": s.seed,
                    "params": s.params,
                }
            )
        elif find:
            wanted: dict[str, Any] = {}
            for item in find:
                name, sep, value = item.partition("=")
                if not sep:
                    fail(f"--find takes name=value, got {item!r}")
                wanted[name] = _parse_value(value)
            settings = grid.settings_matching(wanted)
            _echo_json({"settings": settings, "indices": grid.indices(wanted, runs)})
        else:
            _echo_json(grid.describe())
    except GridError as exc:
        fail(str(exc))


@app.command()
def commands(
    sweep_file: OptionalSweepArg = None,
    template: TemplateOpt = None,
    runs: RunsOpt = 1,
    indices: IndicesOpt = None,
    save: Annotated[
        Path | None, typer.Option("--save", help="Write the commands to this file, one per line.")
    ] = None,
    run_local: Annotated[bool, typer.Option("--run-local", help="Run the commands here.")] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", help="Parallel commands with --run-local.")
    ] = 1,
    new_line: Annotated[
        bool,
        typer.Option(
            "--new_line", "--new-line", help="Each --name value of {args} on its own line."
        ),
    ] = False,
    grid_config: GridConfigOpt = None,
    base_config: BaseConfigOpt = "offline",
    config_dir: ConfigDirOpt = "grids",
    module_name: ModuleOpt = None,
    order: OrderOpt = None,
    seed_rule: SeedRuleOpt = None,
) -> None:
    """Generate one command per index: print them, save them, or run them locally.

    Examples:

      offgen-sweep commands sweep.json -t 'python main.py --agent-json a.json --index {index}' --runs 3

      offgen-sweep commands sweep.json -t 'python train.py {args} --seed {seed}' -i 0-9 --save cmds.txt

      offgen-sweep commands sweep.json --runs 2 --run-local -j 2

      offgen-sweep commands --grid_config bc --num_trials 3 --new_line --save bc_commands.txt

      offgen-sweep commands --grid_config bc --dir final --module_name baselines.evaluate_offline
    """
    path = _sweep_file(sweep_file, grid_config, base_config, config_dir)
    sweep = _load(path, order, seed_rule)
    text, extra = _module_template(sweep, template, module_name)
    cmds = commands_for(
        sweep.grid,
        text,
        _indices(sweep, runs, indices),
        extra,
        separator=NEW_LINE if new_line else " ",
    )
    if save is not None:
        save_commands(cmds, save)
        typer.echo(f"wrote {len(cmds)} commands to {save}", err=True)
    if run_local:
        outcomes = run_commands(cmds, jobs=jobs, progress=True)
        failed = [o for o in outcomes if o.returncode != 0]
        typer.echo(f"ran {len(outcomes)} commands, {len(failed)} failed", err=True)
        for o in failed:
            typer.echo(f"  exit {o.returncode}: {o.command}", err=True)
        if failed:
            raise typer.Exit(1)
    elif save is None:
        for c in cmds:
            typer.echo(c)


@app.command("submit")
def submit_cmd(
    sweep_file: OptionalSweepArg = None,
    template: TemplateOpt = None,
    runs: RunsOpt = 1,
    indices: IndicesOpt = None,
    executor: Annotated[str, typer.Option("--executor", help="slurm, local or debug.")] = "slurm",
    folder: Annotated[Path, typer.Option("--folder", help="submitit log folder.")] = Path(
        "submitit_logs"
    ),
    per_task: Annotated[
        int, typer.Option("--per-task", help="Indices packed into each array task.")
    ] = 1,
    partition: Annotated[str | None, typer.Option(help="SLURM partition.")] = None,
    time_min: Annotated[int | None, typer.Option(help="Minutes per array task.")] = None,
    cpus_per_task: Annotated[int | None, typer.Option(help="CPUs per array task.")] = None,
    mem_gb: Annotated[float | None, typer.Option(help="Memory per array task (GB).")] = None,
    gpus_per_node: Annotated[int | None, typer.Option(help="GPUs per array task.")] = None,
    array_parallelism: Annotated[
        int | None, typer.Option(help="Most tasks running at once.")
    ] = None,
    job_name: Annotated[str | None, typer.Option(help="Job name.")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for all tasks and report failures.")
    ] = False,
    grid_config: GridConfigOpt = None,
    base_config: BaseConfigOpt = "offline",
    config_dir: ConfigDirOpt = "grids",
    module_name: ModuleOpt = None,
    order: OrderOpt = None,
    seed_rule: SeedRuleOpt = None,
) -> None:
    """Submit the sweep as ONE array job through submitit.

    Resources come from the sweep file's "slurm" section; command-line options override it.

    Examples:

      offgen-sweep submit sweep.json -t 'python main.py --index {index}' --runs 5 --time-min 30

      offgen-sweep submit sweep.json --runs 10 --per-task 8 --partition gpu --gpus-per-node 1 --wait

      offgen-sweep submit sweep.json -i 0-3 --executor local --wait

      offgen-sweep submit --grid_config cql --num_trials 3 --partition gpu
    """
    path = _sweep_file(sweep_file, grid_config, base_config, config_dir)
    sweep = _load(path, order, seed_rule)
    resources = Resources.from_config(sweep.slurm, f"{path}: key 'slurm'").override(
        partition=partition,
        time_min=time_min,
        cpus_per_task=cpus_per_task,
        mem_gb=mem_gb,
        gpus_per_node=gpus_per_node,
        array_parallelism=array_parallelism,
        job_name=job_name,
    )
    text, extra = _module_template(sweep, template, module_name)
    cmds = commands_for(sweep.grid, text, _indices(sweep, runs, indices), extra)
    submission = submit(
        cmds, executor=executor, folder=folder, resources=resources, per_task=per_task
    )
    typer.echo(
        f"submitted {len(cmds)} commands as {len(submission.jobs)} array tasks "
        f"({executor}); job ids: {' '.join(submission.job_ids)}"
    )
    if wait:
        failures = 0
        for job, chunk in zip(submission.jobs, submission.chunks, strict=True):
            try:
                job.result()
            except Exception as exc:
                failures += 1
                typer.echo(f"task {job.job_id} failed ({len(chunk)} commands): {exc}", err=True)
        typer.echo(f"{len(submission.jobs) - failures} tasks succeeded, {failures} failed")
        if failures:
            raise typer.Exit(1)


@app.command("combine")
def combine_cmd(
    results_dir: Annotated[
        Path,
        typer.Argument(help="Folder of index_<i>.json/.npz results.", exists=True, file_okay=False),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Combined file (default: <dir>/data.json)."),
    ] = None,
    runs: Annotated[
        int | None, typer.Option("--runs", "-r", help="Runs expected per setting.")
    ] = None,
) -> None:
    """Combine per-run results into one file; list missing indices and duplicate seeds.

    Examples:

      offgen-sweep combine results/pendulum

      offgen-sweep combine results/pendulum --runs 10 -o combined.json
    """
    combined = combine(results_dir, runs=runs)
    out = output or results_dir / "data.json"
    combined.save(out)
    n_runs = sum(len(e["runs"]) for e in combined.experiment_data.values())
    typer.echo(f"combined {n_runs} runs of {len(combined.experiment_data)} settings into {out}")
    if combined.missing_indices:
        typer.echo(
            f"missing indices ({len(combined.missing_indices)}): {list(combined.missing_indices)}"
        )
    for dup in combined.duplicates:
        typer.echo(
            f"duplicate setting {dup.setting} seed {dup.seed}: kept {dup.files[0]}, ignored {list(dup.files[1:])}"
        )


def _load_combined(path: Path) -> Combined:
    try:
        if path.is_dir():
            return combine(path)
        return load_combined(path)
    except (ResultError, OSError, json.JSONDecodeError, KeyError) as exc:
        fail(f"{path}: {exc}")


MetricOpt = Annotated[
    str, typer.Option("--metric", "-m", help="Run-data key, e.g. eval_episode_rewards.")
]
CriterionOpt = Annotated[
    str, typer.Option("--criterion", help="last (mean of last k evals) or auc.")
]
LastKOpt = Annotated[
    int, typer.Option("--last-k", help="Evaluations averaged by --criterion last.")
]
MinimizeOpt = Annotated[bool, typer.Option("--minimize", help="Lower is better.")]


@app.command()
def best(
    combined_path: Annotated[
        Path, typer.Argument(help="Combined file or results folder.", exists=True)
    ],
    metric: MetricOpt = "eval_episode_rewards",
    criterion: CriterionOpt = "last",
    last_k: LastKOpt = 10,
    minimize: MinimizeOpt = False,
    top: Annotated[int, typer.Option("--top", help="How many settings to list.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rank settings by a metric (mean over runs of the last k evaluations, or AUC).

    Examples:

      offgen-sweep best results/pendulum/data.json --metric eval_episode_rewards --last-k 5

      offgen-sweep best results/pendulum --criterion auc --top 3 --json
    """
    if criterion not in ("last", "auc"):
        fail(f"--criterion must be 'last' or 'auc', got {criterion!r}")
    combined = _load_combined(combined_path)
    ranked = rank_settings(
        combined,
        metric,
        criterion=criterion,  # type: ignore[arg-type]
        last_k=last_k,
        maximize=not minimize,
    )
    shown = ranked[: max(1, top)]
    if as_json:
        _echo_json(
            [
                {
                    "setting": r.setting,
                    "score": r.score,
                    "runs": r.runs,
                    "agent_params": r.agent_params,
                }
                for r in shown
            ]
        )
        return
    for rank, r in enumerate(shown, 1):
        typer.echo(
            f"#{rank} setting {r.setting}: score {r.score:.6g} over {r.runs} runs, params {json.dumps(r.agent_params)}"
        )


@app.command()
def plot(
    inputs: Annotated[
        list[str], typer.Argument(help="LABEL=PATH (combined file or results folder); repeat.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output path without suffix; writes .png and .pdf.")
    ],
    metric: MetricOpt = "eval_episode_rewards",
    stat: Annotated[str, typer.Option("--stat", help="mean or iqm over runs.")] = "mean",
    criterion: CriterionOpt = "last",
    last_k: LastKOpt = 10,
    minimize: MinimizeOpt = False,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples.")] = 1000,
    confidence: Annotated[float, typer.Option("--confidence", help="Band coverage.")] = 0.95,
    title: Annotated[str | None, typer.Option("--title")] = None,
) -> None:
    """Plot learning curves of each experiment's best setting with bootstrap bands.

    Examples:

      offgen-sweep plot results/sac/data.json --out plots/pendulum

      offgen-sweep plot SAC=results/sac PPO=results/ppo --metric eval_episode_rewards --stat iqm --out plots/cmp
    """
    if stat not in ("mean", "iqm"):
        fail(f"--stat must be 'mean' or 'iqm', got {stat!r}")
    experiments: dict[str, Combined] = {}
    for item in inputs:
        label, sep, path = item.partition("=")
        if not sep:
            label, path = Path(item).stem, item
        experiments[label] = _load_combined(Path(path))
    paths = plot_best(
        experiments,
        metric,
        out,
        statistic=stat,  # type: ignore[arg-type]
        criterion=criterion,  # type: ignore[arg-type]
        last_k=last_k,
        maximize=not minimize,
        n_boot=n_boot,
        confidence=confidence,
        title=title,
    )
    typer.echo("wrote " + " ".join(str(p) for p in paths))


@app.command()
def table(
    runs_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder of offline runs (<save_path>), each evaluated (evaluate.json).",
            exists=True,
            file_okay=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output path without suffix; writes .md, .json, .png."),
    ],
    stat: Annotated[str, typer.Option("--stat", help="iqm or mean over seeds.")] = "iqm",
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples.")] = 2000,
    confidence: Annotated[float, typer.Option("--confidence", help="CI coverage.")] = 0.95,
    title: Annotated[str | None, typer.Option("--title")] = None,
) -> None:
    """Offline baselines: algorithm x game table of train / validation / test normalised returns.

    For each algorithm and game the setting with the best mean validation normalised return is
    kept; its seeds are summarised by the IQM (or mean) with a percentile-bootstrap CI.

    Examples:

      offgen-sweep table runs/offline --out results/offline

      offgen-sweep table runs/offline --out results/offline --stat mean --n-boot 10000
    """
    if stat not in ("mean", "iqm"):
        fail(f"--stat must be 'mean' or 'iqm', got {stat!r}")
    if not 0.0 < confidence < 1.0 or n_boot < 1:
        fail(f"--confidence must be in (0, 1) and --n-boot >= 1, got {confidence} and {n_boot}")
    rows = offline_table(
        combine_offline_runs(runs_dir),
        statistic=stat,  # type: ignore[arg-type]
        confidence=confidence,
        n_boot=n_boot,
    )
    markdown = table_markdown(rows, statistic=stat, confidence=confidence)
    stem = out.with_suffix("") if out.suffix in (".md", ".png", ".json") else out
    stem.parent.mkdir(parents=True, exist_ok=True)
    md_path, json_path = stem.parent / f"{stem.name}.md", stem.parent / f"{stem.name}.json"
    md_path.write_text(markdown)
    json_path.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
    png = plot_offline_table(rows, stem, statistic=stat, confidence=confidence, title=title)
    typer.echo(markdown)
    typer.echo(f"wrote {md_path} {json_path} {png}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="offgen-sweep")


if __name__ == "__main__":
    main()
