"""The IMPALA ResNet actor-critic of the predecessor's PPO (REFERENCE section 2).

Architecture: input ``/255``; three stages of ``conv3x3 -> maxpool 3x3 stride 2 -> 2 residual
blocks`` (channels 16, 32, 32; a block is ``relu-conv-relu-conv + skip``); flatten (2048) -> ReLU ->
Linear 256 -> ReLU; critic ``Linear(256, 1)``; policy ``Linear(256, 15)``.

State-dict naming (the predecessor's, which offgen's own checkpoints use too)::

    base.layer{1,2,3}.0.{weight,bias}          stage conv (3x3, padding 1)
    base.layer{1,2,3}.{2,3}.conv{1,2}.{weight,bias}   residual blocks (index 1 is the max-pool,
                                                      compiled in inference: pooling.py)
    base.fc.{weight,bias}                      Linear(2048, hidden)
    base.critic_linear.{weight,bias}           Linear(hidden, 1)
    dist.linear.{weight,bias}                  Linear(hidden, num_actions)

torch is imported lazily (``offgen[torch]``).
"""

from __future__ import annotations

from typing import Any

from offgen._optional import require
from offgen.policies.pooling import max_pool_3x3_s2

__all__ = ["build_impala", "impala_arch_from_state_dict"]


def build_impala(
    num_actions: int = 15,
    hidden_size: int = 256,
    channels: tuple[int, int, int] = (16, 32, 32),
    in_channels: int = 3,
) -> Any:
    """Build the IMPALA actor-critic as a ``torch.nn.Module``.

    ``module(obs)`` takes ``(N, 3, 64, 64)`` uint8 or float frames (0-255, CHW, as the
    predecessor's network) and returns
    ``(logits (N, num_actions), value (N,))``.
    """
    torch = require("torch", "torch")
    nn = torch.nn

    class ResidualBlock(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, width: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(width, width, 3, padding=1)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1)

        def forward(self, x: Any) -> Any:
            out = self.conv1(torch.relu(x))
            out = self.conv2(torch.relu(out))
            return out + x

    class MaxPool(nn.Module):  # type: ignore[misc,name-defined]
        """``nn.MaxPool2d(3, stride=2, padding=1)``, compiled in inference (pooling.py)."""

        def forward(self, x: Any) -> Any:
            return max_pool_3x3_s2(x)

    def stage(cin: int, cout: int) -> Any:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            MaxPool(),
            ResidualBlock(cout),
            ResidualBlock(cout),
        )

    class Base(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layer1 = stage(in_channels, channels[0])
            self.layer2 = stage(channels[0], channels[1])
            self.layer3 = stage(channels[1], channels[2])
            self.fc = nn.Linear(channels[2] * 8 * 8, hidden_size)
            self.critic_linear = nn.Linear(hidden_size, 1)

        def forward(self, x: Any) -> tuple[Any, Any]:
            x = self.layer3(self.layer2(self.layer1(x)))
            x = torch.relu(torch.flatten(x, 1))
            hidden = torch.relu(self.fc(x))
            return hidden, self.critic_linear(hidden)[:, 0]

    class Dist(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(hidden_size, num_actions)
            nn.init.orthogonal_(self.linear.weight, gain=0.01)
            nn.init.zeros_(self.linear.bias)

    class ImpalaActorCritic(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.base = Base()
            self.dist = Dist()
            self.arch = {
                "name": "impala",
                "num_actions": num_actions,
                "hidden_size": hidden_size,
                "channels": list(channels),
            }

        def forward(self, obs: Any) -> tuple[Any, Any]:
            hidden, value = self.base(obs.float() / 255.0)
            return self.dist.linear(hidden), value

    return ImpalaActorCritic()


def impala_arch_from_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Infer ``num_actions``, ``hidden_size`` and ``channels`` from a state dict's shapes.

    Raises:
        KeyError: If a required key is missing.
    """
    channels = tuple(int(state[f"base.layer{i}.0.weight"].shape[0]) for i in (1, 2, 3))
    return {
        "num_actions": int(state["dist.linear.weight"].shape[0]),
        "hidden_size": int(state["base.fc.weight"].shape[0]),
        "channels": channels,
        "in_channels": int(state["base.layer1.0.weight"].shape[1]),
    }
