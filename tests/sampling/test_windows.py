"""Decision Transformer windows against the brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.assertions import Reference

from offgen.data.dataset import OffgenDataset
from offgen.data.sampling import returns_to_go

STREAM = {"unit_frames": 64, "pool_bytes": 4 * 64 * 12288}


@pytest.mark.parametrize("strategy", ["ram", "memmap", "stream"])
@pytest.mark.parametrize("pad", ["left", "right"])
def test_windows_match_reference(small_ds: OffgenDataset, strategy: str, pad: str) -> None:
    ref = Reference(small_ds)
    extra = STREAM if strategy == "stream" else {}
    sampler = small_ds.windows(
        context=10,
        batch_size=64,
        pad=pad,
        strategy=strategy,
        progress=False,
        **extra,  # type: ignore[arg-type]
    )
    padded = 0
    for _ in range(4):
        batch = next(sampler)
        assert batch.states.shape == (64, 10, 64, 64, 3)
        ref.check_windows(batch, 10, pad)
        padded += int((~batch.mask).any(axis=1).sum())
    assert padded > 0  # windows cut by an episode end were exercised


def test_windows_on_real_frames_chw(procgen_ds: OffgenDataset) -> None:
    sampler = procgen_ds.windows(context=30, batch_size=32, layout="CHW", strategy="ram")
    batch = next(sampler)
    assert batch.states.shape == (32, 30, 3, 64, 64)
    hwc = np.moveaxis(batch.states, 2, -1)
    ref = Reference(procgen_ds)
    from dataclasses import replace

    ref.check_windows(replace(batch, states=hwc), 30, "left")


def test_discounted_rtg(small_ds: OffgenDataset) -> None:
    ref = Reference(small_ds)
    sampler = small_ds.windows(context=5, batch_size=64, gamma=0.9, strategy="ram")
    ref.check_windows(next(sampler), 5, "left", gamma=0.9)


def test_rtg_vectorised_equals_loop(small_ds: OffgenDataset) -> None:
    store = small_ds.store
    for gamma in (1.0, 0.97):
        rtg = returns_to_go(store.rewards, store.table.rows, gamma)
        for i in range(len(store.table)):
            ep = store.episode(i)
            s0 = int(store.table.rows["step_offset"][i])
            want = Reference(small_ds).rtg(ep, gamma)
            np.testing.assert_allclose(rtg[s0 : s0 + ep.length], want, rtol=1e-5, atol=1e-4)


def test_window_epochs_cover_every_start(small_ds: OffgenDataset) -> None:
    sampler = small_ds.windows(context=4, batch_size=32, replacement=False, strategy="ram")
    starts = []
    for _ in range(sampler.batches_per_epoch or 0):
        b = next(sampler)
        first = np.argmax(b.mask, axis=1)
        starts.append(b.episode * 1000 + b.timesteps[np.arange(len(b)), first])
    keys = np.concatenate(starts)
    assert len(keys) == len(np.unique(keys)) == small_ds.num_transitions


def test_bad_context(small_ds: OffgenDataset) -> None:
    with pytest.raises(ValueError, match="context"):
        small_ds.windows(context=0, strategy="ram")
