"""``ds.to_dict()``: D4RL-style arrays of every selected transition, with a memory guard."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from offgen.data.dataset import OffgenDataset
from offgen.data.sampling.arrays import arrays_bytes
from offgen.errors import MemoryBudgetError
from sampling.conftest import Reference


def test_to_dict_holds_every_selected_transition_in_order(small_ds: OffgenDataset) -> None:
    ds = small_ds.filter(policies=["p1"])
    data = ds.to_dict(progress=False)
    n = ds.num_transitions
    assert data["observations"].shape == data["next_observations"].shape == (n, 64, 64, 3)
    assert data["actions"].dtype == np.int64 and data["rewards"].dtype == np.float32
    assert data["terminals"].dtype == data["timeouts"].dtype == np.bool_
    # Episode after episode in selection order, every step once.
    expected = [(int(p), t) for p in ds.selection for t in range(ds.store.episode(int(p)).length)]
    assert list(zip(data["episode"].tolist(), data["timestep"].tolist(), strict=True)) == expected
    # Row by row what a TransitionBatch holds for that step.
    Reference(ds).check_transitions(_as_batch(data))
    ends = data["terminals"] | data["timeouts"]
    assert int(ends.sum()) == int((ds.table.rows["terminated"] | ds.table.rows["truncated"]).sum())


def test_to_dict_stacks_and_layouts_like_the_samplers(small_ds: OffgenDataset) -> None:
    data = small_ds.to_dict(layout="CHW", frame_stack=3, next_observations=False, progress=False)
    assert "next_observations" not in data
    assert data["observations"].shape == (small_ds.num_transitions, 3, 3, 64, 64)
    data["next_observations"] = small_ds.to_dict(layout="CHW", frame_stack=3, progress=False)[
        "next_observations"
    ]
    Reference(small_ds).check_transitions(_as_batch(data), k=3, layout="CHW")


def test_memory_guard_refuses_before_decoding(small_ds: OffgenDataset) -> None:
    need = arrays_bytes(small_ds._episodes)
    frames = small_ds._episodes.num_frames * 64 * 64 * 3
    steps = small_ds.num_transitions
    assert need >= frames + 2 * steps * 64 * 64 * 3  # decoded frames, observations and next ones
    with pytest.raises(MemoryBudgetError, match=r"to_dict of .* steps needs about .* max_bytes"):
        small_ds.to_dict(max_bytes=need - 1)
    with pytest.raises(MemoryBudgetError, match="next_observations=False"):
        small_ds.to_dict(max_bytes="1K")
    assert isinstance(MemoryBudgetError("x"), MemoryError)
    lighter = arrays_bytes(small_ds._episodes, next_observations=False)
    assert lighter < need
    data = small_ds.to_dict(max_bytes=lighter, next_observations=False, progress=False)
    assert len(data["actions"]) == steps
    with pytest.raises(ValueError, match="no steps"):
        small_ds.filter(min_return=1e9).to_dict()


def _as_batch(data: dict[str, np.ndarray]) -> SimpleNamespace:
    class Rows(SimpleNamespace):
        def __len__(self) -> int:
            return len(data["actions"])

    return Rows(
        obs=data["observations"],
        next_obs=data["next_observations"],
        action=data["actions"],
        reward=data["rewards"],
        terminated=data["terminals"],
        truncated=data["timeouts"],
        episode=data["episode"],
        timestep=data["timestep"],
    )
