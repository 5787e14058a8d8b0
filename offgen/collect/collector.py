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
from tqdm.auto import tqdm

from offgen._allocator import release_free_memory
from offgen.collect.assembler import RawEpisode
from offgen.collect.engine import TapeEntry, run_episodes
from offgen.collect.journal import JOURNAL_NAME, Journal, JournalRecord
from offgen.collect.sinks import NpzSink, OutputFormat, Sink, StoreSink, existing_collection
from offgen.data.schema import Episode, make_episode
from offgen.envs.procgen import EnvSpec, check_available
from offgen.errors import CorruptStoreError, StoreExistsError
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
        info: Extra fields recorded at the end (e.g. the ratio recipe).
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


def collect(
    output: str | Path,
    spec: EnvSpec,
    policies: PolicyLike | Sequence[PolicyLike],
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
    finish_info: Callable[[float], Mapping[str, Any]] | None = None,
    commit_every_s: float = _FLUSH_EVERY_S,
) -> CollectResult:
    """Collect exactly ``budget`` transitions (this shard's share) into ``output``.

    Args:
        output: Store directory (``fmt="offgen"``) or folder of ``.npz`` files (``fmt="npz"``).
        spec: Game, distribution mode and levels.
        policies: One behaviour policy, or several for a mixture (see ``slot_policy``). A plain
            callable ``fn(obs) -> actions`` is accepted wherever a policy is (wrapped with
            :func:`offgen.policies.as_policy`; id ``"callable"``, or ``"callable<i>"`` when
            several are given).
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
        finish_info: Called with the final mean return; its fields go into ``info.json``
            (the ratio recipe with the achieved ratio).
        commit_every_s: Commit (make episodes durable) at least this often; 0 commits every
            episode. A killed run loses at most this much work.

    Returns:
        A :class:`CollectResult`.

    Raises:
        StoreExistsError: If ``output`` holds a different collection (and not ``overwrite``).
        CorruptStoreError: If resuming finds the output inconsistent with its settings.
        EnvSpecError: If envpool has no task for the game in this distribution mode.
    """
    started = time.monotonic()
    out = Path(output)
    pols = _policies(policies)
    slots = list(slot_policy) if slot_policy is not None else [0] * num_envs
    if len(slots) != num_envs:
        raise ValueError(f"slot_policy has {len(slots)} entries for {num_envs} environments")
    if budget < 1 or not 0 <= shard_index < num_shards:
        raise ValueError("budget must be >= 1 and 0 <= shard_index < num_shards")
    if not commit_every_s >= 0:  # also refuses NaN
        raise ValueError(f"commit_every_s must be >= 0 seconds, got {commit_every_s}")
    my_budget = shard_budget(budget, shard_index, num_shards)
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
        return _finished_result(out, fmt, started)

    sink: Sink
    if fmt == "offgen":
        sink = StoreSink(
            out,
            game=spec.game,
            env_options=spec.to_dict(),
            provenance={"collection": config, "collector": "offgen.collect"},
            dataset=dataset,
            policies=[(p.policy_id, dict(p.metadata)) for p in pols],
        )
    else:
        sink = NpzSink(out, collection=config)
    committed, steps = sink.committed_episodes, sink.committed_steps
    records = Journal.read(journal_path)
    if len(records) < committed:
        sink.abort()
        raise CorruptStoreError(
            f"{journal_path}: covers {len(records)} episodes but {committed} are committed; the "
            "collection cannot be resumed exactly (was the journal deleted?). Start over with "
            "--overwrite."
        )
    records = records[:committed]
    Journal.truncate(journal_path, records)
    if sum(len(r.actions) for r in records) != steps:
        sink.abort()
        raise CorruptStoreError(f"{journal_path}: disagrees with {out} on the committed steps")
    return_sum = float(sum(r.episode_return for r in records))
    episodes = committed
    journal = Journal(journal_path)
    try:
        if steps < my_budget:
            tapes: list[list[TapeEntry]] = [[] for _ in range(num_envs)]
            for r in records:
                tapes[r.env].append(TapeEntry(r.actions, r.level_seed, r.episode_return, r.cut))
            env_seed, rng_key = shard_seeds(seed, shard_index, num_shards)
            bar = tqdm(
                total=my_budget,
                initial=steps,
                unit="step",
                unit_scale=True,
                desc=f"collect {spec.game}" + (f" shard {shard_index}" if num_shards > 1 else ""),
                disable=not progress,
                dynamic_ncols=True,
            )
            if committed and progress:
                bar.write(f"resuming: replaying {committed} committed episodes ({steps} steps)")
            last_flush = last_post = time.monotonic()
            stream = run_episodes(
                spec,
                num_envs=num_envs,
                env_seed=env_seed,
                rng_key=rng_key,
                policies=pols,
                slot_policy=np.asarray(slots, dtype=np.int64),
                tapes=tapes,
            )
            try:
                for raw in stream:
                    keep = min(raw.length, my_budget - steps)
                    episode = _to_episode(raw, keep, spec.game, pols[slots[raw.env]].policy_id)
                    journal.append(
                        JournalRecord(
                            env=raw.env,
                            level_seed=raw.level_seed,
                            episode_return=episode.episode_return,
                            terminated=episode.terminated,
                            truncated=episode.truncated,
                            cut=keep < raw.length,
                            actions=episode.actions,
                        )
                    )
                    sink.write(episode, journal)
                    steps += keep
                    episodes += 1
                    return_sum += episode.episode_return
                    bar.update(keep)
                    now = time.monotonic()
                    if now - last_post > 0.5:
                        # Strings: tqdm prints round numbers as "3e+4".
                        bar.set_postfix(
                            episodes=f"{episodes:,}", mean_return=f"{return_sum / episodes:.2f}"
                        )
                        last_post = now
                    if now - last_flush >= commit_every_s:
                        sink.flush(journal)
                        last_flush = now
                    if steps >= my_budget:
                        break
            finally:
                stream.close()
                bar.set_postfix(
                    episodes=f"{episodes:,}", mean_return=f"{return_sum / max(episodes, 1):.2f}"
                )
                bar.close()
        mean = return_sum / episodes if episodes else None
        extra = dict(finish_info(mean if mean is not None else float("nan"))) if finish_info else {}
        journal.sync()
        sink.finish(extra)
    except BaseException:
        with contextlib.suppress(Exception):
            journal.sync()
            sink.abort()
        raise
    finally:
        journal.close()
        # The engine kept and freed ~1 GB of frame batches from several threads; glibc would
        # otherwise keep that memory resident for the rest of the process.
        release_free_memory()
    journal_path.unlink(missing_ok=True)
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
