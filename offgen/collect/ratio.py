"""Ratio-based collection: pick (or mix) checkpoints whose return is ``r`` x the final one's.

Steps (see ``docs/collection.md``):

1. :func:`discover_checkpoints` finds the candidates in a run folder: the predecessor's layout
   (``final/model_<ret>.pt``, ``checkpoint/model_<update>_<ret>.pt``, ``rolling/model.pt``) or
   offgen's own (``*.pt`` saved by :func:`offgen.policies.save_checkpoint`). The returns in file
   names are never trusted (they were measured on training levels, 10 episodes).
2. :func:`measure_checkpoint` plays ``N`` seeded episodes per candidate on a chosen split through
   :func:`offgen.evaluation.evaluate` (the same planned levels for every candidate, every planned
   episode counted once, so short episodes are not favoured) and caches the result,
   keyed by the checkpoint's sha256 and the settings, next to the checkpoint in
   ``<checkpoint>.offgen-eval.json`` (or in offgen's cache when the run folder is read-only or
   another user's).
3. :func:`plan_ratio` either picks the single candidate closest to ``r x R_final`` (the predecessor's
   rule) or a two-checkpoint mixture, assigning environments to checkpoints so that the predicted
   dataset mean return (episodes weighted by how often each policy finishes one) is closest to the
   target.
4. After collection, :func:`with_achieved_ratio` compares the dataset's mean return with the
   target; the whole recipe goes into ``info.json``.

:func:`choose_ratio_policies` does steps 1-3 and loads the chosen policies; hand its result to
:func:`offgen.collect.collect` as the policies, which records the recipe with step 4.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from offgen._io import atomic_write_json, sha256_file
from offgen.envs.procgen import EnvSpec
from offgen.evaluation import ActionMode, EvalEnvironment, evaluate
from offgen.evaluation.threads import DEFAULT_TORCH_THREADS
from offgen.paths import cache_dir as offgen_cache_dir
from offgen.policies.base import Policy
from offgen.policies.torch_policy import CheckpointError, load_policy, load_state_dict

__all__ = [
    "Candidate",
    "Measurement",
    "RatioPlan",
    "RatioPolicies",
    "choose_ratio_policies",
    "discover_checkpoints",
    "measure_checkpoint",
    "plan_ratio",
    "with_achieved_ratio",
]

RatioMode = Literal["closest", "mixture"]
CACHE_SUFFIX = ".offgen-eval.json"
_SAMPLE = ActionMode.sample()
# Part of the cache key: measurements of the earlier first-episodes-per-environment method (biased
# towards short episodes) are not reused.
_METHOD = "offgen.evaluation.evaluate"


@dataclass(frozen=True)
class Candidate:
    """A checkpoint file that may be used for collection.

    Attributes:
        path: The ``.pt`` file.
        kind: ``final``, ``checkpoint``, ``rolling`` or ``offgen``.
        step: Training step (update number) if known.
        name_return: Return written in the file name (informational only).
    """

    path: Path
    kind: str
    step: int | None
    name_return: float | None


@dataclass(frozen=True)
class Measurement:
    """Returns of a policy measured on seeded episodes."""

    mean_return: float
    mean_length: float
    returns: list[float]
    lengths: list[int]
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RatioPlan:
    """Which checkpoints to collect with, and the recipe recorded in ``info.json``."""

    paths: list[Path]
    slot_policy: list[int]
    recipe: dict[str, Any]


@dataclass(frozen=True)
class RatioPolicies:
    """Loaded policies of a ratio collection: pass it to :func:`offgen.collect.collect` as its
    ``policies`` (it brings the environments' policy assignment and the recipe).

    Attributes:
        policies: The chosen checkpoints' policies (metadata include their measured return).
        slot_policy: Policy index of each environment.
        recipe: The plan recorded in ``info.json`` (completed with the achieved ratio).
    """

    policies: tuple[Policy, ...]
    slot_policy: tuple[int, ...]
    recipe: Mapping[str, Any]


def discover_checkpoints(directory: str | Path) -> list[Candidate]:
    """Candidates in one training run's checkpoint folder.

    Raises:
        CheckpointError: If the folder holds no checkpoint or several runs.
    """
    root = Path(directory)
    if not root.is_dir():
        raise CheckpointError(f"{root}: checkpoint folder not found; check --ratio_checkpoint_dir")
    found: list[Candidate] = []
    for kind in ("final", "checkpoint", "rolling"):
        for path in sorted((root / kind).glob("*.pt")):
            _state, meta = (None, {}) if kind != "rolling" else load_state_dict(path)
            step, ret = _name_fields(path)
            found.append(Candidate(path, kind, meta.get("step", step), ret))
    if not found:
        for path in sorted(root.glob("*.pt")):
            _state, meta = load_state_dict(path)
            found.append(Candidate(path, "offgen", meta.get("step"), meta.get("name_return")))
    if not found:
        runs = sorted(p.parent.parent for p in root.glob("*/final/*.pt"))
        hint = (
            f" It holds several runs ({', '.join(str(r) for r in runs[:5])}); pass one."
            if runs
            else ""
        )
        raise CheckpointError(
            f"{root}: no checkpoints found (expected final/, checkpoint/ and rolling/ with .pt "
            f"files, or offgen checkpoints *.pt).{hint}"
        )
    return found


def _name_fields(path: Path) -> tuple[int | None, float | None]:
    parts = path.stem.split("_")[1:]
    try:
        if len(parts) == 2:
            return int(parts[0]), float(parts[1])
        if len(parts) == 1:
            return None, float(parts[0])
    except ValueError:
        pass
    return None, None


def final_candidate(candidates: Sequence[Candidate]) -> Candidate:
    """The expert reference: the ``final/`` checkpoint, else the one with the largest step."""
    finals = [c for c in candidates if c.kind == "final"]
    if finals:
        return finals[-1]
    return max(
        candidates, key=lambda c: (c.step if c.step is not None else -1, c.kind == "rolling")
    )


def measure_checkpoint(
    path: Path,
    spec: EnvSpec,
    *,
    episodes: int,
    seed: int,
    num_envs: int = 16,
    cache_dir: str | Path | None = None,
    torch_threads: int | None = DEFAULT_TORCH_THREADS,
) -> Measurement:
    """Measured return of a checkpoint on ``spec``'s levels, cached (keyed by its sha256 and the
    settings).

    The measurement is :func:`offgen.evaluation.evaluate` with sampled actions on ``episodes``
    planned episodes of ``spec``'s level range (the same seeded levels for every checkpoint, every
    planned episode counted once, so short episodes are not favoured).

    The cache is ``<checkpoint>.offgen-eval.json`` beside the checkpoint when its folder is this
    user's own and writable; a read-only or shared run folder (another user's) is left untouched
    and the cache goes under offgen's cache (``<home>/cache/ratio-eval/``), or ``cache_dir`` when
    given. ``torch_threads`` is the evaluation's torch thread count (not part of the key).
    """
    sha = sha256_file(path)
    settings = {
        "env": spec.to_dict(),
        "episodes": episodes,
        "seed": seed,
        "num_envs": num_envs,
        "greedy": False,
        "action": str(_SAMPLE),
        "method": _METHOD,
    }
    key = hashlib.sha256(json.dumps([sha, settings], sort_keys=True).encode()).hexdigest()[:24]
    cache = _cache_file(path, sha, cache_dir)
    entries: dict[str, Any] = {}
    if cache.exists():
        try:
            entries = json.loads(cache.read_bytes()).get("entries", {})
        except (ValueError, AttributeError):
            entries = {}
    if key in entries:
        hit = entries[key]
        return Measurement(
            hit["mean_return"], hit["mean_length"], hit["returns"], hit["lengths"], settings
        )
    # The spec's level range is the evaluation's "train" split: its plan depends only on the
    # range and the seed, so it equals evaluating the named split of the same range.
    where = EvalEnvironment(spec.game, spec.distribution_mode, spec.levels)
    report = evaluate(
        load_policy(path),
        env=where,
        splits=("train",),
        episodes=episodes,
        seed=seed,
        num_envs=num_envs,
        action=_SAMPLE,
        torch_threads=torch_threads,
    )
    played = report.splits["train"].episodes
    returns = [e.return_ for e in played]
    lengths = [e.length for e in played]
    result = Measurement(
        float(np.mean(returns)), float(np.mean(lengths)), returns, lengths, settings
    )
    entries[key] = {"sha256": sha, **asdict(result)}
    with contextlib.suppress(OSError):  # an unwritable cache only costs a re-measurement
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache, {"format": "offgen-eval", "entries": entries})
    return result


def _cache_file(path: Path, sha: str, cache_dir: str | Path | None) -> Path:
    if cache_dir is None and _own_writable(path.parent):
        return path.with_name(path.name + CACHE_SUFFIX)
    folder = Path(cache_dir) if cache_dir is not None else offgen_cache_dir("ratio-eval")
    return folder / f"{sha[:16]}-{path.name}{CACHE_SUFFIX}"


def _own_writable(folder: Path) -> bool:
    try:
        return folder.stat().st_uid == os.getuid() and os.access(folder, os.W_OK)
    except OSError:
        return False


def _predict(slots: Sequence[int], rets: Sequence[float], lens: Sequence[float]) -> float:
    # Environments step at the same rate, so policy k finishes episodes at slots_k / length_k.
    rates = [s / max(length, 1.0) for s, length in zip(slots, lens, strict=True)]
    total = sum(rates)
    return (
        sum(r * ret for r, ret in zip(rates, rets, strict=True)) / total if total else float("nan")
    )


def plan_ratio(
    candidates: Sequence[Candidate],
    measurements: Sequence[Measurement],
    *,
    ratio: float,
    num_envs: int,
    mode: RatioMode = "closest",
    tolerance: float = 0.05,
) -> RatioPlan:
    """Choose the checkpoint(s) for ratio ``r`` and describe the choice.

    Args:
        candidates: From :func:`discover_checkpoints`.
        measurements: One per candidate, from :func:`measure_checkpoint`.
        ratio: Target fraction of the final checkpoint's measured return, in ``[0, 1]``.
        num_envs: Environments of the collection (mixture weights are whole environments).
        mode: ``closest`` (single checkpoint) or ``mixture`` (two checkpoints).
        tolerance: Accepted ``|achieved ratio - ratio|``, checked after collection.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must lie in [0, 1], got {ratio}")
    final = final_candidate(candidates)
    final_return = measurements[list(candidates).index(final)].mean_return
    target = ratio * final_return
    rets = [m.mean_return for m in measurements]
    lens = [m.mean_length for m in measurements]
    if mode == "closest":
        best = min(
            range(len(candidates)),
            key=lambda i: (abs(rets[i] - target), -(candidates[i].step or 0)),
        )
        chosen, slot_counts = [best], [num_envs]
    else:
        best_err, chosen, slot_counts = float("inf"), [0], [num_envs]
        below = [i for i in range(len(rets)) if rets[i] <= target]
        above = [i for i in range(len(rets)) if rets[i] >= target]
        for a in below:
            for b in above:
                splits = [num_envs] if a == b else range(num_envs + 1)
                for sa in splits:
                    pair = [a] if a == b else [a, b]
                    counts = [num_envs] if a == b else [sa, num_envs - sa]
                    pred = _predict(counts, [rets[i] for i in pair], [lens[i] for i in pair])
                    if abs(pred - target) < best_err - 1e-12:
                        best_err, chosen, slot_counts = abs(pred - target), pair, counts
        if best_err == float("inf"):  # target outside every candidate's return: closest single
            best = min(range(len(candidates)), key=lambda i: abs(rets[i] - target))
            chosen, slot_counts = [best], [num_envs]
        keep = [(c, s) for c, s in zip(chosen, slot_counts, strict=True) if s > 0]
        chosen, slot_counts = [c for c, _ in keep], [s for _, s in keep]
    slot_policy = [k for k, count in enumerate(slot_counts) for _ in range(count)]
    predicted = _predict(slot_counts, [rets[i] for i in chosen], [lens[i] for i in chosen])
    recipe = {
        "mode": mode,
        "ratio": ratio,
        "final_checkpoint": str(final.path),
        "final_return": final_return,
        "target_return": target,
        "tolerance_ratio": tolerance,
        "measurement": dict(measurements[0].settings),
        "candidates": [
            {
                "path": str(c.path),
                "kind": c.kind,
                "step": c.step,
                "name_return": c.name_return,
                "measured_return": m.mean_return,
                "measured_length": m.mean_length,
            }
            for c, m in zip(candidates, measurements, strict=True)
        ],
        "mixture": [
            {
                "path": str(candidates[i].path),
                "num_envs": s,
                "weight_envs": s / num_envs,
                "measured_return": rets[i],
            }
            for i, s in zip(chosen, slot_counts, strict=True)
        ],
        "predicted_return": predicted,
    }
    return RatioPlan([candidates[i].path for i in chosen], slot_policy, recipe)


