"""Policies: interface, random, callable, IMPALA checkpoints (predecessor and offgen layouts)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.factories import RIGHT_UP, CheckpointFactory

from offgen.errors import SchemaError
from offgen.policies import (
    CallablePolicy,
    CheckpointError,
    Policy,
    RandomPolicy,
    TorchPolicy,
    as_policy,
    build_impala,
    load_policy,
    sample_categorical,
    save_checkpoint,
)

OBS = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)


def test_impala_state_dict_naming_is_the_predecessors() -> None:
    keys = set(build_impala().state_dict())
    for stage in (1, 2, 3):
        assert f"base.layer{stage}.0.weight" in keys
        for block in (2, 3):
            assert f"base.layer{stage}.{block}.conv1.weight" in keys
            assert f"base.layer{stage}.{block}.conv2.bias" in keys
    assert {"base.fc.weight", "base.critic_linear.weight", "dist.linear.weight"} <= keys
    assert build_impala().state_dict()["base.fc.weight"].shape == (256, 2048)


def test_random_and_sampling() -> None:
    policy = RandomPolicy()
    assert isinstance(policy, Policy)
    u = np.linspace(0, 0.999, 5)
    assert policy.act(OBS, u).tolist() == [0, 3, 7, 11, 14]
    probs = np.tile(np.eye(15)[[RIGHT_UP]], (5, 1))
    assert (sample_categorical(probs, u) == RIGHT_UP).all()
    draws = sample_categorical(np.full((20000, 3), 1 / 3), np.random.default_rng(1).random(20000))
    assert abs(np.bincount(draws, minlength=3) / 20000 - 1 / 3).max() < 0.02


def test_callable_policy_checks_its_output() -> None:
    assert as_policy(lambda obs: np.zeros(len(obs), int)).act(OBS, np.zeros(5)).tolist() == [0] * 5
    with pytest.raises(SchemaError, match="returned 1 actions"):
        CallablePolicy(lambda obs: [1]).act(OBS, np.zeros(5))
    with pytest.raises(SchemaError, match="outside"):
        CallablePolicy(lambda obs: np.full(len(obs), 15)).act(OBS, np.zeros(5))


def test_predecessor_checkpoint_loads_with_step_and_name(
    tmp_path: Path, checkpoint_factory: CheckpointFactory
) -> None:
    path = checkpoint_factory.save(
        tmp_path / "checkpoint" / "model_300_7.25.pt", checkpoint_factory.impala(6.0), 12
    )
    policy = load_policy(path)
    assert policy.policy_id.startswith("ckpt:") and policy.metadata["step"] == 12
    assert policy.metadata["name_return"] == 7.25 and len(policy.metadata["sha256"]) == 64
    greedy = load_policy(path, greedy=True)
    assert (greedy.act(OBS, np.zeros(5)) == RIGHT_UP).all()
    probs = policy.probabilities(OBS)
    assert probs.shape == (5, 15) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_other_accepted_layouts(tmp_path: Path, checkpoint_factory: CheckpointFactory) -> None:
    model = checkpoint_factory.impala(4.0)
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "a.pt")  # type: ignore[attr-defined]
    bare = {f"module.{k}": v for k, v in model.state_dict().items()}  # type: ignore[attr-defined]
    torch.save(bare, tmp_path / "b.pt")
    save_checkpoint(tmp_path / "c.pt", model, step=4096, extra={"note": "offgen"})
    for name in ("a.pt", "b.pt", "c.pt"):
        assert (load_policy(tmp_path / name, greedy=True).act(OBS, np.zeros(5)) == RIGHT_UP).all()
    assert load_policy(tmp_path / "c.pt").metadata["step"] == 4096
    assert load_policy(tmp_path / "c.pt").metadata["checkpoint_format"] == "offgen-policy"


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this must never run",))


def test_a_checkpoint_that_fails_to_load_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_policy(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_policy(tmp_path / "garbage.pt")
    torch.save(
        {"model_state_dict": build_impala().state_dict(), "evil": _Evil()}, tmp_path / "e.pt"
    )
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_policy(tmp_path / "e.pt")
    small = build_impala(hidden_size=64).state_dict()
    small.pop("base.critic_linear.bias")
    torch.save(small, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_policy(tmp_path / "wrong.pt")
    torch.save({"optimizer": {}}, tmp_path / "noweights.pt")
    with pytest.raises(CheckpointError, match="no model weights"):
        load_policy(tmp_path / "noweights.pt")
    assert pickle  # the evil object above is pickled by torch.save, never loaded


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_padded_inference_gives_the_unpadded_rows(precision: str) -> None:
    """A batch of 13 runs as 16 rows (fewer kernel builds); its 13 rows are the unpadded ones, up
    to the last-bit rounding that any change of batch size can bring (oneDNN picks kernels by it).
    """
    from offgen.policies.torch_policy import inference_rows

    assert [inference_rows(n) for n in (1, 4, 5, 8, 9, 13, 64, 65)] == [1, 4, 8, 8, 16, 16, 64, 72]
    torch.manual_seed(0)
    policy = TorchPolicy(build_impala(), policy_id="p", precision=precision)  # type: ignore[arg-type]
    obs = np.random.default_rng(1).integers(0, 256, (13, 64, 64, 3), dtype=np.uint8)
    bf16 = precision == "bf16"
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        logits, _ = policy.model(torch.from_numpy(obs).permute(0, 3, 1, 2))
        unpadded = torch.softmax(logits.float(), dim=1).numpy()
    probs = policy.probabilities(obs)
    assert probs.shape == (13, 15)
    np.testing.assert_allclose(probs, unpadded, rtol=0, atol=1e-6 if precision == "fp32" else 1e-3)
    assert (probs.argmax(1) == unpadded.argmax(1)).all()
