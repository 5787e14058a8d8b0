"""Stores for the sampler tests and a brute-force reference built episode by episode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import random_episode

from offgen.data import Episode, StoreWriter
from offgen.data.dataset import OffgenDataset


def write_store(path: Path, episodes: list[Episode], **kw: Any) -> OffgenDataset:
    """Write ``episodes`` into a small multi-shard store (shards of 64 frames, chunks of 16)."""
    kw.setdefault("shard_frames", 64)
    kw.setdefault("chunk_frames", 16)
    with StoreWriter(path, game=episodes[0].game, **kw) as writer:
        for ep in episodes:
            writer.write(ep)
    return OffgenDataset.open(path)


def mixed_episodes(seed: int, count: int = 24) -> list[Episode]:
    """Random-frame episodes of lengths 1-40, ending terminated, truncated or neither."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        end = i % 3
        ep = random_episode(
            rng,
            int(rng.integers(1, 41)) if i else 1,
            terminated=end == 0,
            truncated=end == 1,
            policy_id=f"p{i % 2}",
        )
        out.append(ep)
    return out


@pytest.fixture
def small_ds(tmp_path: Path) -> OffgenDataset:
    """24 random episodes (one of length 1) over several shards."""
    return write_store(tmp_path / "small", mixed_episodes(0))


@pytest.fixture
def procgen_ds(tmp_path: Path, procgen_episodes: list[Episode]) -> OffgenDataset:
    """The twelve real coinrun episodes in a multi-shard store."""
    return write_store(tmp_path / "procgen", procgen_episodes, shard_frames=128, chunk_frames=32)


class Reference:
    """Brute force from ``store.episode(i)``: what every sampler must return."""

    def __init__(self, ds: OffgenDataset) -> None:
        self.eps = {int(p): ds.store.episode(int(p)) for p in ds.selection}

    def stack(self, ep: Episode, t: int, k: int) -> np.ndarray:
        frames = [ep.observations[max(0, t - j)] for j in range(k - 1, -1, -1)]
        return np.stack(frames) if k > 1 else frames[0]

    def check_transitions(self, batch: Any, k: int = 1, layout: str = "HWC") -> None:
        for i in range(len(batch)):
            ep = self.eps[int(batch.episode[i])]
            t = int(batch.timestep[i])
            assert 0 <= t < ep.length
            obs, nxt = self.stack(ep, t, k), self.stack(ep, t + 1, k)
            if layout == "CHW":
                obs, nxt = np.moveaxis(obs, -1, -3), np.moveaxis(nxt, -1, -3)
            np.testing.assert_array_equal(batch.obs[i], obs)
            np.testing.assert_array_equal(batch.next_obs[i], nxt)
            assert batch.action[i] == ep.actions[t]
            assert batch.reward[i] == ep.rewards[t]
            last = t == ep.length - 1
            assert bool(batch.terminated[i]) == (last and ep.terminated)
            assert bool(batch.truncated[i]) == (last and ep.truncated)

    def rtg(self, ep: Episode, gamma: float) -> np.ndarray:
        out = np.zeros(ep.length)
        acc = 0.0
        for t in range(ep.length - 1, -1, -1):
            acc = float(ep.rewards[t]) + gamma * acc
            out[t] = acc
        return out

    def check_windows(self, batch: Any, context: int, pad: str, gamma: float = 1.0) -> None:
        for i in range(len(batch)):
            ep = self.eps[int(batch.episode[i])]
            real = np.flatnonzero(batch.mask[i])
            assert len(real) >= 1
            # Real slots are contiguous and on the side opposite the padding.
            assert np.array_equal(real, np.arange(real[0], real[0] + len(real)))
            if pad == "left":
                assert real[-1] == context - 1
            else:
                assert real[0] == 0
            t0 = int(batch.timesteps[i, real[0]])
            # Shorter than K only when the episode ends inside the window.
            assert len(real) == min(context, ep.length - t0)
            rtg = self.rtg(ep, gamma)
            for j, slot in enumerate(real):
                t = t0 + j
                assert batch.timesteps[i, slot] == t
                np.testing.assert_array_equal(batch.states[i, slot], ep.observations[t])
                assert batch.actions[i, slot] == ep.actions[t]
                assert batch.rewards[i, slot] == ep.rewards[t]
                assert batch.returns_to_go[i, slot] == pytest.approx(rtg[t], rel=1e-5, abs=1e-4)
            pads = ~batch.mask[i]
            assert not batch.states[i, pads].any()
            assert not batch.actions[i, pads].any()
            assert not batch.returns_to_go[i, pads].any()
