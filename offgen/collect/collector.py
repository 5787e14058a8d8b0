"""Collect a dataset: vectorised envs + behaviour policy -> store or ``.npz`` files.

**Budget rule (exact).** Episodes are written whole, in the order they finish (step, then
environment index), until the dataset holds exactly ``budget`` transitions: the one episode that
would cross the budget is cut to the remaining steps and recorded as ``truncated`` (its last frame
is the true observation after its last kept action, so it replays exactly). Episodes still running
when the budget is reached are discarded. A sharded collection gives shard ``k`` of ``n``
``budget // n`` transitions, plus one for the first ``budget % n`` shards.

**Resume.** The stream of episodes is a pure function of the settings (see
:mod:`offgen.collect.engine`). Rerunning with the same arguments reopens the output, reads how many
episodes are committed, replays every environment through its committed episodes (recorded actions,
no policy) and continues; so the finished dataset is identical to an uninterrupted run, with no
episode duplicated or lost. A finished output is left as is.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offgen._allocator import release_free_memory
from offgen._progress import progress_bar
from offgen.collect.assembler import RawEpisode
from offgen.collect.engine import TapeEntry, run_episodes
from offgen.collect.journal import JOURNAL_NAME, Journal, JournalRecord
from offgen.collect.ratio import RatioPolicies, with_achieved_ratio
from offgen.collect.sinks import NpzSink, OutputFormat, Sink, StoreSink, existing_collection
from offgen.data.lock import StoreLock
from offgen.data.schema import Episode, make_episode
from offgen.envs.procgen import EnvSpec, check_available
from offgen.errors import CorruptStoreError, StoreExistsError
from offgen.evaluation.threads import DEFAULT_TORCH_THREADS, torch_threads_set
from offgen.policies.base import Policy, as_policy

__all__ = ["CollectResult", "collect", "shard_budget", "shard_seeds"]

PolicyLike = Policy | Callable[..., Any]
"""A :class:`Policy`, or any ``fn(obs) -> actions`` (wrapped with ``as_policy``)."""

_FLUSH_EVERY_S = 10.0


@dataclass(frozen=True)
class CollectResult:
    """What a collection produced.

    Attributes:
        output: The store directory or ``.npz`` folder.
        episodes: Episodes in the output.
        transitions: Transitions in the output (equals the budget).
        mean_return: Mean episode return of the output.
        resumed_episodes: Episodes that were already committed when this run started.
        already_complete: The output was finished before this run (nothing was collected).
        seconds: Wall time of this run.
        info: Extra fields recorded at the end (the ratio recipe with the achieved ratio).
    """

    output: Path
    episodes: int
    transitions: int
    mean_return: float | None
    resumed_episodes: int
    already_complete: bool
    seconds: float
    info: Mapping[str, Any]


def shard_budget(total: int, shard_index: int, num_shards: int) -> int:
    """Transitions shard ``shard_index`` of ``num_shards`` collects out of ``total``."""
    base, rest = divmod(total, num_shards)
    return base + (1 if shard_index < rest else 0)


def shard_seeds(seed: int, shard_index: int, num_shards: int) -> tuple[int, tuple[int, ...]]:
    """envpool seed and uniform-stream key of a shard (a single shard uses ``seed`` unchanged)."""
    if num_shards == 1:
        return seed & 0x7FFFFFFF, (seed, 0)
    state = np.random.SeedSequence([seed, shard_index, num_shards]).generate_state(1)
    return int(state[0]) & 0x7FFFFFFF, (seed, shard_index, num_shards)


def _collection_config(
    spec: EnvSpec,
    *,
    budget: int,
    num_envs: int,
    seed: int,
    shard_index: int,
    num_shards: int,
    fmt: OutputFormat,
    policies: Sequence[Policy],
    slot_policy: Sequence[int],
) -> dict[str, Any]:
    return {
        "env": spec.to_dict(),
        "budget": budget,
        "num_envs": num_envs,
        "seed": seed,
        "shard_index": shard_index,
        "num_shards": num_shards,
        "format": fmt,
        "policies": [p.policy_id for p in policies],
        "slot_policy": [int(s) for s in slot_policy],
        "budget_rule": "whole episodes in finish order; the crossing episode is cut (truncated)",
    }


def _diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [
        k
        for k in keys
        if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True)
    ]


def _to_episode(raw: RawEpisode, keep: int, game: str, policy_id: str) -> Episode:
    cut = keep < raw.length
    return make_episode(
        raw.frames[: keep + 1],
        raw.actions[:keep],
        raw.rewards[:keep],
        game=game,
        level_seed=raw.level_seed,
        terminated=raw.terminated and not cut,
        truncated=raw.truncated or cut,
        policy_id=policy_id,
        layout="HWC",
    )


def _policies(policies: PolicyLike | Sequence[PolicyLike]) -> list[Policy]:
    """Policies as a list, plain callables wrapped (numbered when there are several, so each keeps
    its own ``policies.json`` entry and episodes can be told apart)."""
    items: list[PolicyLike] = list(policies) if isinstance(policies, Sequence) else [policies]
    if not items:
        raise ValueError("collect needs at least one policy")
    if len(items) == 1:
        return [as_policy(items[0])]
    return [as_policy(p, policy_id=f"callable{i}") for i, p in enumerate(items)]


@dataclass
class _Opened:
    """A collection opened for writing: its sink, journal and what is already committed."""

    out: Path
    sink: Sink
    journal: Journal
    records: list[JournalRecord]
    steps: int
    return_sum: float

    @property
    def committed(self) -> int:
        return len(self.records)


def collect(
    output: str | Path,
    spec: EnvSpec,
    policies: PolicyLike | Sequence[PolicyLike] | RatioPolicies,
    *,
    budget: int,
    num_envs: int = 64,
    seed: int = 0,
    shard_index: int = 0,
    num_shards: int = 1,
    fmt: OutputFormat = "offgen",
    slot_policy: Sequence[int] | None = None,
    dataset: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    commit_every_s: float = _FLUSH_EVERY_S,
    wait_for_lock: bool = False,
    torch_threads: int | None = DEFAULT_TORCH_THREADS,
) -> CollectResult:
    """Collect exactly ``budget`` transitions (this shard's share) into ``output``.

    Args:
        output: Store directory (``fmt="offgen"``) or folder of ``.npz`` files (``fmt="npz"``).
        spec: Game, distribution mode and levels.
        policies: One behaviour policy, or several for a mixture (see ``slot_policy``), or the
            :class:`~offgen.collect.ratio.RatioPolicies` of a ratio collection (its policies,
            environment assignment and recipe; ``info.json`` then records the recipe with the
            achieved ratio). A plain callable ``fn(obs) -> actions`` is accepted wherever a policy
            is (wrapped with :func:`offgen.policies.as_policy`; id ``"callable"``, or
            ``"callable<i>"`` when several are given).
        budget: Total transitions of the whole collection (all shards together).
        num_envs: Parallel environments.
        seed: Collection seed (environment levels and policy sampling).
        shard_index: This shard (0-based).
        num_shards: Number of shards the collection is split into.
        fmt: ``"offgen"`` (store) or ``"npz"`` (the predecessor's per-episode files).
        slot_policy: For a mixture, the policy index of each environment.
        dataset: Dataset name recorded in ``info.json``.
        overwrite: Delete an existing output first.
        progress: Show a progress bar.
        commit_every_s: Commit (make episodes durable) at least this often; 0 commits every
            episode. A killed run loses at most this much work.
        wait_for_lock: If another process is writing ``output``, wait for it to finish instead
            of raising :class:`~offgen.errors.StoreLockedError`.
        torch_threads: torch threads while the policies act beside envpool (default 1, see
            :mod:`offgen.evaluation.threads`; restored afterwards); ``None`` leaves torch's setting.

    Returns:
        A :class:`CollectResult`.

    Raises:
        StoreExistsError: If ``output`` holds a different collection (and not ``overwrite``).
        StoreLockedError: If another process is writing ``output`` (and not ``wait_for_lock``).
        CorruptStoreError: If resuming finds the output inconsistent with its settings.
        EnvSpecError: If envpool has no task for the game in this distribution mode.
    """
    started = time.monotonic()
    out = Path(output)
    recipe: Mapping[str, Any] | None = None
    if isinstance(policies, RatioPolicies):
        if slot_policy is not None:
            raise ValueError("ratio policies bring their own slot_policy; do not pass one")
        pols = list(policies.policies)
        slot_policy, recipe = policies.slot_policy, policies.recipe
    else:
        pols = _policies(policies)
    slots = list(slot_policy) if slot_policy is not None else [0] * num_envs
    if len(slots) != num_envs:
        raise ValueError(f"slot_policy has {len(slots)} entries for {num_envs} environments")
    if budget < 1 or not 0 <= shard_index < num_shards:
        raise ValueError("budget must be >= 1 and 0 <= shard_index < num_shards")
    if not commit_every_s >= 0:  # also refuses NaN
        raise ValueError(f"commit_every_s must be >= 0 seconds, got {commit_every_s}")
    config = _collection_config(
        spec,
        budget=budget,
        num_envs=num_envs,
        seed=seed,
        shard_index=shard_index,
        num_shards=num_shards,
        fmt=fmt,
        policies=pols,
        slot_policy=slots,
    )
    # Before touching the output: an unsupported game/mode would otherwise only fail once the
    # engine starts envpool, after the store was created with that mode recorded in its settings.
    check_available(spec)
    # The lock covers everything from the first look at the output (its settings, --overwrite,
    # the journal) to the finished collection.
    with StoreLock(out, wait=wait_for_lock) as lock:
        opened = _open(
            out, fmt, config, overwrite=overwrite, spec=spec, dataset=dataset, pols=pols, lock=lock
        )
        if opened is None:
            return _finished_result(out, fmt, started)
        committed = opened.committed
        try:
            with torch_threads_set(torch_threads):
                steps, episodes, return_sum = _run(
                    opened,
                    spec,
                    pols,
                    slots,
                    budget=shard_budget(budget, shard_index, num_shards),
                    seeds=shard_seeds(seed, shard_index, num_shards),
                    label=f"collect {spec.game}"
                    + (f" shard {shard_index}" if num_shards > 1 else ""),
                    progress=progress,
                    commit_every_s=commit_every_s,
                )
            mean = return_sum / episodes if episodes else None
            extra = _finish(opened, recipe, mean)
        finally:
            # The engine kept and freed ~1 GB of frame batches from several threads; glibc would
            # otherwise keep that memory resident for the rest of the process.
            release_free_memory()
    return CollectResult(
        output=out,
        episodes=episodes,
        transitions=steps,
        mean_return=mean,
        resumed_episodes=committed,
        already_complete=False,
        seconds=time.monotonic() - started,
        info=extra,
    )


def _open(
    out: Path,
    fmt: OutputFormat,
    config: Mapping[str, Any],
    *,
    overwrite: bool,
    spec: EnvSpec,
    dataset: str | None,
    pols: Sequence[Policy],
    lock: StoreLock,
) -> _Opened | None:
    """Open (or resume) the output; ``None`` if it already holds the finished collection."""
    if overwrite and out.exists():
        shutil.rmtree(out)
    recorded, complete = existing_collection(out, fmt)
    if recorded is not None and _diff(recorded, config):
        raise StoreExistsError(
            f"{out}: holds a collection with different settings ({', '.join(_diff(recorded, config))} "
            "differ). Rerun with the same arguments to resume it, or choose another output / "
            "pass --overwrite."
        )
    journal_path = out / JOURNAL_NAME
    if complete:
        journal_path.unlink(missing_ok=True)
        return None
    sink: Sink
    if fmt == "offgen":
        sink = StoreSink(
            out,
            game=spec.game,
            env_options=spec.to_dict(),
            provenance={"collection": dict(config), "collector": "offgen.collect"},
            dataset=dataset,
            policies=[(p.policy_id, dict(p.metadata)) for p in pols],
            lock=lock,
        )
    else:
        sink = NpzSink(out, collection=config)
    try:
        records = _reconcile_journal(journal_path, sink, out)
    except BaseException:
        sink.abort()
        raise
    return _Opened(
        out=out,
        sink=sink,
        journal=Journal(journal_path),
        records=records,
        steps=sink.committed_steps,
        return_sum=float(sum(r.episode_return for r in records)),
    )


def _reconcile_journal(journal_path: Path, sink: Sink, out: Path) -> list[JournalRecord]:
    """The journal's records of the committed episodes (records after them are dropped)."""
    committed, steps = sink.committed_episodes, sink.committed_steps
    records = Journal.read(journal_path)
    if len(records) < committed:
        raise CorruptStoreError(
            f"{journal_path}: covers {len(records)} episodes but {committed} are committed; the "
            "collection cannot be resumed exactly (was the journal deleted?). Start over with "
            "--overwrite."
        )
    records = records[:committed]
    Journal.truncate(journal_path, records)
    if sum(len(r.actions) for r in records) != steps:
        raise CorruptStoreError(f"{journal_path}: disagrees with {out} on the committed steps")
    return records


def _run(
    opened: _Opened,
    spec: EnvSpec,
    pols: Sequence[Policy],
    slots: Sequence[int],
    *,
    budget: int,
    seeds: tuple[int, tuple[int, ...]],
    label: str,
    progress: bool,
    commit_every_s: float,
) -> tuple[int, int, float]:
    """Collect until the output holds ``budget`` steps; returns (steps, episodes, return sum).

    On any error (or interrupt) the journal and what was written are committed, so a rerun
    resumes.
    """
    steps, episodes, return_sum = opened.steps, opened.committed, opened.return_sum
    if steps >= budget:
        return steps, episodes, return_sum
    tapes: list[list[TapeEntry]] = [[] for _ in slots]
    for r in opened.records:
        tapes[r.env].append(TapeEntry(r.actions, r.level_seed, r.episode_return, r.cut))
    bar = _Progress(label, budget, steps, episodes, return_sum, enabled=progress)
    if episodes:
        bar.note(f"resuming: replaying {episodes} committed episodes ({steps} steps)")
    stream = run_episodes(
        spec,
        num_envs=len(slots),
        env_seed=seeds[0],
        rng_key=seeds[1],
        policies=list(pols),
        slot_policy=np.asarray(slots, dtype=np.int64),
        tapes=tapes,
    )
    last_flush = time.monotonic()
    try:
        for raw in stream:
            keep = min(raw.length, budget - steps)
            episode = _to_episode(raw, keep, spec.game, pols[slots[raw.env]].policy_id)
            opened.journal.append(_record(raw, episode, cut=keep < raw.length))
            opened.sink.write(episode, opened.journal)
            steps, episodes, return_sum = (
                steps + keep,
                episodes + 1,
                return_sum + episode.episode_return,
            )
            bar.update(keep, episodes, return_sum)
            if time.monotonic() - last_flush >= commit_every_s:
                opened.sink.flush(opened.journal)
                last_flush = time.monotonic()
            if steps >= budget:
                break
    except BaseException:
        _abort(opened)
        raise
    finally:
        stream.close()
        bar.close()
    return steps, episodes, return_sum


def _record(raw: RawEpisode, episode: Episode, *, cut: bool) -> JournalRecord:
    return JournalRecord(
        env=raw.env,
        level_seed=raw.level_seed,
        episode_return=episode.episode_return,
        terminated=episode.terminated,
        truncated=episode.truncated,
        cut=cut,
        actions=episode.actions,
    )


def _abort(opened: _Opened) -> None:
    """Commit what was written and leave the output resumable (errors here are secondary)."""
    with contextlib.suppress(Exception):
        opened.journal.sync()
        opened.sink.abort()
    with contextlib.suppress(Exception):
        opened.journal.close()


def _finish(
    opened: _Opened, recipe: Mapping[str, Any] | None, mean: float | None
) -> Mapping[str, Any]:
    """Mark the output complete (recording the ratio recipe, if any) and drop the journal."""
    achieved = float("nan") if mean is None else mean
    extra = {"recipe": with_achieved_ratio(recipe, achieved)} if recipe is not None else {}
    try:
        opened.journal.sync()
        opened.sink.finish(extra)
    except BaseException:
        _abort(opened)
        raise
    opened.journal.close()
    (opened.out / JOURNAL_NAME).unlink(missing_ok=True)
    return extra


class _Progress:
    """The collection's progress bar: steps, with the episode count and mean return."""

    def __init__(
        self, label: str, total: int, steps: int, episodes: int, return_sum: float, *, enabled: bool
    ) -> None:
        self._bar = progress_bar(
            total=total,
            initial=steps,
            unit="step",
            unit_scale=True,
            desc=label,
            enabled=enabled,
            dynamic_ncols=True,
        )
        self._enabled = enabled
        self._episodes, self._return_sum = episodes, return_sum
        self._last_post = time.monotonic()

    def note(self, message: str) -> None:
        if self._enabled:
            self._bar.write(message)

    def update(self, steps: int, episodes: int, return_sum: float) -> None:
        self._bar.update(steps)
        self._episodes, self._return_sum = episodes, return_sum
        if time.monotonic() - self._last_post > 0.5:
            self._post()
            self._last_post = time.monotonic()

    def _post(self) -> None:
        # Strings: tqdm prints round numbers as "3e+4".
        mean = self._return_sum / max(self._episodes, 1)
        self._bar.set_postfix(episodes=f"{self._episodes:,}", mean_return=f"{mean:.2f}")

    def close(self) -> None:
        self._post()
        self._bar.close()


def _finished_result(out: Path, fmt: OutputFormat, started: float) -> CollectResult:
    if fmt == "offgen":
        from offgen.data.store import OffgenStore

        store = OffgenStore(out)
        rows = store.table.rows
        recipe = store.info.recipe
        info: Mapping[str, Any] = {"recipe": None if recipe is None else recipe.to_json()}
        episodes, transitions = len(rows), int(rows["length"].sum()) if len(rows) else 0
        mean = float(rows["return"].mean()) if len(rows) else None
    else:
        sink = NpzSink(out, collection={})
        episodes, transitions, mean = sink.committed_episodes, sink.committed_steps, None
        info = {}
    return CollectResult(
        output=out,
        episodes=episodes,
        transitions=transitions,
        mean_return=mean,
        resumed_episodes=episodes,
        already_complete=True,
        seconds=time.monotonic() - started,
        info=info,
    )
