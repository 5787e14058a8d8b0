"""What BCQ, CQL and IQL share: flag checks, heads, TD targets, hard target copies and acting.

Each algorithm file keeps its own losses; this module holds only the pieces that would otherwise be
copied three times, so a fix to one (for example which end of an episode bootstraps) is made once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from baselines.common.errors import ConfigError
from baselines.offline.networks import AGENT_MODELS
from offgen.data.schema import NUM_ACTIONS

__all__ = [
    "NUM_ACTIONS",
    "check_shared_flags",
    "frozen_copy",
    "gradient_step",
    "greedy_one_hot",
    "linear_head",
    "mlp_head",
    "obs_to_tensor",
    "seeded",
    "sync_target",
    "td_target",
    "to_floats",
]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def check_shared_flags(
    *, lr: float, hidden_size: int, agent_model: str, gamma: float, target_update_freq: int
) -> None:
    """Validate the flags every Q-learning algorithm takes.

    Raises:
        ConfigError: Naming the first flag out of range and its valid range.
    """
    if not lr > 0:
        raise ConfigError(f"--lr must be > 0, got {lr}")
    if hidden_size < 1:
        raise ConfigError(f"--hidden_size must be >= 1, got {hidden_size}")
    if agent_model.strip().lower() not in AGENT_MODELS:
        raise ConfigError(
            f"unknown --agent_model {agent_model!r}; use one of {', '.join(sorted(AGENT_MODELS))}"
        )
    if not 0.0 <= gamma <= 1.0:
        raise ConfigError(f"--gamma must be in [0, 1], got {gamma}")
    if target_update_freq < 1:
        raise ConfigError(f"--target_update_freq must be >= 1, got {target_update_freq}")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build networks under ``seed`` without touching the caller's global torch RNG.

    The initial weights then depend on ``--seed`` alone, whatever the loop drew before.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def linear_head(hidden_size: int, outputs: int, gain: float = 1.0) -> nn.Linear:
    """``Linear(hidden_size, outputs)``, orthogonal with ``gain``, zero bias."""
    layer = nn.Linear(hidden_size, outputs)
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp_head(hidden_size: int, outputs: int = NUM_ACTIONS, width: int = 256) -> nn.Sequential:
    """``Linear(hidden_size, width)-ReLU-Linear(width, outputs)`` (BCQ's heads)."""
    return nn.Sequential(
        linear_head(hidden_size, width, gain=nn.init.calculate_gain("relu")),
        nn.ReLU(),
        linear_head(width, outputs),
    )


def frozen_copy(module: ModuleT) -> ModuleT:
    """A deep copy of ``module`` that no optimiser trains (a target network)."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


def gradient_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Zero ``optimizer``'s gradients, backpropagate ``loss`` and take one step."""
    optimizer.zero_grad(set_to_none=True)
    torch.autograd.backward(loss)
    optimizer.step()


def sync_target(online: nn.Module, target: nn.Module, step: int, every: int) -> bool:
    """Hard-copy ``online`` into ``target`` when ``step % every == 0`` (the first copy at step 0).

    Called at the start of an update, so the copy depends only on ``step`` and a resumed run
    copies at the same steps as an uninterrupted one.

    Returns:
        Whether a copy was made.
    """
    if step % every:
        return False
    target.load_state_dict(online.state_dict())
    return True


def td_target(
    reward: torch.Tensor, terminated: torch.Tensor, gamma: float, next_value: torch.Tensor
) -> torch.Tensor:
    """``r + gamma * (1 - terminated) * next_value``.

    Only ``terminated`` stops bootstrapping: an episode cut by a time limit (``truncated``) did not
    end in the environment, so its last transition still bootstraps from the next frame.
    """
    return reward + gamma * (~terminated).to(reward.dtype) * next_value


def obs_to_tensor(obs: npt.NDArray[np.uint8], device: torch.device) -> torch.Tensor:
    """HWC uint8 observations ``(N, 64, 64, 3)`` -> CHW uint8 ``(N, 3, 64, 64)`` on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(obs)).to(device).permute(0, 3, 1, 2)


def greedy_one_hot(actions: torch.Tensor) -> npt.NDArray[np.float64]:
    """``(N,)`` chosen actions -> ``(N, 15)`` float64 one-hot probabilities."""
    probs = np.zeros((actions.shape[0], NUM_ACTIONS), dtype=np.float64)
    probs[np.arange(actions.shape[0]), actions.cpu().numpy()] = 1.0
    return probs


def to_floats(**values: torch.Tensor) -> dict[str, float]:
    """Scalar tensors -> plain floats with one device synchronisation instead of one per value."""
    numbers = torch.stack([value.detach().float() for value in values.values()]).tolist()
    return dict(zip(values, numbers, strict=True))
