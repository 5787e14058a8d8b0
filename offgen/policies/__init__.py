"""Behaviour policies: the interface, uniform random, any callable, and torch checkpoints."""

from offgen.policies.base import (
    CallablePolicy,
    EpisodicPolicy,
    Policy,
    RandomPolicy,
    as_policy,
    sample_categorical,
)
from offgen.policies.impala import build_impala
from offgen.policies.torch_policy import (
    CheckpointError,
    Precision,
    TorchPolicy,
    load_policy,
    load_state_dict,
    save_checkpoint,
)

__all__ = [
    "CallablePolicy",
    "CheckpointError",
    "EpisodicPolicy",
    "Policy",
    "Precision",
    "RandomPolicy",
    "TorchPolicy",
    "as_policy",
    "build_impala",
    "load_policy",
    "load_state_dict",
    "sample_categorical",
    "save_checkpoint",
]
