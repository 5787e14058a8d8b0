"""BC: the loss against a hand computation, the head's initialisation, probabilities, learning."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.offline.bc import BCConfig, bc_loss, make  # noqa: E402
from baselines.offline.registry import algorithm_config, algorithm_module  # noqa: E402


def test_loss_equals_the_hand_computed_negative_log_likelihood() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    actions = torch.tensor([2, 0])
    # Row 0: uniform over 3 -> -log(1/3). Row 1: -log(e^1 / (e^1 + e^2 + e^3)).
    row0 = math.log(3.0)
    row1 = -(1.0 - math.log(math.e + math.e**2 + math.e**3))
    assert bc_loss(logits, actions).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def _batch(n: int, seed: int) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 256, (n, 3, 64, 64), dtype=np.uint8)
    return {"obs": torch.from_numpy(obs), "action": torch.from_numpy(rng.integers(0, 15, n))}


def test_network_starts_near_uniform_and_probabilities_are_a_distribution() -> None:
    torch.manual_seed(0)
    bc = make(BCConfig(agent_model="nature", hidden_size=16), torch.device("cpu"))
    batch = _batch(6, 0)
    # Gain 0.01 on the head: the first policy is almost uniform, so the loss is ~log 15.
    with torch.no_grad():
        first = bc_loss(bc.network(batch["obs"]), batch["action"]).item()
    assert first == pytest.approx(math.log(15), abs=0.05)
    hwc = batch["obs"].permute(0, 2, 3, 1).numpy()
    probs = bc.probabilities(hwc)
    assert probs.shape == (6, 15) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    # probabilities() sees HWC frames; the network CHW: the same logits either way.
    with torch.no_grad():
        chw = torch.softmax(bc.network(batch["obs"]).double(), dim=1).numpy()
    np.testing.assert_allclose(probs, chw, rtol=1e-6)


def test_updates_fit_a_fixed_batch_and_report_the_loss() -> None:
    torch.manual_seed(0)
    bc = make(BCConfig(lr=3e-3, agent_model="nature", hidden_size=16), torch.device("cpu"))
    batch = _batch(8, 1)
    losses = [bc.update(batch, step)["loss/bc"] for step in range(80)]
    assert losses[0] == pytest.approx(math.log(15), abs=0.05)
    assert losses[-1] < 0.2 * losses[0]
    assert (
        bc.probabilities(batch["obs"].permute(0, 2, 3, 1).numpy()).argmax(1)
        == batch["action"].numpy()
    ).all()


def test_registry_builds_bc_from_same_named_flags() -> None:
    module = algorithm_module("bc")
    assert module.DATA == "transitions"

    class Settings:
        lr, hidden_size, agent_model, seed = 0.1, 4, "dqn", 1

    assert algorithm_config(module, Settings(), {}) == BCConfig(0.1, 4, "dqn")
