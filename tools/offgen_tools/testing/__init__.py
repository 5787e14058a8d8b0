"""Test support: a minimal, recorded stand-in for ``wandb.Api`` (no server needed)."""

from offgen_tools.testing.fake_api import FakeApi, FakeRun, RecordedRun

__all__ = ["FakeApi", "FakeRun", "RecordedRun"]
