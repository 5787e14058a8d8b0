"""``evaluate``: a policy's returns on seeded, paired level plans of several splits."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from offgen._allocator import tune_allocator
from offgen._version import __version__
from offgen.envs.procgen import LevelRange, resolve_split
from offgen.errors import EvaluationError, UnknownNameError
from offgen.evaluation.actions import ActionMode, describe_actions
from offgen.evaluation.environment import EvalEnvironment
from offgen.evaluation.plan import plan_levels
from offgen.evaluation.policy import resolve_policy
from offgen.evaluation.report import EvaluationReport, SplitResult
from offgen.evaluation.runner import play_plans
from offgen.evaluation.threads import DEFAULT_TORCH_THREADS, torch_threads_set
from offgen.policies.base import Policy, as_policy
from offgen.policies.torch_policy import Precision, TorchPolicy

__all__ = ["DEFAULT_SPLITS", "evaluate", "parse_splits"]

DEFAULT_SPLITS = ("train", "validation", "test")
GREEDY = ActionMode.greedy()


def parse_splits(splits: str | Sequence[str]) -> tuple[str, ...]:
    """Split names from ``"train,validation,test"`` or a sequence, checked and de-duplicated.

    Raises:
        UnknownNameError: For an unknown split name.
    """
    names = splits.split(",") if isinstance(splits, str) else list(splits)
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower().replace("-", "_")
        if not name:
            continue
        try:
            resolve_split(name)
        except UnknownNameError as exc:
            raise UnknownNameError(
                f"unknown split {raw.strip()!r}; use train, validation, test, full or level_<K> "
                "(e.g. level_40), comma-separated"
            ) from exc
        name = "validation" if name == "val" else name
        if name not in out:
            out.append(name)
    if not out:
        raise EvaluationError("no split given; use e.g. --splits train,validation,test")
    return tuple(out)


def _environment(
    env: EvalEnvironment | None, game: str | None, distribution_mode: str
) -> EvalEnvironment:
    if env is None:
        if game is None:
            raise EvaluationError("evaluate needs game=... or env=environment_of(dataset)")
        full = distribution_mode.lower() == "exploration"
        return EvalEnvironment(game, distribution_mode, LevelRange(0, 0 if full else 200))
    if game is not None and EvalEnvironment(game).game != env.game:
        raise EvaluationError(
            f"game {game!r} differs from the environment's game {env.game!r}; pass one of them"
        )
    return env


def _with_precision(
    policy: Policy | Callable[..., Any] | str | os.PathLike[str], precision: Precision | None
) -> Policy:
    if isinstance(policy, (str, os.PathLike)):
        return resolve_policy(policy, precision or "fp32")
    if precision is None:
        return as_policy(policy)
    if isinstance(policy, TorchPolicy):
        return policy.with_precision(precision)
    raise EvaluationError(
        f"precision {precision!r} applies to checkpoints and offgen's TorchPolicy; "
        f"{type(policy).__name__} computes its actions itself (cast its model instead)"
    )


def evaluate(
    policy: Policy | Callable[..., Any] | str | os.PathLike[str],
    game: str | None = None,
    splits: str | Sequence[str] = DEFAULT_SPLITS,
    episodes: int = 100,
    seed: int = 0,
    num_envs: int = 16,
    action: ActionMode | str = GREEDY,
    distribution_mode: str = "easy",
    torch_threads: int | None = DEFAULT_TORCH_THREADS,
    *,
    env: EvalEnvironment | None = None,
    precision: Precision | None = None,
) -> EvaluationReport:
    """Evaluate a policy on the planned levels of each split.

    Every split plays ``episodes`` episodes on levels fixed by ``seed`` alone
    (:func:`offgen.evaluation.plan.plan_levels`): two policies evaluated with the same seed meet the
    same levels (compare them with :func:`offgen.evaluation.compare`), and a deterministic policy
    gives the same per-episode returns on every rerun with the same ``num_envs``.

    Args:
        policy: A :class:`~offgen.policies.Policy`, a callable ``fn(obs) -> actions``, ``"random"``,
            or a checkpoint path.
        game: Procgen game (or give ``env``).
        splits: ``train`` (0-199, or the dataset's levels with ``env``), ``validation``
            (200-249), ``test`` (unseen levels 250-2^31-2), ``full`` (the whole distribution: what
            the predecessor called test), ``level_K``; a list or a comma-separated string.
        episodes: Planned episodes per split.
        seed: Fixes the level plans and every random draw.
        num_envs: Episodes played at once (batch size of the policy's inference).
        action: :class:`ActionMode` or its text form (``greedy``, ``sample``, ``epsilon:0.05``).
        distribution_mode: Procgen mode (without ``env``).
        torch_threads: torch threads during the evaluation (default 1, see
            :mod:`offgen.evaluation.threads`); ``None`` leaves torch's setting.
        env: The environment, e.g. :func:`offgen.evaluation.environment_of` of a dataset (game,
            mode, training levels, observation layout and frame stack).
        precision: Inference arithmetic of a checkpoint or :class:`~offgen.policies.TorchPolicy`
            (:data:`offgen.policies.Precision`; ``bf16`` is ~1.9x faster on CPUs with AMX, and
            a greedy action can differ from fp32 where two actions are nearly tied); ``None``
            keeps the policy's own (fp32 for a checkpoint). Recorded in the report's policy.

    Raises:
        UnknownNameError: Unknown game, split or action mode.
        CheckpointError: A checkpoint that is not an IMPALA policy.
        EvaluationError: Missing game, a game that contradicts ``env``, or a precision for a
            policy that is not a torch policy of offgen's.
    """
    started = time.perf_counter()
    tune_allocator()  # batched inference's activation buffers from the heap (offgen/_allocator)
    where = _environment(env, game, distribution_mode)
    names = parse_splits(splits)
    mode = ActionMode.parse(action) if isinstance(action, str) else action
    if episodes < 1 or num_envs < 1:
        raise EvaluationError(f"episodes and num_envs must be >= 1 (got {episodes}, {num_envs})")
    actor = _with_precision(policy, precision)
    for name in names:
        where.spec(name)  # every split's range is valid before the first episode
    ranges = [where.levels(name) for name in names]
    plans = [(levels, plan_levels(levels, episodes, seed)) for levels in ranges]
    with torch_threads_set(torch_threads):  # every split in one pool: no idle tail per split
        played = play_plans(actor, where, plans, seed=seed, action=mode, num_envs=num_envs)
    results = {
        name: SplitResult.of(where.game, name, levels.start_level, levels.num_levels, episodes_)
        for name, levels, episodes_ in zip(names, ranges, played, strict=True)
    }
    settings = {
        "environment": where.to_dict(),
        "episodes_per_split": episodes,
        "num_envs": num_envs,
        "torch_threads": torch_threads,
        "policy": dict(actor.metadata),
        "level_plan": "seeded draws without replacement from each split's range (offgen.evaluation.plan)",
        "seconds": round(time.perf_counter() - started, 3),
        "offgen_version": __version__,
    }
    return EvaluationReport(
        where.game, actor.policy_id, describe_actions(actor, mode), seed, results, settings
    )
