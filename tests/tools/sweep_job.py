"""A stand-in training script for sweep tests: resolves its index and writes a result file.

Usage: python sweep_job.py SWEEP_JSON INDEX OUT_DIR [json|npz]
The learning curve is deterministic: it rises towards ``lr * 100`` plus seed-dependent noise.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from offgen_tools.sweeps import RunResult, load_sweep, write_result


def main(argv: list[str]) -> int:
    sweep_path, index, out = argv[0], int(argv[1]), argv[2]
    fmt = argv[3] if len(argv) > 3 else "json"
    sweep = load_sweep(sweep_path)
    setting = sweep.grid.resolve(index)
    start = time.perf_counter()
    rng = np.random.default_rng(setting.seed)
    lr = float(setting.flat.get("lr", 0.1))
    steps = np.arange(0, 1000, 100)
    target = lr * 100
    returns = target * (1 - np.exp(-steps / 300))[:, None] + rng.normal(0, 1, size=(len(steps), 3))
    result = RunResult(
        experiment={"environment": {"env_name": "Toy-v0"}, "agent": dict(sweep.raw)},
        index=index,
        setting=setting.setting,
        run=setting.run,
        seed=setting.seed,
        num_settings=len(sweep.grid),
        agent_params=setting.params,
        run_data={
            "random_seed": setting.seed,
            "total_timesteps": 1000,
            "eval_interval_timesteps": 100,
            "episodes_per_eval": 3,
            "timesteps_at_eval": steps,
            "eval_episode_rewards": returns,
            "train_time": time.perf_counter() - start,
            "eval_time": 0.0,
        },
    )
    write_result(result, out, fmt)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
