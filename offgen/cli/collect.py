"""``offgen collect`` / ``offgen-collect`` and ``offgen merge``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from offgen.errors import UnknownNameError

__all__ = ["collect", "merge", "register"]

_EPILOG = """
Examples:

  # 100k transitions of a uniform random policy on training levels 0-199
  offgen-collect --game coinrun --policy random --num-env-steps 100000 \\
      --output data/coinrun_random

  # your own dataset, by name: offgen.load("my_random", game="coinrun")
  offgen-collect --game coinrun --policy random --num-env-steps 100000 \\
      --dataset my_random --output $OFFGEN_HOME/datasets/my_random/coinrun

  # expert data from a PPO checkpoint, predecessor's flags, .npz files
  offgen-collect --env_name coinrun \\
      --checkpoint_path ppo/final/model_9.80.pt --num_processes 64 \\
      --num_env_steps 1000000 --dataset_saving_dir out/ --format npz

  # 75% of the final checkpoint's return, as a mixture of two checkpoints
  offgen-collect --game coinrun --ratio 0.75 \\
      --ratio-checkpoint-dir ppo/coinrun/run0 --ratio-mode mixture \\
      --num-env-steps 1000000 --output data/coinrun_mixed

  # one of 8 SLURM array tasks; merge the shards later with `offgen merge`
  offgen-collect --game coinrun --checkpoint_path model.pt \\
      --num_env_steps 10000000 --num-shards 8 \\
      --shard-index $SLURM_ARRAY_TASK_ID \\
      --output shards/part$SLURM_ARRAY_TASK_ID

  # roll out and report only, the predecessor's way
  offgen-collect --game coinrun --checkpoint_path model.pt \\
      --num_env_steps 5000 --save_dataset=False

