"""Image encoders shared by the offline algorithms, selected by ``--agent_model``.

Every encoder takes uint8 CHW frames (0-255) and scales them to [0, 1] itself, so no algorithm can
train on raw pixels (the predecessor's BC, BCQ, CQL and IQL did; its DT and PPO divided by 255).

``impala`` is the IMPALA encoder of the study (3 stages of 16, 32, 32 channels, ~0.63M parameters
with the 256-wide linear layer; the predecessor's ``pporesnetbase`` / ``bcqresnetbase``). ``nature``
is the DQN encoder (the predecessor's ``dqn``): about 10x faster on a CPU, for quick runs and
tests. Convolutions are Xavier-uniform, linear layers orthogonal (the predecessor's initialisation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from baselines.common.errors import ConfigError

__all__ = ["AGENT_MODELS", "make_encoder"]

AGENT_MODELS = {
    "impala": "impala",
    "pporesnetbase": "impala",
    "bcqresnetbase": "impala",
    "nature": "nature",
    "dqn": "nature",
}
"""``--agent_model`` values (the predecessor's names included) and the encoder each one means."""


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv2(torch.relu(self.conv1(torch.relu(x))))
        return x + out


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.MaxPool2d(3, stride=2, padding=1),
        _Residual(cout),
        _Residual(cout),
    )


class Encoder(nn.Module):
    """uint8 ``(N, C, 64, 64)`` frames -> ``(N, hidden_size)`` features (ReLU)."""

    def __init__(self, trunk: nn.Module, trunk_out: int, hidden_size: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.fc = nn.Linear(trunk_out, hidden_size)
        self.hidden_size = hidden_size
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
            elif isinstance(module, nn.Linear):
                nn.init.orthogonal_(module.weight, gain=nn.init.calculate_gain("relu"))
            else:
                continue
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.trunk(obs.float() / 255.0)
        return torch.relu(self.fc(torch.relu(torch.flatten(x, 1))))


def make_encoder(agent_model: str, hidden_size: int, in_channels: int = 3) -> Encoder:
    """The encoder ``--agent_model`` names, with ``hidden_size`` output features.

    Raises:
        ConfigError: For an unknown ``agent_model`` (the message lists the known ones).
    """
    kind = AGENT_MODELS.get(agent_model.strip().lower())
    if kind is None:
        raise ConfigError(
            f"unknown --agent_model {agent_model!r}; use one of {', '.join(sorted(AGENT_MODELS))}"
        )
    if hidden_size < 1:
        raise ConfigError(f"--hidden_size must be >= 1, got {hidden_size}")
    trunk: Any
    if kind == "impala":
        trunk = nn.Sequential(_stage(in_channels, 16), _stage(16, 32), _stage(32, 32))
        return Encoder(trunk, 32 * 8 * 8, hidden_size)
    trunk = nn.Sequential(
        nn.Conv2d(in_channels, 32, 8, stride=4),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1),
    )
    return Encoder(trunk, 64 * 4 * 4, hidden_size)
