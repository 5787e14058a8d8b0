"""EpisodeAssembler: frames gathered from the kept step batches, copies, bounded retention."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from offgen.collect.assembler import _TRIM_EVERY, EpisodeAssembler
from offgen.envs import EnvSpec, make_env

NUM_ENVS = 3


def frame_batch(clock: int) -> np.ndarray:
    """Batch of ``clock``: every frame of env ``i`` filled with a value naming (clock, env)."""
    batch = np.empty((NUM_ENVS, 64, 64, 3), dtype=np.uint8)
    for i in range(NUM_ENVS):
        batch[i] = (clock * NUM_ENVS + i) % 256
    return batch


def drive(
    asm: EpisodeAssembler, lengths: list[list[int]], clocks: int, *, mutate: bool = False
) -> list[Any]:
    """Play scripted episode lengths per env (envpool semantics: a reset step after each end)."""
    info = {"level_seed": np.arange(NUM_ENVS) + 100}
    first = frame_batch(0)
    asm.begin(first, info)
    if mutate:
        first[:] = 255  # a caller reusing its buffer must not change what was recorded
    remaining = [list(ls) for ls in lengths]
    t = [0] * NUM_ENVS
    resetting = [False] * NUM_ENVS
    finished = []
    for clock in range(1, clocks + 1):
        term = np.zeros(NUM_ENVS, dtype=bool)
        for i in range(NUM_ENVS):
            if resetting[i]:
                t[i], resetting[i] = 0, False
                continue
            t[i] += 1
            if remaining[i] and t[i] == remaining[i][0]:
                term[i] = True
                remaining[i].pop(0)
                resetting[i] = True
        obs = frame_batch(clock)
        actions = np.full(NUM_ENVS, clock % 15)
        rewards = np.full(NUM_ENVS, 0.5, dtype=np.float32)
        info = {"level_seed": np.arange(NUM_ENVS) + 100 + clock}
        finished += asm.step(actions, obs, rewards, term, np.zeros(NUM_ENVS, bool), info)
        if mutate:
            obs[:] = 255
    return finished


@pytest.mark.parametrize("borrow", [False, True])
def test_frames_are_the_episode_steps_in_order(borrow: bool) -> None:
    asm = EpisodeAssembler(NUM_ENVS, 50, borrow_observations=borrow)
    lengths = [[5, 40, 3], [70], [1, 1, 1, 2]]  # 70 > the hint: buffers must grow
    episodes = drive(asm, lengths, 90, mutate=not borrow)
    got = {(e.env, e.ordinal): e for e in episodes}
    assert sorted(got) == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3)]
    for env, env_lengths in enumerate(lengths):
        start = 0  # clock of the episode's first frame
        for ordinal, length in enumerate(env_lengths):
            episode = got[(env, ordinal)]
            assert episode.length == length
            expected = [
                (clock * NUM_ENVS + env) % 256 for clock in range(start, start + length + 1)
            ]
            assert [int(f[0, 0, 0]) for f in episode.frames] == expected
            assert (episode.frames == episode.frames[:, :1, :1, :1]).all()
            assert episode.actions.tolist() == [
                c % 15 for c in range(start + 1, start + length + 1)
            ]
            assert episode.level_seed == 100 + env + start
            assert episode.clock == start + length
            start += length + 1  # the reset step's frame starts the next episode


def test_default_mode_copies_what_the_caller_may_reuse() -> None:
    asm = EpisodeAssembler(NUM_ENVS, 20)
    episodes = drive(asm, [[4], [6], [2]], 10, mutate=True)
    assert all((e.frames != 255).all() for e in episodes)


def test_kept_step_batches_are_bounded_by_the_longest_episode_in_progress() -> None:
    asm = EpisodeAssembler(NUM_ENVS, 50, borrow_observations=True)
    drive(asm, [[10] * 40, [30] * 12, [20] * 18], 400)
    # All episodes of 10-30 steps: never more than the longest one plus the trimming slack.
    assert len(asm._steps) <= 31 + _TRIM_EVERY


def test_envpool_hands_out_a_fresh_array_every_step() -> None:
    """What the collector relies on to keep envpool's batches without copying them."""
    env = make_env(EnvSpec("coinrun"), 4, seed=0)
    try:
        kept, copies = [], []
        obs, _ = env.reset()
        rng = np.random.default_rng(0)
        for _ in range(40):
            kept.append(obs)
            copies.append(obs.copy())
            obs, *_ = env.step(rng.integers(0, 15, 4).astype(np.int32))
        assert all(np.array_equal(k, c) for k, c in zip(kept, copies, strict=True))
        assert len({k.__array_interface__["data"][0] for k in kept}) == len(kept)
    finally:
        env.close()
