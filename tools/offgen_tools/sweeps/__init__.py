"""Sweeps by index: grids, commands, submission, results, best settings and plots."""

from offgen_tools.errors import GridError
from offgen_tools.sweeps.grid import Grid, SeedRule, Setting, SweepConfig, load_sweep
from offgen_tools.sweeps.results import Combined, RunResult, combine, read_result, write_result

__all__ = [
    "Combined",
    "Grid",
    "GridError",
    "RunResult",
    "SeedRule",
    "Setting",
    "SweepConfig",
    "combine",
    "load_sweep",
    "read_result",
    "write_result",
]
