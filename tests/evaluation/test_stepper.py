"""The direct envpool stepper gives what envpool's public send/recv give, step for step."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("envpool")

from offgen.envs import EnvSpec, make_env
from offgen.envs.stepper import _EnvpoolStepper, _PublicStepper, stepper


def _play(kind: type, level: int, actions: list[int]) -> list[tuple[bytes, float, bool]]:
    env = make_env(EnvSpec("coinrun", "easy", level, 1, None), 1, 0)
    env.reset()
    step = kind(env)
    out = []
    for action in actions:
        step.send(action)
        obs, reward, ended = step.recv()
        assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
        out.append((obs.tobytes(), reward, ended))
        if ended:
            break
    env.close()
    return out


def test_direct_and_public_steps_are_identical() -> None:
    env = make_env(EnvSpec("coinrun", "easy", 3, 1, None), 1, 0)
    assert isinstance(stepper(env), _EnvpoolStepper)  # the pinned envpool has the C++ calls
    env.close()
    assert isinstance(stepper(object()), _PublicStepper)
    rng = np.random.default_rng(0)
    for level in (3, 11):
        # RIGHT+UP until the level ends (a reward and an end seen), then random actions.
        actions = [8] * 300
        direct = _play(_EnvpoolStepper, level, actions)
        assert direct == _play(_PublicStepper, level, actions)
        assert direct[-1][2], "the episode should end within 300 steps of RIGHT+UP"
        actions = rng.integers(0, 15, 80).tolist()
        assert _play(_EnvpoolStepper, level, actions) == _play(_PublicStepper, level, actions)
