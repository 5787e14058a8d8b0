"""Level plans: which level every evaluation episode plays, fixed before any policy acts.

A plan is a pure function of ``(seed, level range, episodes)``: it never depends on the policy, on
the number of parallel environments or on envpool's own level generator. Two policies evaluated
with the same seed therefore play exactly the same levels in the same order (paired comparison),
and every planned episode is played exactly once (no bias towards short episodes).

Levels are drawn without replacement; when a split has fewer levels than episodes (``level_1``,
``level_40``), the plan cycles through fresh permutations, so every level is played equally often
(up to one) before any repeats.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from offgen.envs.procgen import LevelRange

__all__ = ["FULL_DISTRIBUTION_LEVELS", "EpisodeDraws", "episode_rng", "plan_levels"]

FULL_DISTRIBUTION_LEVELS = 2**31 - 1
"""Level seeds of Procgen's full distribution (``num_levels=0``): ``0 .. 2^31 - 2``."""

# Separates evaluation's generators from every other stream keyed by a user seed in offgen.
_PLAN_STREAM = 0x0E7A1
_ACTION_STREAM = 0x0E7A2


def plan_levels(levels: LevelRange, episodes: int, seed: int) -> tuple[int, ...]:
    """The level seed of each of ``episodes`` evaluation episodes on ``levels``.

    Args:
        levels: The split's level range (``num_levels == 0``: the full distribution).
        episodes: Number of episodes to plan.
        seed: Evaluation seed; the same seed gives the same plan everywhere.

    Returns:
        ``episodes`` level seeds, in the order they are handed to environments.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    count = levels.num_levels or FULL_DISTRIBUTION_LEVELS
    start = levels.start_level if levels.num_levels else 0
    rng = np.random.default_rng([int(seed), _PLAN_STREAM, levels.start_level, levels.num_levels])
    drawn: list[int] = []
    while len(drawn) < episodes:
        take = min(episodes - len(drawn), count)
        drawn.extend(int(x) for x in rng.choice(count, size=take, replace=False))
    return tuple(start + x for x in drawn)


def episode_rng(seed: int, levels: LevelRange, episode: int) -> np.random.Generator:
    """The generator of planned episode ``episode``'s random draws (sampling, epsilon coins).

    Keyed by the episode's place in the plan, so an episode's random actions do not depend on
    which environment plays it or on what the other environments do.
    """
    return np.random.default_rng(
        [int(seed), _ACTION_STREAM, levels.start_level, levels.num_levels, int(episode)]
    )


class EpisodeDraws:
    """A planned episode's random numbers: row ``t`` holds the two uniforms of step ``t``.

    Column 0 samples the policy's action, column 1 is the epsilon coin
    (:func:`offgen.evaluation.actions.choose_actions`). The rows come from :func:`episode_rng` in
    blocks of 1,024 steps, so an episode draws the same numbers however it is played: by the
    evaluation's pool, or by one environment stepping episodes one after another.
    """

    _BLOCK = 1024

    def __init__(self, seed: int, levels: LevelRange, episode: int) -> None:
        self._rng = episode_rng(seed, levels, episode)
        self._rows = self._rng.random((self._BLOCK, 2))

    def row(self, t: int) -> npt.NDArray[np.float64]:
        """The two uniforms of step ``t``."""
        while t >= len(self._rows):
            self._rows = np.concatenate([self._rows, self._rng.random((self._BLOCK, 2))])
        row: npt.NDArray[np.float64] = self._rows[t]
        return row
