"""Behaviour Cloning Transformer (``--algo bct``): DT's transformer without return-to-go tokens.

Everything (network, loss, flags, evaluation) is in :mod:`baselines.offline.dt`; this module only
gives ``--algo bct`` its ``CONFIG`` / ``DATA`` / ``make``, like every other algorithm module.
"""

from __future__ import annotations

from baselines.offline.dt import DATA, DTConfig, make_bct

__all__ = ["CONFIG", "DATA", "make"]

CONFIG = DTConfig
make = make_bct
