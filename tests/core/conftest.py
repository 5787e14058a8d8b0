"""Fixtures for the core store / legacy tests."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.factories import EpisodeFactory

from offgen.data import Episode


@pytest.fixture
def small_episodes(episode_factory: EpisodeFactory) -> list[Episode]:
    """Eight synthetic episodes of 20-90 steps."""
    rng = np.random.default_rng(1)
    return [episode_factory.smooth(rng, int(rng.integers(20, 90))) for _ in range(8)]
