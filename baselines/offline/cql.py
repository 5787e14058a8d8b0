"""Discrete conservative Q-learning (CQL(H); Kumar et al. 2020) on a double-DQN backbone.

One Q network: the encoder (``--agent_model``, ``--hidden_size`` features) and ``Linear(hidden_size,
15)``, plus a hard target copy made every ``--target_update_freq`` updates (the first at step 0).
The loss per batch is::

    Huber(Q(s, a), r + gamma * (1 - terminated) * Q_target(s', argmax_a' Q(s', a')))
    + cql_alpha * mean(logsumexp_a Q(s, a) - Q(s, a_data))

The second term pushes Q down on every action (softly, through the log-sum-exp) and up on the
action the data took, so actions the data never shows cannot look better than the data's.
"""

from __future__ import annotations

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
    greedy_one_hot,
    linear_head,
    obs_to_tensor,
    seeded,
    sync_target,
    td_target,
    to_floats,
)

__all__ = ["CONFIG", "CQL", "DATA", "CQLConfig", "conservative_penalty", "make"]

DATA: DataKind = "transitions"


@dataclass(frozen=True)
class CQLConfig:
    """CQL's flags (``train_offline`` names; defaults = the predecessor's final CQL settings)."""

    seed: int = 88
    lr: float = 5e-4
    hidden_size: int = 256
    agent_model: str = "impala"
    gamma: float = 0.99
    target_update_freq: int = 1000
    cql_alpha: float = 4.0

    def __post_init__(self) -> None:
        check_shared_flags(
            lr=self.lr,
            hidden_size=self.hidden_size,
            agent_model=self.agent_model,
            gamma=self.gamma,
            target_update_freq=self.target_update_freq,
        )
        if self.cql_alpha < 0:
            raise ConfigError(
                f"--cql_alpha must be >= 0 (0 is plain double DQN), got {self.cql_alpha}"
            )


CONFIG = CQLConfig


def conservative_penalty(q: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``mean(logsumexp_a Q(s, a) - Q(s, a_data))`` over the batch (always >= 0)."""
    q_data = q.gather(1, action[:, None])[:, 0]
    return (torch.logsumexp(q, dim=1) - q_data).mean()


class CQL:
    """Discrete CQL: one Q network, its target copy and one Adam optimiser."""

    name = "cql"
    data: DataKind = DATA

    def __init__(self, q_network: nn.Module, config: CQLConfig, device: torch.device) -> None:
        """Wrap ``q_network`` (``obs -> (N, 15)`` Q values), moved to ``device``."""
        self.config = config
        self.device = device
        self.q_network = q_network.to(device)
        self.target = frozen_copy(self.q_network)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=config.lr)

    def modules(self) -> Mapping[str, nn.Module]:
        """The online Q network and its target copy."""
        return {"q_network": self.q_network, "target": self.target}

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        """The Q network's Adam."""
        return {"optimizer": self.optimizer}

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One step on the double-DQN TD loss plus ``cql_alpha`` x the conservative penalty.

        Args:
            batch: ``obs``, ``next_obs`` uint8 ``(B, 3, 64, 64)``, ``action`` int64, ``reward``
                float32, ``terminated`` bool; only ``terminated`` stops bootstrapping (a
                ``truncated`` end still bootstraps from ``next_obs``).
            step: Updates done before this one; the target is copied first when
                ``step % target_update_freq == 0``.

        Returns:
            ``loss``, ``td_loss``, ``cql_penalty`` (unweighted) and ``q_data`` (mean Q(s, a_data)).
        """
        cfg = self.config
        sync_target(self.q_network, self.target, step, cfg.target_update_freq)
        action = batch["action"]
        with torch.no_grad():
            # Double DQN: the online network picks the next action, the target network values it.
            next_action = self.q_network(batch["next_obs"]).argmax(dim=1)
            target_q = self.target(batch["next_obs"]).gather(1, next_action[:, None])[:, 0]
            target = td_target(batch["reward"], batch["terminated"], cfg.gamma, target_q)
        q = self.q_network(batch["obs"])
        q_data = q.gather(1, action[:, None])[:, 0]
        td_loss = F.smooth_l1_loss(q_data, target)
        penalty = conservative_penalty(q, action)
        loss = td_loss + cfg.cql_alpha * penalty
        gradient_step(self.optimizer, loss)
        return to_floats(loss=loss, td_loss=td_loss, cql_penalty=penalty, q_data=q_data.mean())

    def probabilities(self, obs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """One-hot of the argmax of Q."""
        with torch.no_grad():
            return greedy_one_hot(self.q_network(obs_to_tensor(obs, self.device)).argmax(dim=1))


def make(config: CQLConfig, device: torch.device) -> CQL:
    """CQL with a freshly initialised Q network (weights depend on ``config.seed`` only)."""
    with seeded(config.seed):
        encoder = make_encoder(config.agent_model, config.hidden_size)
        q_network = nn.Sequential(encoder, linear_head(config.hidden_size, NUM_ACTIONS))
    return CQL(q_network, config, device)
