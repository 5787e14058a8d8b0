"""Discrete batch-constrained Q-learning (BCQ; Fujimoto et al. 2019, "Benchmarking batch deep RL").

One network: a shared encoder (``--agent_model``, ``--hidden_size`` features) feeding a Q head and an
imitation head, each ``Linear(hidden_size, 256)-ReLU-Linear(256, 15)`` (the predecessor fed its heads
the trunk's 2048 flat features; here the encoder's own linear layer comes first, as for every
offline algorithm). An action is *allowed* in a state when its imitation probability divided by the
state's largest imitation probability exceeds ``--bcq_threshold``; the TD target and acting both
take the argmax of the online Q over allowed actions only, so BCQ never picks an action the data
makes unlikely. The loss per batch is::

    Huber(Q(s, a), r + gamma * (1 - terminated) * Q_target(s', a*))
    + NLL(imitation(s), a) + 0.01 * mean(imitation logits ** 2)

with ``a*`` the allowed argmax of the online Q at ``s'``. ``Q_target`` is a hard copy of the whole
network made every ``--target_update_freq`` updates (the first at step 0).
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
    check_shared_flags,
    frozen_copy,
    gradient_step,
    greedy_one_hot,
    mlp_head,
    obs_to_tensor,
    seeded,
    sync_target,
    td_target,
    to_floats,
)

__all__ = ["BCQ", "CONFIG", "DATA", "BCQConfig", "allowed_actions", "make", "masked_argmax"]

DATA: DataKind = "transitions"

LOGIT_PENALTY = 0.01
"""Weight of ``mean(imitation logits ** 2)`` (Fujimoto's discrete BCQ)."""


@dataclass(frozen=True)
class BCQConfig:
    """BCQ's flags (``train_offline`` names; defaults = the predecessor's final BCQ settings)."""

    seed: int = 88
    lr: float = 5e-4
    hidden_size: int = 256
    agent_model: str = "impala"
    gamma: float = 0.99
    target_update_freq: int = 1000
    bcq_threshold: float = 0.5

    def __post_init__(self) -> None:
        check_shared_flags(
            lr=self.lr,
            hidden_size=self.hidden_size,
            agent_model=self.agent_model,
            gamma=self.gamma,
            target_update_freq=self.target_update_freq,
        )
        # At 1 or more even the most likely action would be masked and no action could be taken.
        if not 0.0 <= self.bcq_threshold < 1.0:
            raise ConfigError(f"--bcq_threshold must be in [0, 1), got {self.bcq_threshold}")


CONFIG = BCQConfig


class BCQNetwork(nn.Module):
    """Shared encoder, then Q values and imitation logits, both ``(N, 15)``."""

    def __init__(self, encoder: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.q_head = mlp_head(hidden_size)
        self.imitation_head = mlp_head(hidden_size)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(obs)
        return self.q_head(features), self.imitation_head(features)


def allowed_actions(imitation_logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """``(N, 15)`` bool: imitation probability / the row's largest probability > ``threshold``.

    Compared in log space, so a tiny probability never underflows to 0 (which would mask it even
    at threshold 0). The most likely action always passes, since its ratio is 1 > threshold.
    """
    log_probs = torch.log_softmax(imitation_logits, dim=1)
    log_ratio = log_probs - log_probs.max(dim=1, keepdim=True).values
    if threshold == 0.0:
        return torch.ones_like(log_ratio, dtype=torch.bool)
    return log_ratio > math.log(threshold)


def masked_argmax(
    q: torch.Tensor, imitation_logits: torch.Tensor, threshold: float
) -> torch.Tensor:
    """``(N,)`` argmax of ``q`` over the allowed actions only (masked ones set to -inf)."""
    allowed = allowed_actions(imitation_logits, threshold)
    return q.masked_fill(~allowed, float("-inf")).argmax(dim=1)


class BCQ:
    """Discrete BCQ: one network, its target copy and one Adam optimiser."""

    name = "bcq"
    data: DataKind = DATA

    def __init__(self, network: nn.Module, config: BCQConfig, device: torch.device) -> None:
        """Wrap ``network`` (``obs -> (q, imitation_logits)``), moved to ``device``."""
        self.config = config
        self.device = device
        self.network = network.to(device)
        self.target = frozen_copy(self.network)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.lr)

    def modules(self) -> Mapping[str, nn.Module]:
        """The online network and its target copy."""
        return {"network": self.network, "target": self.target}

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        """The network's Adam."""
        return {"optimizer": self.optimizer}

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One step on the TD, imitation and logit-penalty losses.

        Args:
            batch: ``obs``, ``next_obs`` uint8 ``(B, 3, 64, 64)``, ``action`` int64, ``reward``
                float32, ``terminated`` bool; only ``terminated`` stops bootstrapping (a
                ``truncated`` end still bootstraps from ``next_obs``).
            step: Updates done before this one; the target is copied first when
                ``step % target_update_freq == 0``.

        Returns:
            ``loss`` and its parts ``q_loss``, ``imitation_loss``, ``logit_penalty`` (unweighted).
        """
        cfg = self.config
        sync_target(self.network, self.target, step, cfg.target_update_freq)
        action = batch["action"]
        with torch.no_grad():
            next_q, next_logits = self.network(batch["next_obs"])
            next_action = masked_argmax(next_q, next_logits, cfg.bcq_threshold)
            target_q = self.target(batch["next_obs"])[0].gather(1, next_action[:, None])[:, 0]
            target = td_target(batch["reward"], batch["terminated"], cfg.gamma, target_q)
        q, logits = self.network(batch["obs"])
        q_loss = F.smooth_l1_loss(q.gather(1, action[:, None])[:, 0], target)
        imitation_loss = F.cross_entropy(logits, action)
        logit_penalty = logits.pow(2).mean()
        loss = q_loss + imitation_loss + LOGIT_PENALTY * logit_penalty
        gradient_step(self.optimizer, loss)
        return to_floats(
            loss=loss,
            q_loss=q_loss,
            imitation_loss=imitation_loss,
            logit_penalty=logit_penalty,
        )

    def probabilities(self, obs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """One-hot of the allowed argmax of Q: a masked action always has probability 0."""
        with torch.no_grad():
            q, logits = self.network(obs_to_tensor(obs, self.device))
            return greedy_one_hot(masked_argmax(q, logits, self.config.bcq_threshold))


def make(config: BCQConfig, device: torch.device) -> BCQ:
    """BCQ with freshly initialised networks (weights depend on ``config.seed`` only)."""
    with seeded(config.seed):
        encoder = make_encoder(config.agent_model, config.hidden_size)
        network = BCQNetwork(encoder, config.hidden_size)
    return BCQ(network, config, device)
