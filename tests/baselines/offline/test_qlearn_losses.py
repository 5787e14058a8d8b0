"""BCQ, CQL and IQL losses against values computed by hand on a tiny fixed batch.

The networks are lookup tables (``qlearn_testlib.Table``), so every Q value, logit and V is set by
the test and the expected loss is written out in numpy, independently of the code under test.
Each transition set includes a terminated end (no bootstrap) and a truncated one (bootstraps).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from qlearn_testlib import (
    GAMMA,
    NUM_ACTIONS,
    PairTable,
    Table,
    fixed_batch,
    frames,
    frames_hwc,
    huber,
    log_softmax,
)

from baselines.offline import bcq, cql, iql

CPU = torch.device("cpu")
NEVER = 1000  # a target period the tests never reach after the copy at step 0


def _tables(seed: int, rows: int = 8, cols: int = NUM_ACTIONS, scale: float = 2.0) -> Any:
    return np.random.default_rng(seed).normal(0.0, scale, (rows, cols)).astype(np.float32)


def _set(table: Any, rows: Any) -> None:
    with torch.no_grad():
        table.rows.copy_(torch.tensor(rows, dtype=torch.float32))


# ---------------------------------------------------------------------------------------- BCQ


def _bcq(q: Any, logits: Any, threshold: float) -> bcq.BCQ:
    config = bcq.BCQConfig(gamma=GAMMA, target_update_freq=NEVER, bcq_threshold=threshold)
    return bcq.BCQ(PairTable(q, logits), config, CPU)


def _allowed_by_hand(logits: Any, threshold: float) -> Any:
    probs = np.exp(log_softmax(logits))
    return probs / probs.max(axis=1, keepdims=True) > threshold


def test_bcq_loss_by_hand() -> None:
    threshold = 0.3
    q, logits, q_target = _tables(0), _tables(1), _tables(2)
    # In next state 4 the best Q action (9) is unlikely under imitation: it must be skipped.
    q[4, 9], logits[4, 9] = 50.0, -20.0
    algo = _bcq(q, logits, threshold)
    _set(algo.target.first, q_target)  # a target that differs from the online network
    batch, raw = fixed_batch()
    got = algo.update(batch, step=1)

    s, s2, a = raw["state"], raw["next_state"], raw["action"]
    masked_q = np.where(_allowed_by_hand(logits[s2], threshold), q[s2], -np.inf)
    a_star = masked_q.argmax(axis=1)
    assert a_star[0] != 9
    y = raw["reward"] + GAMMA * (1.0 - raw["terminated"]) * q_target[s2, a_star]
    q_loss = huber(q[s, a] - y).mean()
    nll = -log_softmax(logits[s])[np.arange(4), a].mean()
    penalty = (logits[s].astype(np.float64) ** 2).mean()
    assert got["q_loss"] == pytest.approx(q_loss, rel=1e-5)
    assert got["imitation_loss"] == pytest.approx(nll, rel=1e-5)
    assert got["logit_penalty"] == pytest.approx(penalty, rel=1e-5)
    assert got["loss"] == pytest.approx(q_loss + nll + 0.01 * penalty, rel=1e-5)


def test_bcq_acting_takes_the_best_allowed_action_and_never_a_masked_one() -> None:
    threshold = 0.4
    q, logits = _tables(3, rows=64), _tables(4, rows=64)
    q[0, 5], logits[0, 5] = 100.0, -30.0  # best Q, masked
    algo = _bcq(q, logits, threshold)
    probs = algo.probabilities(frames_hwc(list(range(64))))

    allowed = _allowed_by_hand(logits, threshold)
    expected = np.where(allowed, q, -np.inf).argmax(axis=1)
    assert probs.shape == (64, NUM_ACTIONS) and probs.dtype == np.float64
    np.testing.assert_array_equal(probs.argmax(axis=1), expected)
    np.testing.assert_array_equal(probs.sum(axis=1), 1.0)
    assert not probs[~allowed].any(), "a masked action got probability"
    assert probs[0, 5] == 0.0 and q[0].argmax() == 5
    assert (~allowed).sum() > 64, "the tables must mask many actions for this test to mean much"


def test_bcq_threshold_is_strict_and_zero_allows_every_action() -> None:
    # Probabilities 0.5, 0.25, 0.25 (ratios 1, 0.5, 0.5) and a logit gap that underflows exp().
    logits = torch.tensor([[np.log(2.0), 0.0, 0.0], [0.0, -200.0, -300.0]])
    at_half = bcq.allowed_actions(logits, 0.5)
    assert at_half.tolist() == [[True, False, False], [True, False, False]]
    assert bcq.allowed_actions(logits, 0.49).tolist()[0] == [True, True, True]
    assert bcq.allowed_actions(logits, 0.0).all()
    q = torch.tensor([[0.0, 5.0, 1.0], [0.0, 1.0, 9.0]])
    assert bcq.masked_argmax(q, logits, 0.5).tolist() == [0, 0]
    assert bcq.masked_argmax(q, logits, 0.0).tolist() == [1, 2]


# ---------------------------------------------------------------------------------------- CQL


def test_cql_loss_by_hand() -> None:
    alpha = 2.5
    q, q_target = _tables(5), _tables(6)
    config = cql.CQLConfig(gamma=GAMMA, target_update_freq=NEVER, cql_alpha=alpha)
    algo = cql.CQL(Table(q), config, CPU)
    _set(algo.target, q_target)
    batch, raw = fixed_batch()
    got = algo.update(batch, step=1)

    s, s2, a = raw["state"], raw["next_state"], raw["action"]
    a_next = q[s2].argmax(axis=1)  # double DQN: the online network picks ...
    y = (
        raw["reward"] + GAMMA * (1.0 - raw["terminated"]) * q_target[s2, a_next]
    )  # ... the target values
    td = huber(q[s, a] - y).mean()
    qs = q[s].astype(np.float64)
    logsumexp = np.log(np.exp(qs).sum(axis=1))
    penalty = (logsumexp - qs[np.arange(4), a]).mean()
    assert got["td_loss"] == pytest.approx(td, rel=1e-5)
    assert got["cql_penalty"] == pytest.approx(penalty, rel=1e-5)
    assert got["loss"] == pytest.approx(td + alpha * penalty, rel=1e-5)
    assert got["q_data"] == pytest.approx(qs[np.arange(4), a].mean(), rel=1e-5)


def test_cql_penalty_is_zero_only_when_the_data_action_takes_all_the_mass() -> None:
    q = torch.tensor([[1000.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    action = torch.tensor([0, 1])
    # Row 0: logsumexp = 1000 = Q(s, a_data); row 1: log(3) above Q(s, a_data) = 0.
    assert cql.conservative_penalty(q, action).item() == pytest.approx(np.log(3.0) / 2, rel=1e-6)


def test_cql_acts_greedily() -> None:
    q = _tables(7, rows=16)
    algo = cql.CQL(Table(q), cql.CQLConfig(), CPU)
    probs = algo.probabilities(frames_hwc(list(range(16))))
    np.testing.assert_array_equal(probs, np.eye(NUM_ACTIONS)[q.argmax(axis=1)])


# ---------------------------------------------------------------------------------------- IQL


def test_expectile_and_advantage_weights_by_hand() -> None:
    diff = torch.tensor([-2.0, 1.0, 0.5])
    # weights 0.2 (below), 0.8, 0.8 (above): (0.2*4 + 0.8*1 + 0.8*0.25) / 3
    assert iql.expectile_loss(diff, 0.8).item() == pytest.approx(0.6, rel=1e-6)
    weights = iql.advantage_weights(torch.tensor([0.0, 1.0, -1.0, 10.0, 1e6]), 3.0)
    expected = [1.0, np.exp(3.0), np.exp(-3.0), 100.0, 100.0]
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5)


def _iql(seed: int, expectile: float, temperature: float) -> tuple[iql.IQL, dict[str, Any]]:
    t = {
        "actor": _tables(seed),
        "value": _tables(seed + 1, cols=1),
        "q1": _tables(seed + 2),
        "q2": _tables(seed + 3),
        "t1": _tables(seed + 4),
        "t2": _tables(seed + 5),
    }
    t["t1"][0, 3] = 40.0  # state 0's advantage is huge: its weight must be clipped to 100
    t["t2"][0, 3] = 45.0
    config = iql.IQLConfig(
        gamma=GAMMA, target_update_freq=NEVER, iql_expectile=expectile, iql_temperature=temperature
    )
    algo = iql.IQL(
        Table(t["actor"]), Table(t["value"]), iql.TwinQ(Table(t["q1"]), Table(t["q2"])), config, CPU
    )
    _set(algo.critic_target.q1, t["t1"])
    _set(algo.critic_target.q2, t["t2"])
    # lr 0: V is the same table before and after its step, so the actor and Q losses are fixed.
    for optimizer in algo.optimizers().values():
        for group in optimizer.param_groups:
            group["lr"] = 0.0
    return algo, t


def test_iql_losses_and_gradients_by_hand() -> None:
    tau, temperature = 0.7, 3.0
    algo, t = _iql(10, tau, temperature)
    batch, raw = fixed_batch()
    got = algo.update(batch, step=1)

    s, s2, a = raw["state"], raw["next_state"], raw["action"]
    q_min = np.minimum(t["t1"], t["t2"])[s, a].astype(np.float64)
    v, v_next = t["value"][s, 0].astype(np.float64), t["value"][s2, 0].astype(np.float64)
    u = q_min - v
    w_tau = np.where(u < 0, 1 - tau, tau)
    assert (u < 0).any() and (u > 0).any()
    value_loss = (w_tau * u**2).mean()
    weights = np.minimum(np.exp(temperature * u), 100.0)
    assert weights[0] == 100.0
    actor_loss = -(weights * log_softmax(t["actor"])[s, a]).mean()
    y = raw["reward"] + GAMMA * (1.0 - raw["terminated"]) * v_next
    critic_loss = ((t["q1"][s, a] - y) ** 2).mean() + ((t["q2"][s, a] - y) ** 2).mean()

    assert got["value_loss"] == pytest.approx(value_loss, rel=1e-5)
    assert got["advantage_weight"] == pytest.approx(weights.mean(), rel=1e-5)
    assert got["actor_loss"] == pytest.approx(actor_loss, rel=1e-5)
    assert got["critic_loss"] == pytest.approx(critic_loss, rel=1e-5)
    assert got["loss"] == pytest.approx(value_loss + actor_loss + critic_loss, rel=1e-5)

    # Each network's gradient is its own loss's alone: the advantage weights are constants, so the
    # actor's loss adds nothing to V's or Q's gradient.
    value_grad = np.zeros_like(t["value"][:, 0], dtype=np.float64)
    np.add.at(value_grad, s, -2.0 * w_tau * u / 4)
    np.testing.assert_allclose(algo.value.rows.grad[:, 0].numpy(), value_grad, rtol=1e-5, atol=1e-7)
    q1_grad = np.zeros_like(t["q1"], dtype=np.float64)
    np.add.at(q1_grad, (s, a), 2.0 * (t["q1"][s, a] - y) / 4)
    np.testing.assert_allclose(algo.critic.q1.rows.grad.numpy(), q1_grad, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in algo.critic_target.parameters())


def test_iql_acts_with_the_actor_softmax() -> None:
    algo, t = _iql(20, 0.8, 3.0)
    probs = algo.probabilities(frames_hwc([0, 5, 7]))
    np.testing.assert_allclose(probs, np.exp(log_softmax(t["actor"][[0, 5, 7]])), rtol=1e-6)
    assert probs.dtype == np.float64


def test_frames_name_their_state() -> None:
    assert Table(np.arange(8.0)[:, None])(frames([3, 0, 7]))[:, 0].tolist() == [3.0, 0.0, 7.0]