def _unreachable(recipe: Mapping[str, Any], measurements: Sequence[Measurement]) -> str | None:
    """A warning when the target lies outside every candidate's measured return."""
    target, final = float(recipe["target_return"]), float(recipe["final_return"])
    returns = [m.mean_return for m in measurements]
    if min(returns) <= target <= max(returns):
        return None
    side, nearest = ("below", min(returns)) if target < min(returns) else ("above", max(returns))
    ratio = f"{nearest / final:.3f}" if final else "n/a"
    return (
        f"warning: the target return {target:.3f} is {side} every candidate's measured return "
        f"(nearest {nearest:.3f}, ratio {ratio}); the nearest checkpoint is used and the achieved "
        "ratio will likely miss the tolerance. Add checkpoints that reach the target, or change "
        "--ratio."
    )


def with_achieved_ratio(recipe: Mapping[str, Any], mean_return: float) -> dict[str, Any]:
    """The recipe completed with the dataset's achieved return and ratio and whether it is within
    the tolerance."""
    final = float(recipe["final_return"])
    ratio = mean_return / final if final else float("nan")
    ok = bool(abs(ratio - float(recipe["ratio"])) <= float(recipe["tolerance_ratio"]))
    return {
        **dict(recipe),
        "achieved_return": mean_return,
        "achieved_ratio": ratio,
        "within_tolerance": ok,
    }