Killed at any point, rerunning the same command resumes and ends with exactly the same data. Every flag takes snake_case or kebab-case; booleans take --flag, --no-flag or --flag=True/False.
"""


def _non_negative_seconds(value: float) -> float:
    if not value >= 0:  # also refuses NaN
        raise typer.BadParameter(f"must be a number of seconds >= 0, got {value}")
    return value


def collect(
    game: Annotated[str, typer.Option("--env_name", "--game", help="Procgen game, e.g. coinrun.")],
    num_env_steps: Annotated[
        int, typer.Option("--num_env_steps", help="Exact number of transitions to collect.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "--dataset_saving_dir", "-o", help="Output store / .npz folder."),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="'random', or 'checkpoint' (implied by --checkpoint_path; not with 'random').",
        ),
    ] = None,
    checkpoint_path: Annotated[
        Path | None, typer.Option("--checkpoint_path", help="PPO checkpoint (.pt) to roll out.")
    ] = None,
    greedy: Annotated[
        bool, typer.Option("--greedy", help="Take the most likely action instead of sampling.")
    ] = False,
    ratio: Annotated[
        float | None,
        typer.Option("--ratio", help="Target return as a fraction of the final checkpoint's."),
    ] = None,
    ratio_checkpoint_dir: Annotated[
        Path | None,
        typer.Option("--ratio_checkpoint_dir", help="Run folder with final/ checkpoint/ rolling/."),
    ] = None,
    ratio_mode: Annotated[
        str, typer.Option("--ratio_mode", help="'closest' single checkpoint or 'mixture'.")
    ] = "closest",
    eval_episodes: Annotated[
        int, typer.Option("--eval_episodes", help="Seeded episodes per candidate (ratio mode).")
    ] = 20,
    eval_split: Annotated[
        str, typer.Option("--eval_split", help="Split the candidates are measured on.")
    ] = "train",
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Accepted |achieved ratio - ratio|.")
    ] = 0.05,
    accept_outside_tolerance: Annotated[
        bool,
        typer.Option(
            "--accept-outside-tolerance",
            help="Exit 0 even if the achieved ratio misses --tolerance (the dataset is kept).",
        ),
    ] = False,
    ratio_cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--ratio_cache_dir",
            help="Cache of checkpoint measurements (default: beside the checkpoints if they are "
            "yours and writable, else offgen's cache).",
        ),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split", help="train, validation, test, full or level_K (exploration: full only)."
        ),
    ] = "train",
    start_level: Annotated[
        int | None, typer.Option("--start_level", help="Override the split's first level.")
    ] = None,
    num_levels: Annotated[
        int | None, typer.Option("--num_levels", help="Override the split's level count (0: all).")
    ] = None,
    distribution_mode: Annotated[
        str,
        typer.Option(
            "--distribution_mode",
            help="easy, hard, extreme, memory, exploration (not every game has every mode).",
        ),
    ] = "easy",
    num_envs: Annotated[
        int, typer.Option("--num_processes", "--num-envs", help="Parallel environments.")
    ] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Collection seed.")] = 0,
    fmt: Annotated[
        str, typer.Option("--format", help="'offgen' store or 'npz' (predecessor's files).")
    ] = "offgen",
    shard_index: Annotated[int, typer.Option("--shard-index", help="This shard (0-based).")] = 0,
    num_shards: Annotated[int, typer.Option("--num-shards", help="Shards in the collection.")] = 1,
    save_dataset: Annotated[
        bool,
        typer.Option(
            "--save_dataset", help="--no-save-dataset: roll out and report, write nothing."
        ),
    ] = True,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Dataset name recorded in info.json.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    commit_every: Annotated[
        float,
        typer.Option(
            "--commit-every",
            help="Seconds between commits (0: every episode).",
            callback=_non_negative_seconds,
        ),
    ] = 10.0,
    wait_for_lock: Annotated[
        bool,
        typer.Option("--wait-for-lock", help="If another process writes the output, wait for it."),
    ] = False,
    torch_threads: Annotated[
        int,
        typer.Option(
            "--torch-threads",
            "--torch_threads",
            help="torch threads while checkpoint policies act and are measured beside envpool "
            "(default 1: fastest on few cores); 0 leaves torch's default.",
        ),
    ] = 1,
) -> None:
    """Collect a Procgen dataset with a behaviour policy (exact budget, resumable)."""
    from offgen.collect import RatioPolicies, choose_ratio_policies
    from offgen.collect import collect as run_collection
    from offgen.envs.procgen import (
        EnvSpec,
        check_available,
        resolve_distribution_mode,
        resolve_split,
    )
    from offgen.policies import RandomPolicy, load_policy
    from offgen.policies.base import Policy

    if num_env_steps < 1:
        raise typer.BadParameter("--num_env_steps must be >= 1")
    if num_envs < 1:
        raise typer.BadParameter("--num_processes must be >= 1")
    if not 0 <= shard_index < num_shards:
        raise typer.BadParameter("need 0 <= --shard-index < --num-shards")
    if fmt not in ("offgen", "npz"):
        raise typer.BadParameter("--format must be 'offgen' or 'npz'")
    if ratio_mode not in ("closest", "mixture"):
        raise typer.BadParameter("--ratio_mode must be 'closest' or 'mixture'")
    if torch_threads < 0:
        raise typer.BadParameter("--torch-threads must be >= 0 (0: torch's default)")
    threads = torch_threads or None
    save = save_dataset
    # The overrides are applied before the one EnvSpec is built: validating the split's own range
    # first would refuse e.g. exploration mode with --num_levels 0 because of the default split.
    levels = resolve_split(split)
    overridden = start_level is not None or num_levels is not None
    spec = EnvSpec(
        game,
        resolve_distribution_mode(distribution_mode),
        levels.start_level if start_level is None else start_level,
        levels.num_levels if num_levels is None else num_levels,
        None if overridden else split,
    )
    # Checked now, not when the first environment starts: ratio mode would otherwise load and
    # measure every checkpoint before learning that the game has no such mode.
    check_available(spec)
    # A flag that another one overrides is an error, not silently ignored: the user meant it.
    ratio_flags = ratio is not None or ratio_checkpoint_dir is not None
    if ratio_flags and (policy is not None or checkpoint_path is not None):
        raise typer.BadParameter(
            "ratio mode picks its checkpoints from --ratio_checkpoint_dir; drop --policy and "
            "--checkpoint_path (or drop --ratio/--ratio_checkpoint_dir to use them)"
        )
    if policy == "random" and checkpoint_path is not None:
        raise typer.BadParameter(
            "--policy random does not use --checkpoint_path; drop --checkpoint_path for a random "
            "policy, or drop --policy random to roll out the checkpoint"
        )
    policies: list[Policy] | RatioPolicies
    if ratio_flags:
        if ratio is None or ratio_checkpoint_dir is None:
            raise typer.BadParameter("ratio mode needs both --ratio and --ratio_checkpoint_dir")
        if not 0.0 <= ratio <= 1.0:
            raise typer.BadParameter(f"--ratio must lie in [0, 1], got {ratio}")
        policies = choose_ratio_policies(
            ratio_checkpoint_dir,
            spec,
            ratio=ratio,
            num_envs=num_envs,
            mode=ratio_mode,  # type: ignore[arg-type]
            tolerance=tolerance,
            eval_split=eval_split,
            eval_episodes=eval_episodes,
            seed=seed,
            greedy=greedy,
            cache_dir=ratio_cache_dir,
            log=typer.echo,
            torch_threads=threads,
        )
    elif policy == "random" or (policy is None and checkpoint_path is None):
        if policy is None:
            raise typer.BadParameter("give --checkpoint_path, --policy random, or ratio mode flags")
        policies = [RandomPolicy()]
    elif policy in (None, "checkpoint"):
        if checkpoint_path is None:
            raise typer.BadParameter("--policy checkpoint needs --checkpoint_path")
        policies = [load_policy(checkpoint_path, greedy=greedy)]
    else:
        raise UnknownNameError(f"unknown --policy {policy!r}; use 'random' or 'checkpoint'")

    if not save:
        from offgen.evaluation import ActionMode, EvalEnvironment, evaluate

        if isinstance(policies, RatioPolicies) or len(policies) != 1:
            raise typer.BadParameter("--save_dataset False supports a single policy")
        # The collection's own levels, as its "train" split; sampled (or --greedy) actions.
        report = evaluate(
            policies[0],
            env=EvalEnvironment(spec.game, spec.distribution_mode, spec.levels),
            splits=("train",),
            episodes=max(1, num_envs),
            seed=seed,
            num_envs=num_envs,
            action=ActionMode.greedy() if greedy else ActionMode.sample(),
            torch_threads=threads,
        )
        played = report.splits["train"]
        typer.echo(json.dumps({"episodes": len(played.episodes), "mean_return": played.mean}))
        return
    if output is None:
        raise typer.BadParameter("--output/--dataset_saving_dir is required to save a dataset")
    result_c = run_collection(
        output,
        spec,
        policies,
        budget=num_env_steps,
        num_envs=num_envs,
        seed=seed,
        shard_index=shard_index,
        num_shards=num_shards,
        fmt=fmt,  # type: ignore[arg-type]
        dataset=dataset,
        overwrite=overwrite,
        progress=progress,
        commit_every_s=commit_every,
        wait_for_lock=wait_for_lock,
        torch_threads=threads,
    )
    state = "already complete" if result_c.already_complete else "done"
    mean = "n/a" if result_c.mean_return is None else f"{result_c.mean_return:.3f}"
    typer.echo(
        f"{state}: {result_c.output} holds {result_c.episodes} episodes, "
        f"{result_c.transitions} transitions, mean return {mean}"
        + (
            f" (resumed after {result_c.resumed_episodes})"
            if result_c.resumed_episodes and not result_c.already_complete
            else ""
        )
    )
    recipe_done = result_c.info.get("recipe") if result_c.info else None
    if recipe_done:
        _report_ratio(recipe_done, result_c.output, accept_outside_tolerance)


def _report_ratio(recipe: dict[str, Any], output: Path, accept: bool) -> None:
    """Print the achieved ratio; a miss is an error (exit 1) unless the user accepts it."""
    line = (
        f"achieved ratio {recipe['achieved_ratio']:.3f} (target {recipe['ratio']}, "
        f"{{}} tolerance {recipe['tolerance_ratio']})"
    )
    if recipe.get("within_tolerance"):
        typer.echo(line.format("within"))
        return
    typer.echo(line.format("OUTSIDE"))
    if accept:
        typer.echo(f"kept {output} although outside the tolerance (--accept-outside-tolerance)")
        return
    typer.echo(
        f"error: {output} is complete but misses the target ratio by more than the tolerance. "
        "Collect again with other checkpoints or settings (--overwrite), or pass "
        "--accept-outside-tolerance to keep this result with exit code 0.",
        err=True,
    )
    raise typer.Exit(1)


def merge(
    inputs: Annotated[list[Path], typer.Argument(help="Stores to combine, in order.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The merged store.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    wait_for_lock: Annotated[
        bool,
        typer.Option("--wait-for-lock", help="If another process writes the output, wait for it."),
    ] = False,
) -> None:
    """Combine stores (e.g. collection shards) into one store.

    Refuses stores that disagree on game, Procgen options or format. Episodes keep their order
    (input by input); the policy table is the union.

    Example:

      offgen merge shards/part0 shards/part1 shards/part2 --output data/coinrun_10M
    """
    from offgen.collect.merge import merge_stores

    result = merge_stores(
        inputs, output, overwrite=overwrite, progress=progress, wait_for_lock=wait_for_lock
    )
    typer.echo(
        f"merged {len(inputs)} stores into {output}: {result.episodes} episodes, {result.transitions} transitions"
    )


def register(app: typer.Typer) -> None:
    """Add ``collect`` and ``merge`` to the ``offgen`` app."""
    app.command("collect", epilog=_EPILOG)(collect)
    app.command("merge")(merge)
