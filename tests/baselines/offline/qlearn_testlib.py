"""Tiny fixed inputs for the BCQ / CQL / IQL tests: frames that name a state, lookup-table networks.

A frame whose pixels all equal ``k`` is state ``k``; a :class:`Table` maps it to row ``k`` of a
parameter, so a test sets every network output exactly and computes the expected losses by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

NUM_ACTIONS = 15
GAMMA = 0.9


def frames(states: list[int]) -> torch.Tensor:
    """uint8 ``(B, 3, 64, 64)`` frames; frame ``i`` has every pixel equal to ``states[i]``."""
    ids = torch.tensor(states, dtype=torch.uint8)
    return ids[:, None, None, None].expand(-1, 3, 64, 64).contiguous()


def frames_hwc(states: list[int]) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The same frames as HWC numpy (what evaluation passes to ``probabilities``)."""
    return frames(states).permute(0, 2, 3, 1).numpy().copy()


class Table(nn.Module):
    """State ``k`` -> row ``k`` of ``rows`` (a trainable lookup table)."""

    def __init__(self, rows: np.ndarray[Any, Any]) -> None:
        super().__init__()
        self.rows = nn.Parameter(torch.tensor(rows, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.rows[obs[:, 0, 0, 0].long()]


class PairTable(nn.Module):
    """State ``k`` -> (row ``k`` of ``first``, row ``k`` of ``second``) (BCQ's two heads)."""

    def __init__(self, first: np.ndarray[Any, Any], second: np.ndarray[Any, Any]) -> None:
        super().__init__()
        self.first = Table(first)
        self.second = Table(second)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.first(obs), self.second(obs)


def fixed_batch() -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray[Any, Any]]]:
    """Four transitions s -> s' over states 0-3 -> 4-7, as torch (for ``update``) and numpy.

    Transition 1 ends by termination (no bootstrap); transition 2 ends by a time limit
    (``truncated``: it must still bootstrap).
    """
    raw = {
        "state": np.array([0, 1, 2, 3]),
        "next_state": np.array([4, 5, 6, 7]),
        "action": np.array([3, 0, 14, 7]),
        "reward": np.array([1.0, -0.5, 2.0, 0.0], dtype=np.float32),
        "terminated": np.array([False, True, False, False]),
        "truncated": np.array([False, False, True, False]),
    }
    batch = {
        "obs": frames(raw["state"].tolist()),
        "next_obs": frames(raw["next_state"].tolist()),
        "action": torch.tensor(raw["action"], dtype=torch.int64),
        "reward": torch.tensor(raw["reward"]),
        "terminated": torch.tensor(raw["terminated"]),
        "truncated": torch.tensor(raw["truncated"]),
    }
    return batch, raw


def huber(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Huber with delta 1, written out."""
    a = np.abs(x)
    return np.where(a < 1.0, 0.5 * x * x, a - 0.5)


def log_softmax(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Row-wise log-softmax in float64."""
    x = x.astype(np.float64)
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def random_batch(batch_size: int, seed: int) -> dict[str, torch.Tensor]:
    """Random uint8 frames, actions and rewards (a smoke-test batch)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randint(0, 256, (batch_size, 3, 64, 64), generator=gen, dtype=torch.uint8),
        "next_obs": torch.randint(
            0, 256, (batch_size, 3, 64, 64), generator=gen, dtype=torch.uint8
        ),
        "action": torch.randint(0, NUM_ACTIONS, (batch_size,), generator=gen),
        "reward": torch.rand(batch_size, generator=gen),
        "terminated": torch.rand(batch_size, generator=gen) < 0.1,
        "truncated": torch.zeros(batch_size, dtype=torch.bool),
    }
