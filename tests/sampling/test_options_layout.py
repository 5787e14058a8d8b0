"""Sampler options as one value, frames decoded once in the requested layout, and the import
direction (the sampling package does not know datasets)."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fixtures.assertions import Reference

import offgen.data.sampling
from offgen.data import SamplerOptions, StreamOptions
from offgen.data.dataset import OffgenDataset
from offgen.data.sampling.cache import cache_location, frame_cache_exists

STREAM = StreamOptions(pool_bytes=4 * 64 * 12288, unit_frames=64)


def test_options_value_equals_keywords(small_ds: OffgenDataset) -> None:
    options = SamplerOptions(seed=7, frame_stack=2, layout="CHW", strategy="stream", stream=STREAM)
    by_value = small_ds.transitions(32, options=options)
    by_keywords = small_ds.transitions(
        32, seed=7, frame_stack=2, layout="CHW", strategy="stream", unit_frames=64,
        pool_bytes=4 * 64 * 12288,
    )  # fmt: skip
    for _ in range(3):
        a, b = next(by_value), next(by_keywords)
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.episode, b.episode)
    # Keywords replace single fields of a given value.
    other = small_ds.transitions(32, options=options, seed=8)
    assert other.state_dict()["seed"] == 8 and by_value.state_dict()["seed"] == 7


def test_options_are_validated_when_built() -> None:
    with pytest.raises(ValueError, match="frame_stack"):
        SamplerOptions(frame_stack=0)
    with pytest.raises(ValueError, match="layout"):
        SamplerOptions(layout="NHWC")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="replacement=False"):
        SamplerOptions(strategy="stream", replacement=False)
    with pytest.raises(ValueError, match="size in bytes"):
        SamplerOptions(memory_budget="lots")
    with pytest.raises(ValueError, match="reuse"):
        StreamOptions(reuse=0)
    with pytest.raises(AttributeError):
        SamplerOptions().seed = 3  # type: ignore[misc]


@pytest.mark.parametrize("strategy", ["ram", "memmap", "stream"])
def test_chw_windows_match_reference(small_ds: OffgenDataset, strategy: str) -> None:
    options = SamplerOptions(layout="CHW", strategy=strategy, progress=False, stream=STREAM)  # type: ignore[arg-type]
    batch = next(small_ds.windows(6, 48, options=options))
    assert batch.states.shape == (48, 6, 3, 64, 64) and batch.states.flags.c_contiguous
    hwc = replace(batch, states=np.moveaxis(batch.states, 2, -1))
    Reference(small_ds).check_windows(hwc, 6, "left")


def test_each_layout_has_its_own_cache_file(small_ds: OffgenDataset) -> None:
    chw = small_ds.transitions(64, layout="CHW", strategy="memmap", progress=False)
    where = cache_location(small_ds.store)
    assert frame_cache_exists(small_ds.store, "CHW") and not frame_cache_exists(small_ds.store)
    hwc = small_ds.transitions(64, strategy="memmap", progress=False)
    assert frame_cache_exists(small_ds.store, "CHW") and frame_cache_exists(small_ds.store)
    a = np.load(where / "observations.npy", mmap_mode="r")
    b = np.load(where / "observations_chw.npy", mmap_mode="r")
    np.testing.assert_array_equal(np.moveaxis(a, -1, 1), b)
    x, y = next(chw), next(hwc)  # same seed, same draws, two layouts
    np.testing.assert_array_equal(np.moveaxis(x.obs, 1, -1), y.obs)
    again = OffgenDataset.open(small_ds.store.location)
    assert again.transitions(8, layout="CHW", progress=False).strategy.strategy == "memmap"


def test_sampling_package_does_not_import_the_dataset() -> None:
    """Imports go downward: dataset.py and mixing.py use the sampling package, never the reverse."""
    package = Path(offgen.data.sampling.__file__).parent
    imported = set()
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert "offgen.data.sampling.batches" in imported  # the walk sees the package's imports
    assert not imported & {"offgen.data.dataset", "offgen.data.mixing", "offgen.data"}
