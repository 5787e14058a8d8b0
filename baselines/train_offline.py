"""Train an offline RL baseline on offgen data (``python -m baselines.train_offline``,
``offgen-train-offline``).

The seed's command works as written::

    python -m baselines.train_offline --seed=88 --dataset=expert_1M --env_name=coinrun \\
        --lr=0.0003 --batch_size=512 --epochs=10 --hidden_size=64 --agent_model=dqn \\
        --save_path=./offline

Flags and defaults: :class:`baselines.offline.config.OfflineConfig`; the loop:
:mod:`baselines.offline.loop`; algorithms: :mod:`baselines.offline.registry`. Evaluate the run
with the same command and ``baselines.evaluate_offline`` as the module.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from baselines.common import config_from_args
from baselines.offline.config import OfflineConfig
from baselines.offline.distributed import ranks_from_env
from baselines.offline.loop import train
from offgen.errors import OffgenError

__all__ = ["main"]

PROG = "offgen-train-offline"
DESCRIPTION = "Train an offline RL baseline (BC, ...) on offgen datasets of Procgen."


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; bad input exits with status 2 and a one-line error."""
    try:
        cfg = config_from_args(OfflineConfig, argv, prog=PROG, description=DESCRIPTION)
        path = train(cfg)
    except OffgenError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; continue with the same flags and --resume", file=sys.stderr)
        return 130
    if ranks_from_env().is_main:  # under torchrun, once
        print(f"best model: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
