"""Replay check: an episode is reproduced by its level seed and its recorded actions.

Procgen reseeds the game from the level seed at every reset, so playing the recorded actions in a
single-level environment (``start_level=level_seed, num_levels=1``) must reproduce every frame,
every reward and the episode's end exactly. ``offgen verify --replay N`` runs this on a sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offgen.data.schema import Episode
from offgen.data.store import OffgenStore
from offgen.envs.procgen import DistributionMode, EnvSpec, make_env, resolve_distribution_mode

__all__ = ["ReplayResult", "replay_episode", "replay_episodes"]


@dataclass(frozen=True)
class ReplayResult:
    """Outcome of replaying one episode.

    Attributes:
        index: Position of the episode in the store's table.
        ok: Whether the replay reproduced the episode exactly.
        message: ``"ok"`` or what differed first.
    """

    index: int
    ok: bool
    message: str


def replay_episode(
    episode: Episode, *, distribution_mode: DistributionMode = "easy", index: int = 0
) -> ReplayResult:
    """Replay ``episode`` and compare frames, rewards and its end.

    Episodes whose last frame is not the true final frame (legacy data) are compared on frames
    ``0..T-1``. An episode cut by a collection budget (truncated before the game's time limit) must
    simply not end early.
    """
    if episode.level_seed < 0:
        return ReplayResult(index, False, "episode has no level seed; it cannot be replayed")
    distribution_mode = resolve_distribution_mode(distribution_mode)  # a string from info.json
    if distribution_mode == "exploration":
        # Exploration mode has one fixed level and envpool accepts no level range there (see
        # offgen.envs.procgen); the level-seed check below still confirms it is the recorded one.
        spec = EnvSpec(episode.game, distribution_mode, 0, 0, "full")
    else:
        spec = EnvSpec(episode.game, distribution_mode, episode.level_seed, 1, None)
    env = make_env(spec, 1, seed=0)
    try:
        obs, info = env.reset()
        if int(info["level_seed"][0]) != episode.level_seed:
            return ReplayResult(index, False, f"environment started level {info['level_seed'][0]}")
        if not np.array_equal(obs[0], episode.observations[0]):
            return ReplayResult(index, False, "first frame differs")
        steps = episode.length
        limit = spec.max_episode_steps
        for t in range(steps):
            obs, reward, terminated, truncated, _info = env.step(
                np.array([int(episode.actions[t])], dtype=np.int32)
            )
            if float(reward[0]) != float(episode.rewards[t]):
                return ReplayResult(
                    index,
                    False,
                    f"reward at step {t} is {reward[0]}, recorded {episode.rewards[t]}",
                )
            last = t == steps - 1
            frame_checked = not last or episode.final_frame_is_true
            if frame_checked and not np.array_equal(obs[0], episode.observations[t + 1]):
                return ReplayResult(index, False, f"frame {t + 1} differs")
            done = bool(terminated[0] or truncated[0])
            if done and not last:
                return ReplayResult(
                    index, False, f"episode ended at step {t + 1}, recorded {steps}"
                )
            if last:
                cut = episode.truncated and steps < limit
                if not cut and not done:
                    return ReplayResult(index, False, f"episode did not end at step {steps}")
                if done and bool(terminated[0]) != episode.terminated:
                    return ReplayResult(
                        index,
                        False,
                        f"end differs: terminated={bool(terminated[0])}, recorded "
                        f"terminated={episode.terminated}",
                    )
        return ReplayResult(index, True, "ok")
    finally:
        env.close()


def replay_episodes(store: OffgenStore, num_episodes: int, seed: int = 0) -> list[ReplayResult]:
    """Replay a seeded random sample of ``num_episodes`` episodes of ``store``.

    Args:
        store: An open store.
        num_episodes: Sample size (all episodes if the store has fewer).
        seed: Seed of the sample.

    Returns:
        One :class:`ReplayResult` per sampled episode, in table order.
    """
    total = len(store.table)
    count = min(max(num_episodes, 0), total)
    picks = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
    mode = resolve_distribution_mode(store.info.env.distribution_mode)
    return [
        replay_episode(store.episode(int(i)), distribution_mode=mode, index=int(i)) for i in picks
    ]
