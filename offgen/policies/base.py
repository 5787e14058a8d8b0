"""The behaviour-policy interface: observations in, actions out.

A policy receives a batch of observations, ``(N, 64, 64, 3)`` ``uint8`` **HWC** (the store's
layout, so a policy trained on offgen data sees the same arrays), and one
uniform random number in ``[0, 1)`` per row, and returns ``N`` actions in ``[0, 15)``. The uniforms
come from the collector, which derives them from ``(seed, shard, env, episode)``: that is what makes
a collection reproducible and resumable, so a stochastic policy must draw its randomness from them
(:func:`sample_categorical` does the inverse-CDF draw) rather than from a global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from offgen.data.schema import NUM_ACTIONS
from offgen.errors import SchemaError

__all__ = [
    "CallablePolicy",
    "EpisodicPolicy",
    "Policy",
    "RandomPolicy",
    "as_policy",
    "sample_categorical",
]

Obs = npt.NDArray[np.uint8]
Uniforms = npt.NDArray[np.float64]
Actions = npt.NDArray[np.int64]


@runtime_checkable
class Policy(Protocol):
    """What the collector needs from a behaviour policy.

    Attributes:
        policy_id: Stable identifier recorded with every episode (e.g. ``"random"``, or
            ``"ckpt:<sha256 prefix>"``).
        metadata: JSON-able facts recorded in the store's ``policies.json`` (checkpoint path and
            hash, training step, measured return, ...).
    """

    @property
    def policy_id(self) -> str:
        """Stable identifier recorded with every episode."""
        ...

    @property
    def metadata(self) -> Mapping[str, Any]:
        """JSON-able facts recorded in ``policies.json``."""
        ...

    def act(self, obs: Obs, uniforms: Uniforms) -> Actions:
        """Actions for a batch of HWC uint8 observations, using ``uniforms`` for any sampling."""
        ...


@runtime_checkable
class EpisodicPolicy(Protocol):
    """Optional: a policy that remembers each running episode (e.g. a Decision Transformer's
    history of states, actions and returns-to-go).

    A plain :class:`Policy` sees one batch of observations at a time and never learns which
    episode a row belongs to. Evaluation (:func:`offgen.evaluation.evaluate`) plays several episodes
    at once, each in an environment *slot* ``0 .. num_envs - 1``; for a policy that also has these
    three methods it says, in this order:

    1. :meth:`start_episode` when a slot begins an episode (before its first observation is acted
       on; the slot's previous episode, if any, has ended);
    2. each step, :meth:`set_slots` with the slot of every row of the ``act`` / ``probabilities``
       call that follows;
    3. after the environments stepped, :meth:`observe` with the action each of those slots took
       (after greedy, sampled or epsilon choice), the reward it received and whether its episode
       ended.

    Policies without these methods are called exactly as before.
    """

    def start_episode(self, slot: int) -> None:
        """Slot ``slot`` begins a new episode: forget what it held."""
        ...

    def set_slots(self, slots: npt.NDArray[np.int64]) -> None:
        """Row ``i`` of the next ``act`` / ``probabilities`` call is slot ``slots[i]``."""
        ...

    def observe(
        self,
        slots: npt.NDArray[np.int64],
        actions: npt.NDArray[np.int64],
        rewards: npt.NDArray[np.float64],
        ended: npt.NDArray[np.bool_],
    ) -> None:
        """Slot ``slots[i]`` took ``actions[i]``, received ``rewards[i]``; ``ended[i]``: its
        episode is over (terminated or truncated)."""
        ...


def sample_categorical(probs: npt.NDArray[Any], uniforms: Uniforms) -> Actions:
    """Draw one action per row of ``probs`` by inverse CDF with the given uniforms.

    Deterministic for fixed ``(probs, uniforms)``, so collections are reproducible.
    """
    cdf = np.cumsum(np.asarray(probs, dtype=np.float64), axis=1)
    cdf /= cdf[:, -1:]
    actions = (uniforms[:, None] >= cdf).sum(axis=1)
    out: Actions = np.minimum(actions, probs.shape[1] - 1).astype(np.int64)
    return out


@dataclass(frozen=True)
class RandomPolicy:
    """Uniform random actions over the 15 Procgen actions."""

    policy_id: str = "random"
    metadata: Mapping[str, Any] = field(default_factory=lambda: {"kind": "random"})

    def act(self, obs: Obs, uniforms: Uniforms) -> Actions:
        """``floor(u * 15)`` per row."""
        return np.minimum((uniforms * NUM_ACTIONS).astype(np.int64), NUM_ACTIONS - 1)


@dataclass(frozen=True)
class CallablePolicy:
    """Wrap any function ``fn(obs) -> actions`` (or ``fn(obs, uniforms) -> actions``).

    The function receives HWC uint8 observations ``(N, 64, 64, 3)``. For a reproducible, resumable collection it must
    be deterministic given its inputs.
    """

    fn: Callable[..., Any]
    policy_id: str = "callable"
    metadata: Mapping[str, Any] = field(default_factory=lambda: {"kind": "callable"})
    takes_uniforms: bool = False

    def act(self, obs: Obs, uniforms: Uniforms) -> Actions:
        """Call the function and check its output."""
        out = self.fn(obs, uniforms) if self.takes_uniforms else self.fn(obs)
        actions = np.asarray(out).reshape(-1)
        if actions.shape[0] != obs.shape[0]:
            raise SchemaError(
                f"policy {self.policy_id!r} returned {actions.shape[0]} actions for "
                f"{obs.shape[0]} observations"
            )
        if actions.dtype.kind not in "iu" or actions.min() < 0 or actions.max() >= NUM_ACTIONS:
            raise SchemaError(
                f"policy {self.policy_id!r} returned actions outside the integers [0, {NUM_ACTIONS})"
            )
        return actions.astype(np.int64)


def as_policy(obj: Policy | Callable[..., Any], policy_id: str = "callable") -> Policy:
    """Return ``obj`` if it is a :class:`Policy`, else wrap a plain callable."""
    if isinstance(obj, Policy):
        return obj
    if callable(obj):
        return CallablePolicy(obj, policy_id=policy_id)
    raise TypeError(f"not a policy or callable: {type(obj).__name__}")
