"""The offline sweep configs (grids and final settings) expand through offgen-sweep into commands
train_offline's real parser accepts; the predecessor's make_cmd flags map onto offgen-sweep."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from offgen_tools.sweeps import load_sweep
from offgen_tools.sweeps.cli import app
from offgen_tools.sweeps.commands import commands_for
from offgen_tools.sweeps.submit import Resources
from typer.testing import CliRunner

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / "baselines/configs/offline"
FILES = sorted(CONFIGS.glob("grids/*.json")) + sorted(CONFIGS.glob("final/*.json"))
ALGOS = ("bc", "bcq", "cql", "iql", "dt", "bct")
runner = CliRunner()


def test_every_algorithm_has_a_grid_and_a_final_config() -> None:
    assert sorted(p.stem for p in CONFIGS.glob("grids/*.json")) == sorted(ALGOS)
    finals = sorted(p.stem.split("_")[0] for p in CONFIGS.glob("final/*.json"))
    assert finals == sorted(ALGOS)


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "baselines.train_offline"], command
    assert "--resume" in argv  # a requeued array task continues its run (a flag it accepts)
    return argv[3:]


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_every_command_parses_with_train_offline(path: Path) -> None:
    train_offline = pytest.importorskip(
        "baselines.train_offline",
        reason="baselines.train_offline is not on this branch yet (branch offline-loop)",
    )
    from baselines.common.flags import build_parser
    from baselines.offline.config import OfflineConfig
    from baselines.offline.registry import ALGORITHMS

    sweep = load_sweep(path)
    assert sweep.module == "baselines.train_offline" and sweep.command
    resources = Resources.from_config(sweep.slurm, str(path))  # the submit path accepts it
    assert resources.gpus_per_node == 1
    parser = build_parser(
        OfflineConfig, prog=train_offline.PROG, description=train_offline.DESCRIPTION
    )
    runs = 2
    commands = commands_for(
        sweep.grid, sweep.command, range(len(sweep.grid) * runs), {"module": sweep.module}
    )
    folders = set()
    for command in commands:
        namespace = parser.parse_args(_argv(command))  # an unknown flag exits here
        if namespace.algo not in ALGORITHMS:
            continue  # checked once below: its module has not been registered yet
        cfg = OfflineConfig(**vars(namespace))
        folders.add((cfg.env_name, cfg.xpid))
    algo = sweep.grid.resolve(0).flat["algo"]
    if algo not in ALGORITHMS:
        pytest.skip(f"flags parse; --algo {algo} not in baselines.offline.registry yet")
    assert len(folders) == len(commands)  # every index trains in its own run folder


def test_seeds_are_base_plus_trial_not_cumulative() -> None:
    sweep = load_sweep(CONFIGS / "grids/cql.json")
    n = len(sweep.grid)
    assert n == 16 * 3 * 3  # games x alpha x target period
    for setting in (0, 17, n - 1):
        seeds = [sweep.grid.resolve(setting + trial * n).seed for trial in range(4)]
        assert seeds == [88, 89, 90, 91]  # the predecessor's make_cmd gave 88, 89, 91, 94


# The installed console script, as a user runs it (CI does not put the venv's bin on PATH).
SWEEP = str(Path(sys.executable).parent / "offgen-sweep")


def test_make_cmd_flags_from_another_folder(tmp_path: Path) -> None:
    # The seed's `make_cmd --base_config offline --dir grids --grid_config bc --num_trials 3
    # --new_line --module_name ...`, typed from a folder that has no configs of its own.
    out = tmp_path / "bc_commands.txt"
    flags = "--base_config offline --dir grids --grid_config bc --num_trials 3 --new_line"
    proc = subprocess.run(
        [SWEEP, "commands", *flags.split(), "--save", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tools'}"},
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.count("python -m baselines.train_offline") == 16 * 6 * 3
    first = text.split("python -m ")[1]
    assert first.splitlines()[1].strip() == "--dataset expert_1M \\"  # one flag per line
    res = runner.invoke(app, ["commands", "--grid_config", "bc", "--num_trials", "3"])
    flat = res.stdout.splitlines()
    assert len(flat) == 16 * 6 * 3 and flat[0] == "python -m " + " ".join(
        first.replace("\\\n", "").split()
    )


def test_new_line_commands_give_the_shell_the_same_arguments(tmp_path: Path) -> None:
    echo = f"{shlex.quote(sys.executable)} -c 'import json, sys; print(json.dumps(sys.argv[1:]))'"
    template = f"{echo} {{args}} --seed {{seed}}"
    outputs = []
    for extra in ([], ["--new_line"]):
        res = runner.invoke(
            app, ["commands", str(CONFIGS / "grids/dt.json"), "-t", template, "-i", "53", *extra]
        )
        assert res.exit_code == 0, res.output
        proc = subprocess.run(["bash", "-c", res.stdout], capture_output=True, text=True)
        outputs.append(json.loads(proc.stdout))
    assert outputs[0] == outputs[1] and outputs[0][-2:] == ["--seed", "88"]
    # index 53 = game 5 + 16 x (lr 0) + 48 x (context 1): first-fastest over the file's keys
    assert outputs[0][outputs[0].index("--dt_context_length") + 1] == "10"


def test_module_name_swaps_train_for_evaluate() -> None:
    # The seed's evaluation: "copy the training command and replace the module".
    args = ["commands", "--grid_config", "iql_expert_1M", "--dir", "final", "-i", "3"]
    train = runner.invoke(app, args).stdout.strip()
    evaluate = runner.invoke(app, [*args, "--module_name", "baselines.evaluate_offline"])
    assert evaluate.stdout.strip() == train.replace("train_offline", "evaluate_offline")
    bad = runner.invoke(app, [*args, "-t", "echo {args}", "--module_name", "x.y"])
    assert bad.exit_code == 2 and "no {module} field" in bad.output
    missing = runner.invoke(app, ["commands", "--grid_config", "nope"])
    assert missing.exit_code == 2 and "bc, bcq, bct, cql, dt, iql" in missing.output