def choose_ratio_policies(
    checkpoint_dir: str | Path,
    spec: EnvSpec,
    *,
    ratio: float,
    num_envs: int,
    mode: RatioMode = "closest",
    tolerance: float = 0.05,
    eval_split: str = "train",
    eval_episodes: int = 20,
    seed: int = 0,
    greedy: bool = False,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] = lambda _message: None,
    torch_threads: int | None = DEFAULT_TORCH_THREADS,
) -> RatioPolicies:
    """Measure a run's checkpoints and load the policies whose collection hits ``ratio``.

    Args:
        checkpoint_dir: One training run's checkpoint folder (see :func:`discover_checkpoints`).
        spec: The collection's game and distribution mode (its levels are not the evaluation's).
        ratio: Target return as a fraction of the final checkpoint's measured return, in ``[0, 1]``.
        num_envs: Environments of the collection.
        mode: ``closest`` (one checkpoint) or ``mixture`` (two).
        tolerance: Accepted ``|achieved ratio - ratio|``, recorded in the recipe.
        eval_split: Split the candidates are measured on.
        eval_episodes: Seeded episodes per candidate.
        seed: Evaluation seed.
        greedy: Collect with the most likely action instead of sampling.
        cache_dir: Where measurements are cached (default: see :func:`measure_checkpoint`).
        log: Receives progress lines (before and after each measurement), a warning when no
            candidate reaches the target, and the plan.
        torch_threads: torch threads while measuring (see :mod:`offgen.evaluation.threads`).

    Example:
        >>> chosen = choose_ratio_policies(  # doctest: +SKIP
        ...     "ppo/coinrun/run0", EnvSpec("coinrun"), ratio=0.75, num_envs=64, mode="mixture"
        ... )
        >>> collect("data/coinrun_mixed", EnvSpec("coinrun"), chosen, budget=1_000_000)  # doctest: +SKIP
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must lie in [0, 1], got {ratio}")
    if mode not in ("closest", "mixture"):
        raise ValueError(f"ratio mode must be 'closest' or 'mixture', got {mode!r}")
    candidates = discover_checkpoints(checkpoint_dir)
    eval_spec = EnvSpec.from_split(spec.game, eval_split, spec.distribution_mode)
    measurements = []
    for number, cand in enumerate(candidates, 1):
        log(
            f"measuring checkpoint {number}/{len(candidates)}: {cand.path} ({eval_episodes} episodes)"
        )
        m = measure_checkpoint(
            cand.path,
            eval_spec,
            episodes=eval_episodes,
            seed=seed,
            cache_dir=cache_dir,
            torch_threads=torch_threads,
        )
        log(f"measured {cand.path}: mean return {m.mean_return:.3f} over {eval_episodes}")
        measurements.append(m)
    chosen = plan_ratio(
        candidates, measurements, ratio=ratio, num_envs=num_envs, mode=mode, tolerance=tolerance
    )
    warning = _unreachable(chosen.recipe, measurements)
    if warning:
        log(warning)
    policies = []
    for path, entry in zip(chosen.paths, chosen.recipe["mixture"], strict=True):
        policy = load_policy(path, greedy=greedy)
        policy.metadata["measured_return"] = entry["measured_return"]
        policies.append(policy)
    recipe = chosen.recipe
    log(
        f"target return {recipe['target_return']:.3f} (ratio {ratio} of "
        f"{recipe['final_return']:.3f}); predicted {recipe['predicted_return']:.3f}"
    )
    return RatioPolicies(tuple(policies), tuple(chosen.slot_policy), recipe)
