"""Discrete implicit Q-learning (IQL; Kostrikov et al. 2021).

Four networks with separate encoders (``--agent_model``, ``--hidden_size`` features), as in the
predecessor: an actor (``Linear(hidden_size, 15)``, gain 0.01), a state value V (``Linear(hidden_size,
1)``), twin Q networks Q1 and Q2 (``Linear(hidden_size, 15)`` each) and a hard target copy of the
twin Q made every ``--target_update_freq`` updates (the first at step 0). Each update, in the order
of the authors' implementation::

    V:     mean(|tau - 1[u < 0]| * u ** 2),  u = min(Q1_target, Q2_target)(s, a) - V(s)
    Q_i:   mean((Q_i(s, a) - (r + gamma * (1 - terminated) * V(s'))) ** 2),  i = 1, 2
    actor: -mean(min(exp(temperature * (min(Q1_target, Q2_target)(s, a) - V(s))), 100)
                 * log pi(a | s))

with ``tau = --iql_expectile`` and ``temperature = --iql_temperature`` (an inverse temperature: it
multiplies the advantage). V takes its step first; the actor and Q losses then use the updated V,
and the advantage weights are constants (no gradient reaches Q or V through them). V never
evaluates an action outside the data, which is what keeps IQL in-distribution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.errors import ConfigError
from baselines.offline.algorithm import DataKind
from baselines.offline.networks import make_encoder
from baselines.offline.qlearning import (
    NUM_ACTIONS,
    check_shared_flags,
    frozen_copy,
    gradient_step,
    linear_head,
    obs_to_tensor,
    seeded,
    sync_target,
    td_target,
    to_floats,
)

__all__ = [
    "CONFIG",
    "DATA",
    "IQL",
    "IQLConfig",
    "TwinQ",
    "advantage_weights",
    "expectile_loss",
    "make",
]

DATA: DataKind = "transitions"

MAX_ADVANTAGE_WEIGHT = 100.0
"""Clip on ``exp(temperature * advantage)``, so a few large advantages cannot dominate the actor."""


@dataclass(frozen=True)
class IQLConfig:
    """IQL's flags (``train_offline`` names; defaults = the predecessor's final IQL settings)."""

    seed: int = 88
    lr: float = 5e-4
    hidden_size: int = 256
    agent_model: str = "impala"
    gamma: float = 0.99
    target_update_freq: int = 100
    iql_temperature: float = 3.0
    iql_expectile: float = 0.8

    def __post_init__(self) -> None:
        check_shared_flags(
            lr=self.lr,
            hidden_size=self.hidden_size,
            agent_model=self.agent_model,
            gamma=self.gamma,
            target_update_freq=self.target_update_freq,
        )
        if self.iql_temperature < 0:
            raise ConfigError(f"--iql_temperature must be >= 0, got {self.iql_temperature}")
        if not 0.0 < self.iql_expectile < 1.0:
            raise ConfigError(f"--iql_expectile must be in (0, 1), got {self.iql_expectile}")


CONFIG = IQLConfig


class TwinQ(nn.Module):
    """Two independent Q networks; ``forward`` returns both ``(N, 15)`` outputs."""

    def __init__(self, q1: nn.Module, q2: nn.Module) -> None:
        super().__init__()
        self.q1 = q1
        self.q2 = q2

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q1(obs), self.q2(obs)


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """``mean(|expectile - 1[diff < 0]| * diff ** 2)``: weight ``expectile`` above, ``1 - expectile``
    below, so V tends to an upper expectile of Q over the data's actions when ``expectile > 0.5``."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


def advantage_weights(advantage: torch.Tensor, temperature: float) -> torch.Tensor:
    """``min(exp(temperature * advantage), 100)``, computed without overflowing to inf."""
    return torch.exp((temperature * advantage).clamp(max=math.log(MAX_ADVANTAGE_WEIGHT)))


