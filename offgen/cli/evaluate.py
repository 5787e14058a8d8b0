"""``offgen evaluate``: a policy's returns on seeded, paired level plans of several splits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast, get_args

import typer

__all__ = ["evaluate", "register"]

_EPILOG = """
Examples:

  # 100 greedy episodes on each of train (0-199), validation (200-249), test
  offgen evaluate run0/final/model.pt --game coinrun --output report.json

  # the random baseline on the same levels, then the paired difference
  offgen evaluate random --game coinrun -o random.json --compare report.json

  # the environment of a dataset (its game and training levels)
  offgen evaluate bc.pt --dataset data/coinrun_l40 --splits train,test

The same --seed plays the same levels for every policy; a deterministic policy gives the same
returns on a rerun. 'test' is unseen levels only; the predecessor's 'test' is the split 'full'.
"""


def evaluate(
    policy: Annotated[
        str,
        typer.Argument(
            metavar="CHECKPOINT_OR_POLICY",
            help="A .pt checkpoint, a run folder (its final/ model), or 'random'.",
        ),
    ],
    game: Annotated[
        str | None, typer.Option("--game", "--env_name", help="Procgen game, e.g. coinrun.")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Store path, or published dataset name with --game: its environment and "
            "training levels.",
        ),
    ] = None,
    splits: Annotated[
        str,
        typer.Option("--splits", help="Comma-separated: train, validation, test, full, level_K."),
    ] = "train,validation,test",
    episodes: Annotated[int, typer.Option("--episodes", help="Planned episodes per split.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Fixes the levels and random draws.")] = 0,
    num_envs: Annotated[
        int, typer.Option("--num-envs", "--num_processes", help="Episodes played at once.")
    ] = 16,
    action: Annotated[
        str, typer.Option("--action", help="greedy, sample, or epsilon:<eps> (e.g. epsilon:0.05).")
    ] = "greedy",
    distribution_mode: Annotated[
        str, typer.Option("--distribution_mode", "--distribution-mode", help="Procgen mode.")
    ] = "easy",
    torch_threads: Annotated[
        int,
        typer.Option(
            "--torch-threads",
            help="torch threads while evaluating (default 1: fastest beside envpool on few "
            "cores); 0 leaves torch's default.",
        ),
    ] = 1,
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="Inference arithmetic of a checkpoint: fp32 (exact) or bf16 (bfloat16 autocast, "
            "~1.9x faster on CPUs with AMX; a greedy action can differ where two are nearly "
            "tied; slower on CPUs without bfloat16 instructions).",
        ),
    ] = "fp32",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON report here.")
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="Write the predecessor's evaluate.csv columns here."),
    ] = None,
    compare_with: Annotated[
        Path | None,
        typer.Option("--compare", help="A report of another policy: print paired differences."),
    ] = None,
) -> None:
    """Evaluate a policy on seeded, paired levels of train / validation / test splits."""
    from offgen.envs.procgen import LevelRange
    from offgen.evaluation import (
        EvalEnvironment,
        EvaluationReport,
        compare,
        environment_of,
        registered_environment,
    )
    from offgen.evaluation import evaluate as run_evaluation
    from offgen.policies.torch_policy import Precision

    if torch_threads < 0:
        raise typer.BadParameter("--torch-threads must be >= 0")
    if precision not in get_args(Precision):
        raise typer.BadParameter(f"--precision must be fp32 or bf16, not {precision!r}")
    env: EvalEnvironment | None = None
    if dataset is not None:
        if Path(dataset).exists():
            env = environment_of(Path(dataset))
        elif game is None:
            raise typer.BadParameter(
                f"{dataset!r} is no store path; with a dataset name give --game"
            )
        else:
            env = registered_environment(dataset, game)
    elif game is None:
        raise typer.BadParameter("give --game (or --dataset)")
    else:
        full = distribution_mode.lower() == "exploration"
        env = EvalEnvironment(game, distribution_mode, LevelRange(0, 0 if full else 200))
    other = EvaluationReport.from_json(compare_with) if compare_with is not None else None
    report = run_evaluation(
        policy,
        splits=splits,
        episodes=episodes,
        seed=seed,
        num_envs=num_envs,
        action=action,
        torch_threads=torch_threads or None,
        env=env,
        precision=cast(Precision, precision),
    )
    typer.echo(
        f"{report.game} · {report.policy_id} · action {report.action} · seed {report.seed} · "
        f"{episodes} episodes per split"
    )
    for name, s in report.splits.items():
        levels = f"{s.start_level}+{s.num_levels}" if s.num_levels else "all"
        typer.echo(
            f"  {name:<11} levels {levels:<16} return {s.mean:8.3f} ± {s.stderr:.3f} (std "
            f"{s.std:.3f})  normalised {s.normalised:.3f}  length {s.mean_length:.0f}"
        )
    if other is not None:
        paired = compare(report, other)
        for name, d in paired.splits.items():
            typer.echo(
                f"  {name:<11} paired difference vs {other.policy_id}: {d.mean:+.3f} ± "
                f"{d.stderr:.3f} (z {d.z:.2f}; better {d.wins}, worse {d.losses}, same {d.ties})"
            )
    if output is not None:
        report.to_json(output)
        typer.echo(f"wrote {output}")
    if csv is not None:
        report.to_csv(csv)
        typer.echo(f"wrote {csv}")


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to the ``offgen`` app."""
    app.command("evaluate", epilog=_EPILOG)(evaluate)
