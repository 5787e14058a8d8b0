"""Behaviour cloning: an encoder and a categorical head trained by maximum likelihood.

Network (REFERENCE section 7): the ``--agent_model`` encoder (IMPALA by default; pixels scaled to
[0, 1] inside it, the predecessor fed raw 0-255 pixels) with ``--hidden_size`` features, then
``Linear(hidden, 15)`` initialised orthogonally with gain 0.01 (near-uniform first policy).
Loss: ``-mean log pi(a | s)`` over the batch. Optimiser: Adam with ``--lr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from baselines.offline.algorithm import DataKind
from baselines.offline.networks import make_encoder
from offgen.data.schema import NUM_ACTIONS

__all__ = ["CONFIG", "DATA", "BCConfig", "BehaviourCloning", "make"]


@dataclass(frozen=True)
class BCConfig:
    """BC's settings (same names as the ``train_offline`` flags)."""

    lr: float = 5e-4
    hidden_size: int = 256
    agent_model: str = "impala"


class BCNetwork(nn.Module):
    """Encoder + ``Linear(hidden, 15)`` (gain 0.01) producing action logits."""

    def __init__(self, agent_model: str, hidden_size: int) -> None:
        super().__init__()
        self.encoder = make_encoder(agent_model, hidden_size)
        self.head = nn.Linear(hidden_size, NUM_ACTIONS)
        nn.init.orthogonal_(self.head.weight, gain=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 15)`` for uint8 CHW frames ``(N, 3, 64, 64)``."""
        logits: torch.Tensor = self.head(self.encoder(obs))
        return logits


def bc_loss(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``-mean_i log softmax(logits_i)[a_i]``."""
    return -torch.log_softmax(logits, dim=1).gather(1, actions.long()[:, None]).mean()


class BehaviourCloning:
    """BC satisfying :class:`~baselines.offline.algorithm.OfflineAlgorithm`."""

    name = "bc"
    data: DataKind = "transitions"

    def __init__(self, config: BCConfig, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.network = BCNetwork(config.agent_model, config.hidden_size).to(device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.lr)

    def modules(self) -> Mapping[str, Any]:
        """The policy network."""
        return {"policy": self.network}

    def optimizers(self) -> Mapping[str, Any]:
        """Its Adam optimiser."""
        return {"policy": self.optimizer}

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One Adam step on the negative log-likelihood of the batch's actions."""
        self.network.train()
        loss = bc_loss(self.network(batch["obs"]), batch["action"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        return {"loss/bc": float(loss.detach())}

    @torch.no_grad()
    def probabilities(self, obs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """``softmax(logits)`` for HWC uint8 observations ``(N, 64, 64, 3)``."""
        self.network.eval()
        frames = torch.from_numpy(np.ascontiguousarray(obs)).to(self.device).permute(0, 3, 1, 2)
        probs = torch.softmax(self.network(frames).double(), dim=1)
        out: npt.NDArray[np.float64] = probs.cpu().numpy()
        return out


CONFIG = BCConfig
DATA: DataKind = "transitions"


def make(config: BCConfig, device: torch.device) -> BehaviourCloning:
    """BC on ``device``."""
    return BehaviourCloning(config, device)