def _gather(values: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    return values.gather(1, action[:, None])[:, 0]


class IQL:
    """Discrete IQL: actor, value, twin Q and its target, with one Adam each (target excepted)."""

    name = "iql"
    data: DataKind = DATA

    def __init__(
        self,
        actor: nn.Module,
        value: nn.Module,
        critic: nn.Module,
        config: IQLConfig,
        device: torch.device,
    ) -> None:
        """Wrap ``actor`` (``obs -> (N, 15)`` logits), ``value`` (``obs -> (N, 1)``) and
        ``critic`` (``obs -> ((N, 15), (N, 15))``), moved to ``device``."""
        self.config = config
        self.device = device
        self.actor = actor.to(device)
        self.value = value.to(device)
        self.critic = critic.to(device)
        self.critic_target = frozen_copy(self.critic)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.lr)
        self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=config.lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.lr)

    def modules(self) -> Mapping[str, nn.Module]:
        """Actor, value, twin Q and the twin Q's target copy."""
        return {
            "actor": self.actor,
            "value": self.value,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        """One Adam each for the actor, the value and the twin Q."""
        return {
            "actor": self.actor_optimizer,
            "value": self.value_optimizer,
            "critic": self.critic_optimizer,
        }

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One step of V, then of the actor and the twin Q against the updated V.

        Args:
            batch: ``obs``, ``next_obs`` uint8 ``(B, 3, 64, 64)``, ``action`` int64, ``reward``
                float32, ``terminated`` bool; only ``terminated`` stops bootstrapping (a
                ``truncated`` end still bootstraps from ``V(next_obs)``).
            step: Updates done before this one; the target is copied first when
                ``step % target_update_freq == 0``.

        Returns:
            ``value_loss``, ``actor_loss``, ``critic_loss`` (Q1's plus Q2's), ``loss`` (their sum)
            and ``advantage_weight`` (the batch mean of the clipped weights).
        """
        cfg = self.config
        obs, action = batch["obs"], batch["action"]
        sync_target(self.critic, self.critic_target, step, cfg.target_update_freq)
        with torch.no_grad():
            q_target = _gather(torch.minimum(*self.critic_target(obs)), action)
        value_loss = expectile_loss(q_target - self.value(obs)[:, 0], cfg.iql_expectile)
        gradient_step(self.value_optimizer, value_loss)

        with torch.no_grad():
            v_obs, v_next = self.value(torch.cat([obs, batch["next_obs"]]))[:, 0].chunk(2)
            weights = advantage_weights(q_target - v_obs, cfg.iql_temperature)
            target = td_target(batch["reward"], batch["terminated"], cfg.gamma, v_next)
        log_pi = _gather(torch.log_softmax(self.actor(obs), dim=1), action)
        actor_loss = -(weights * log_pi).mean()
        gradient_step(self.actor_optimizer, actor_loss)

        q1, q2 = self.critic(obs)
        critic_loss = F.mse_loss(_gather(q1, action), target) + F.mse_loss(
            _gather(q2, action), target
        )
        gradient_step(self.critic_optimizer, critic_loss)
        return to_floats(
            loss=value_loss + actor_loss + critic_loss,
            value_loss=value_loss,
            actor_loss=actor_loss,
            critic_loss=critic_loss,
            advantage_weight=weights.mean(),
        )

    def probabilities(self, obs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """The actor's softmax (greedy evaluation takes its argmax)."""
        with torch.no_grad():
            logits = self.actor(obs_to_tensor(obs, self.device))
            probs: npt.NDArray[np.float64] = torch.softmax(logits.double(), dim=1).cpu().numpy()
        return probs


def make(config: IQLConfig, device: torch.device) -> IQL:
    """IQL with freshly initialised networks (weights depend on ``config.seed`` only)."""

    def encoder() -> nn.Module:
        return make_encoder(config.agent_model, config.hidden_size)

    hidden = config.hidden_size
    with seeded(config.seed):
        actor = nn.Sequential(encoder(), linear_head(hidden, NUM_ACTIONS, gain=0.01))
        value = nn.Sequential(encoder(), linear_head(hidden, 1))
        critic = TwinQ(
            nn.Sequential(encoder(), linear_head(hidden, NUM_ACTIONS)),
            nn.Sequential(encoder(), linear_head(hidden, NUM_ACTIONS)),
        )
    return IQL(actor, value, critic, config, device)
