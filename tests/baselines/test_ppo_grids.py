"""The shipped grid files expand (through offgen-sweep) into commands the trainer accepts."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from offgen_tools.sweeps import load_sweep
from offgen_tools.sweeps.commands import commands_for

from baselines.common import config_from_args
from baselines.ppo import PPOConfig

GRIDS = sorted((Path(__file__).parents[2] / "baselines/configs/online/grids").glob("*.json"))


@pytest.mark.parametrize("grid", GRIDS, ids=[g.stem for g in GRIDS])
def test_every_grid_command_parses(grid: Path) -> None:
    sweep = load_sweep(grid)
    indices = list(range(len(sweep.grid) * 2))  # two runs (seeds) per setting
    commands = commands_for(sweep.grid, sweep.command or "", indices)
    xpids = set()
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "offgen-ppo" and "--resume" in argv  # requeued tasks continue
        cfg = config_from_args(PPOConfig, argv[1:], prog="offgen-ppo", description="")
        xpids.add((cfg.env_name, cfg.xpid))
    assert len(xpids) == len(commands)  # every index has its own run folder
