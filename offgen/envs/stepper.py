"""Step one environment of a one-environment envpool with as little Python as possible.

Evaluation plays each planned episode in its own one-environment pool (pinned to the episode's
level) and so calls ``send``/``recv`` once per environment step. envpool's Python ``send`` converts
and checks the action, and its ``recv`` rebuilds gymnasium's ``(obs, reward, terminated, truncated,
info)`` tree: about 18 us of the 50 us that one coinrun step cost through them (measured with 64
pools on this project's 2-core machine), 0.35 s of a 300-episode evaluation. :func:`stepper` calls
envpool's own C++ ``_send``/``_recv`` with the same arrays instead, and reads the positions of the
state fields once. Any other environment object (an older or newer envpool without those members,
a scripted test environment) is stepped through the public gymnasium calls; both give the same
observations, rewards and ends (tested).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Stepper", "stepper"]

_STATE_FIELDS = {"obs", "reward", "done", "trunc"}
"""The fields of envpool's state list that a step reads."""

Step = tuple[npt.NDArray[np.uint8], float, bool]
"""The frame after the step (without the batch axis), its reward, and whether the episode ended
(terminated or truncated)."""


class Stepper(Protocol):
    """Sends one action to one environment and receives what followed."""

    def send(self, action: int) -> None:
        """Start the step (envpool runs it in its own thread)."""

    def recv(self) -> Step:
        """Wait for the step started by :meth:`send`."""


class _PublicStepper:
    """Through the gymnasium API: ``send(actions, env_ids)``, then ``recv()``."""

    def __init__(self, env: Any) -> None:
        self._env = env
        self._action = np.zeros(1, dtype=np.int32)
        self._env_id = np.zeros(1, dtype=np.int32)

    def send(self, action: int) -> None:
        self._action[0] = action
        self._env.send(self._action, self._env_id)

    def recv(self) -> Step:
        obs, reward, terminated, truncated, _info = self._env.recv()
        return obs[0], float(reward[0]), bool(terminated[0] or truncated[0])


class _EnvpoolStepper:
    """Through envpool's C++ calls. envpool may read the action array while the step runs, so it
    is rewritten only by the next :meth:`send`, after :meth:`recv` has waited for that step."""

    def __init__(self, env: Any) -> None:
        self._send = env._send
        self._recv = env._recv
        # The argument list envpool's own send() builds: one array per action key, env ids first
        # and the action (its last key) last.
        self._arrays = env._from(np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int32))
        self._action = self._arrays[-1]
        keys = list(env._state_keys)
        self._obs, self._reward = keys.index("obs"), keys.index("reward")
        self._done, self._trunc = keys.index("done"), keys.index("trunc")

    def send(self, action: int) -> None:
        self._action[0] = action
        self._send(self._arrays)

    def recv(self) -> Step:
        state = self._recv()
        ended = bool(state[self._done][0] or state[self._trunc][0])
        return state[self._obs][0], float(state[self._reward][0]), ended


def stepper(env: Any) -> Stepper:
    """A :class:`Stepper` for the only environment of ``env`` (a one-environment envpool).

    Uses envpool's C++ calls where ``env`` has them (envpool 1.2), else its public
    ``send``/``recv``.
    """
    direct = ("_send", "_recv", "_from", "_state_keys")
    if all(hasattr(env, name) for name in direct) and set(env._state_keys) >= _STATE_FIELDS:
        return _EnvpoolStepper(env)
    return _PublicStepper(env)
