"""BCQ, CQL and IQL as the offline loop sees them: config flags, target copies, a few real updates.

Real (small) networks: the Nature encoder with 16 features on random uint8 frames, so each test
takes seconds on a CPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from qlearn_testlib import NUM_ACTIONS, random_batch

from baselines.common.errors import ConfigError
from baselines.offline import bcq, cql, iql
from baselines.offline.algorithm import OfflineAlgorithm

CPU = torch.device("cpu")
ALGOS = {"bcq": bcq, "cql": cql, "iql": iql}
TARGETS = {
    "bcq": ("network", "target"),
    "cql": ("q_network", "target"),
    "iql": ("critic", "critic_target"),
}
# train_offline's flags that an algorithm config may take (issue 14).
LOOP_FLAGS = {
    "seed",
    "lr",
    "hidden_size",
    "agent_model",
    "gamma",
    "target_update_freq",
    "cql_alpha",
    "bcq_threshold",
    "iql_temperature",
    "iql_expectile",
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Two torch threads on a loaded 2-core machine ran these updates 10x slower than one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _small(module: ModuleType, **overrides: Any) -> Any:
    settings = {"agent_model": "nature", "hidden_size": 16, "lr": 1e-3, "seed": 3} | overrides
    return module.make(module.CONFIG(**settings), CPU)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ALGOS)
def test_module_follows_the_loop_convention(name: str) -> None:
    module = ALGOS[name]
    fields = {f.name for f in dataclasses.fields(module.CONFIG)}
    assert fields <= LOOP_FLAGS and {"seed", "lr", "gamma", "target_update_freq"} <= fields
    assert module.DATA == "transitions"
    algo: OfflineAlgorithm = _small(module)
    assert algo.name == name and algo.data == "transitions"
    trained = {
        id(p) for opt in algo.optimizers().values() for g in opt.param_groups for p in g["params"]
    }
    target = algo.modules()[TARGETS[name][1]]
    assert not any(id(p) in trained or p.requires_grad for p in target.parameters())
    obs = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    probs = algo.probabilities(obs)
    assert probs.shape == (5, NUM_ACTIONS) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", ALGOS)
def test_initial_weights_depend_on_the_seed_only(name: str) -> None:
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a, b, c = _small(ALGOS[name]), _small(ALGOS[name]), _small(ALGOS[name], seed=4)
    assert torch.equal(torch.rand(1), before), "make() must not consume the caller's RNG"
    for key, module in a.modules().items():
        assert _same(_state(module), _state(b.modules()[key]))
        assert not _same(_state(module), _state(c.modules()[key]))


@pytest.mark.parametrize("name", ALGOS)
def test_target_copies_happen_at_step_0_and_every_period(name: str) -> None:
    algo = _small(ALGOS[name], target_update_freq=3)
    online, target = (algo.modules()[key] for key in TARGETS[name])
    batch = random_batch(4, seed=1)
    copied_at = []
    for step in range(8):
        online_before, target_before = _state(online), _state(target)
        algo.update(batch, step)
        assert not _same(_state(online), online_before), "the online network must train"
        if _same(_state(target), online_before):
            copied_at.append(step)
        else:
            assert _same(_state(target), target_before), f"target changed without a copy at {step}"
    assert copied_at == [0, 3, 6]


@pytest.mark.parametrize("name", ALGOS)
def test_twenty_updates_reduce_the_loss_on_a_fixed_batch(name: str) -> None:
    algo = _small(ALGOS[name], target_update_freq=1000)
    batch = random_batch(8, seed=2)
    losses = [algo.update(batch, step)["loss"] for step in range(20)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize(
    ("module", "flag", "value"),
    [
        (bcq, "bcq_threshold", 1.0),
        (bcq, "bcq_threshold", -0.1),
        (cql, "cql_alpha", -1.0),
        (iql, "iql_expectile", 1.0),
        (iql, "iql_expectile", 0.0),
        (iql, "iql_temperature", -1.0),
        (cql, "gamma", 1.5),
        (bcq, "lr", 0.0),
        (iql, "hidden_size", 0),
        (cql, "target_update_freq", 0),
        (bcq, "agent_model", "resnet9000"),
    ],
)
def test_bad_flags_are_one_line_errors_naming_the_flag(
    module: ModuleType, flag: str, value: Any
) -> None:
    with pytest.raises(ConfigError, match=f"--{flag}") as info:
        module.CONFIG(**{flag: value})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ALGOS)
def test_modules_and_optimizers_hold_all_the_state_a_resume_needs(name: str) -> None:
    # Steps 0-2, then a fresh object restored from modules()/optimizers() runs steps 3-6: it must
    # end bit-identical to one object that ran steps 0-6. No copy falls in 3-6, so a target left
    # out of modules() would stay at the fresh object's weights and change the TD targets.
    batches = [random_batch(4, seed=10 + step) for step in range(7)]
    whole = _small(ALGOS[name], target_update_freq=8)
    for step in range(7):
        whole.update(batches[step], step)
    first = _small(ALGOS[name], target_update_freq=8)
    for step in range(3):
        first.update(batches[step], step)
    resumed = _small(ALGOS[name], target_update_freq=8, seed=99)  # other weights until restored
    for key, module in first.modules().items():
        resumed.modules()[key].load_state_dict(module.state_dict())
    for key, optimizer in first.optimizers().items():
        resumed.optimizers()[key].load_state_dict(optimizer.state_dict())
    for step in range(3, 7):
        resumed.update(batches[step], step)
    for key, module in whole.modules().items():
        assert _same(_state(module), _state(resumed.modules()[key])), key
