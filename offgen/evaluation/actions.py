"""How actions are chosen during evaluation: greedy, sampled, or epsilon-greedy.

A policy that exposes its action distribution (``probabilities(obs) -> (N, A)``, as
:class:`~offgen.policies.TorchPolicy` does) is evaluated in the requested mode whatever its own
``greedy`` setting. A policy that does not (e.g. :class:`~offgen.policies.RandomPolicy`, a plain
callable) chooses through its own ``act``; ``epsilon`` still replaces its choice by a uniform random
action with probability ``eps``. Every random draw comes from the episode's own uniforms
(:func:`offgen.evaluation.plan.episode_uniforms`), so evaluation is reproducible in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from offgen.data.schema import NUM_ACTIONS
from offgen.errors import UnknownNameError
from offgen.policies.base import Policy, sample_categorical

__all__ = ["ActionMode", "DistributionPolicy", "choose_actions", "describe_actions"]

Kind = Literal["greedy", "sample", "epsilon"]


@runtime_checkable
class DistributionPolicy(Protocol):
    """A policy that can say how likely each action is (then any :class:`ActionMode` applies)."""

    def probabilities(self, obs: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
        """``(N, A)`` action probabilities for a batch of observations."""
        ...


@dataclass(frozen=True)
class ActionMode:
    """Greedy (argmax), sampled, or epsilon-greedy actions.

    Build with :meth:`greedy`, :meth:`sample`, :meth:`epsilon` or :meth:`parse`; ``str(mode)`` is the
    form written into reports and accepted by ``--action`` (``greedy``, ``sample``,
    ``epsilon:0.05``).
    """

    kind: Kind = "greedy"
    eps: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("greedy", "sample", "epsilon"):
            raise UnknownNameError(
                f"unknown action mode {self.kind!r}; use greedy, sample or epsilon:<eps>"
            )
        if not 0.0 <= self.eps <= 1.0 or (self.kind != "epsilon" and self.eps):
            raise UnknownNameError(
                f"invalid epsilon {self.eps!r} for action mode {self.kind!r}; epsilon:<eps> takes "
                "0 <= eps <= 1 and the other modes take none"
            )

    @classmethod
    def greedy(cls) -> ActionMode:
        """The most likely action."""
        return cls("greedy")

    @classmethod
    def sample(cls) -> ActionMode:
        """An action drawn from the policy's distribution."""
        return cls("sample")

    @classmethod
    def epsilon(cls, eps: float) -> ActionMode:
        """A uniform random action with probability ``eps``, else the greedy one."""
        return cls("epsilon", float(eps))

    @classmethod
    def parse(cls, text: str) -> ActionMode:
        """``greedy``, ``sample`` (or ``stochastic``) or ``epsilon:<eps>``.

        Raises:
            UnknownNameError: For anything else.
        """
        key = text.strip().lower()
        if key in ("greedy", "argmax", "deterministic"):
            return cls.greedy()
        if key in ("sample", "sampled", "stochastic"):
            return cls.sample()
        if key.startswith("epsilon:") or key.startswith("eps:"):
            try:
                return cls.epsilon(float(key.split(":", 1)[1]))
            except ValueError:
                pass
        raise UnknownNameError(
            f"unknown action mode {text!r}; use greedy, sample or epsilon:<eps> (e.g. epsilon:0.05)"
        )

    def __str__(self) -> str:
        return f"epsilon:{self.eps:g}" if self.kind == "epsilon" else self.kind


def describe_actions(policy: Policy, mode: ActionMode) -> str:
    """What the report states about the actions: the mode, or that the policy chose itself."""
    if isinstance(policy, DistributionPolicy):
        return str(mode)
    own = "policy's own act() (no action distribution exposed)"
    return f"{own} + epsilon:{mode.eps:g}" if mode.kind == "epsilon" else own


def choose_actions(
    policy: Policy,
    mode: ActionMode,
    obs: npt.NDArray[np.uint8],
    uniforms: npt.NDArray[np.float64],
) -> npt.NDArray[np.int64]:
    """One action per row of ``obs`` under ``mode``.

    Args:
        policy: The evaluated policy.
        mode: How to turn its distribution into actions.
        obs: The batch the policy sees.
        uniforms: ``(N, 2)``: column 0 samples the policy, column 1 is the epsilon coin (a coin
            ``u < eps`` also picks the random action, ``floor(u / eps * A)``).
    """
    if isinstance(policy, DistributionPolicy):
        probs = np.asarray(policy.probabilities(obs))
        if mode.kind == "sample":
            return sample_categorical(probs, uniforms[:, 0])
        actions: npt.NDArray[np.int64] = probs.argmax(axis=1).astype(np.int64)
    else:
        actions = np.asarray(policy.act(obs, uniforms[:, 0]), dtype=np.int64)
    if mode.kind == "epsilon" and mode.eps > 0:
        coin = uniforms[:, 1]
        explore = coin < mode.eps
        random = np.minimum((coin / mode.eps * NUM_ACTIONS).astype(np.int64), NUM_ACTIONS - 1)
        actions = np.where(explore, random, actions)
    return actions
