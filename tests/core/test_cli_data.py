"""``offgen list / info / convert / verify`` as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from offgen.cli import app
from offgen.data import Episode
from offgen.data.legacy import write_npz_episode
from offgen.paths import dataset_dir

from .conftest import build_store

OFFGEN = str(Path(sys.executable).with_name("offgen"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OFFGEN, *args], capture_output=True, text=True, timeout=300, env=os.environ
    )


@pytest.fixture
def legacy_folder(tmp_path: Path, procgen_episodes: list[Episode]) -> Path:
    for i, episode in enumerate(procgen_episodes[:6]):
        write_npz_episode(tmp_path / "dl" / "coinrun", episode, i)
    return tmp_path / "dl"


def test_convert_list_info_verify_replay(
    legacy_folder: Path, procgen_episodes: list[Episode]
) -> None:
    done = run("convert", str(legacy_folder), "--game", "coinrun", "--dataset", "1M_E")
    assert done.returncode == 0, done.stderr
    assert "6 episodes" in done.stdout and "6 converted" in done.stdout
    steps = sum(e.length for e in procgen_episodes[:6])
    assert f"transitions={steps:,}" in done.stderr  # the progress bar, with digit grouping
    again = run("convert", str(legacy_folder), "--game", "coinrun", "--dataset", "1M_E")
    assert again.returncode == 2
    assert (
        again.stderr.count("\n") == 1
        and "--resume" in again.stderr
        and "Traceback" not in again.stderr
    )
    resumed = run("convert", str(legacy_folder), "-g", "coinrun", "-d", "expert_1M", "--resume")
    assert resumed.returncode == 0 and "6 already there" in resumed.stdout

    listing = run("list")
    assert listing.returncode == 0
    row = next(line for line in listing.stdout.splitlines() if line.startswith("expert_1M "))
    assert "1M_E" in row and "coinrun (" in row and ("MB" in row or "KB" in row)

    info = run("info", "1M_E", "--game", "coinrun", "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["episodes"] == 6
    assert summary["transitions"] == sum(e.length for e in procgen_episodes[:6])
    assert summary["level_seeds"]["unique"] == len({e.level_seed for e in procgen_episodes[:6]})
    assert summary["policies"] == {"legacy:expert_1M": 6}
    assert summary["size_on_disk"] > 0
    text = run("info", str(dataset_dir("expert_1M", "coinrun")))
    assert "normalised mean" in text.stdout and "level seeds" in text.stdout

    ok = run("verify", "expert_1M", "--game", "coinrun", "--replay", "2")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: ") and ok.stdout.count("replay episode") == 2
    assert "FAILED" not in ok.stdout


def test_verify_names_the_damaged_file(small_episodes) -> None:  # type: ignore[no-untyped-def]
    store = build_store(dataset_dir("mixed_1M", "coinrun"), small_episodes)
    assert run("verify", str(store), "--quick").returncode == 0
    shard = next(
        p
        for p in sorted((store / "observations").rglob("*"))
        if p.is_file() and p.name != "zarr.json"
    )
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    bad = run("verify", "1M_S", "-g", "coinrun")
    assert bad.returncode == 2
    assert (
        bad.stderr.startswith("error: ")
        and shard.name in bad.stderr
        and "Re-download" in bad.stderr
    )
    assert run("verify", "1M_S", "-g", "coinrun", "--quick").returncode == 0  # same size


def test_unknown_names_and_help() -> None:
    bad = run("info", "expert_1M", "--game", "coinrn")
    assert bad.returncode == 2 and "Did you mean 'coinrun'?" in bad.stderr
    for command in ("list", "info", "convert", "verify"):
        shown = run(command, "--help")
        assert shown.returncode == 0 and "Examples" in shown.stdout, command


def test_replay_without_procgen_support(small_episodes, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    store = build_store(Path(os.environ["OFFGEN_HOME"]) / "s", small_episodes)
    monkeypatch.setitem(sys.modules, "offgen.envs.replay", None)  # import fails
    result = CliRunner().invoke(app, ["verify", str(store), "--replay", "1"])
    assert result.exit_code != 0
    assert "offgen[collect]" in str(result.exception)


@pytest.fixture
def http_root(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A loopback HTTP server over ``tmp_path / "www"``, stopped after the test."""
    import functools
    import http.server
    import io
    import threading

    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        """Static files with single-range support: zarr reads shard indexes by suffix range."""

        def log_message(self, *args: object) -> None:
            pass

        def send_head(self):  # type: ignore[no-untyped-def]
            wanted = self.headers.get("Range", "")
            path = Path(self.translate_path(self.path))
            if not wanted.startswith("bytes=") or not path.is_file():
                return super().send_head()
            data = path.read_bytes()
            first, _, last = wanted.removeprefix("bytes=").partition("-")
            if not first:
                start, stop = max(0, len(data) - int(last)), len(data)
            else:
                start, stop = int(first), min(len(data), int(last) + 1 if last else len(data))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
            self.send_header("Content-Length", str(stop - start))
            self.end_headers()
            return io.BytesIO(data[start:stop])

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_info_verify_and_load_over_http(http_root, small_episodes) -> None:  # type: ignore[no-untyped-def]
    import offgen

    root, url = http_root
    build_store(root / "coinrun", small_episodes)
    info = CliRunner().invoke(app, ["info", f"{url}/coinrun", "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["episodes"] == len(small_episodes)
    checked = CliRunner().invoke(app, ["verify", f"{url}/coinrun"])
    assert checked.exit_code == 0, checked.output
    manifest = json.loads((root / "coinrun" / "manifest.json").read_text())["files"]
    assert f"{len(manifest)} files (sizes and sha256)" in checked.output
    dataset = offgen.load(f"{url}/coinrun", game="coinrun")
    np.testing.assert_array_equal(dataset.episode(3).observations, small_episodes[3].observations)
    missing = CliRunner().invoke(app, ["info", f"{url}/nothing"])
    assert missing.exit_code != 0 and "no offgen store here" in str(missing.exception)

    # The manifest is checked over HTTP too: a flipped byte, then a missing file.
    shard = next(rel for rel in sorted(manifest) if rel.startswith("observations/c/"))
    data = bytearray((root / "coinrun" / shard).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "coinrun" / shard).write_bytes(bytes(data))
    assert CliRunner().invoke(app, ["verify", f"{url}/coinrun", "--quick"]).exit_code == 0
    corrupt = CliRunner().invoke(app, ["verify", f"{url}/coinrun"])
    assert corrupt.exit_code != 0
    message = " ".join(str(corrupt.exception).split())
    assert f"{url}/coinrun/{shard}" in message and "sha256 mismatch" in message, message
    (root / "coinrun" / shard).unlink()
    gone = CliRunner().invoke(app, ["verify", f"{url}/coinrun", "--quick"])
    assert gone.exit_code != 0
    assert "listed in the manifest but missing" in str(gone.exception), gone.output


def test_info_shows_the_dataset_card(tmp_path: Path, small_episodes) -> None:  # type: ignore[no-untyped-def]
    """Cards are what `offgen info` shows: a store of a registered dataset prints its card."""
    from offgen.data import StoreWriter

    root = dataset_dir("expert_1M", "coinrun")
    with StoreWriter(root, game="coinrun", dataset="expert_1M") as writer:
        for episode in small_episodes:
            writer.write(episode)
    runner = CliRunner()
    shown = runner.invoke(app, ["info", "1M_E", "--game", "coinrun"])
    assert shown.exit_code == 0, shown.output
    assert "episodes" in shown.output and "task_categories:" in shown.output
    assert "pretty_name: Procgen expert_1M" in shown.output
    hidden = runner.invoke(app, ["info", "expert_1M", "--game", "coinrun", "--no-card"])
    assert hidden.exit_code == 0 and "task_categories:" not in hidden.output
    unregistered = runner.invoke(app, ["info", str(build_store(tmp_path / "s", small_episodes))])
    assert unregistered.exit_code == 0 and "task_categories:" not in unregistered.output


@pytest.mark.parametrize(("preset", "expected"), [(None, "1"), ("4", "4")])
def test_cli_keeps_numpy_blas_threads_from_spinning_unless_the_user_chose(
    preset: str | None, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    code = (
        "import os, sys, offgen.cli\n"
        "assert 'numpy' not in sys.modules, 'numpy imported before the setting'\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def _break_deflate_stream(npz: Path, member: str) -> None:
    """Make ``member``'s deflate stream start with a reserved block type (inflate fails)."""
    import zipfile

    with zipfile.ZipFile(npz) as archive:
        info = archive.getinfo(member)
    data = bytearray(npz.read_bytes())
    name_len, extra_len = np.frombuffer(data, "<u2", 2, info.header_offset + 26)
    data[info.header_offset + 30 + int(name_len) + int(extra_len)] = 0xFF
    npz.write_bytes(bytes(data))


def test_convert_of_damaged_legacy_files_is_one_line_naming_the_file(legacy_folder: Path) -> None:
    """Issue 12 item 4: inflate and .npy header failures were tracebacks naming no file."""
    files = sorted((legacy_folder / "coinrun").glob("*.npz"))
    _break_deflate_stream(files[2], "observations.npy")
    broken = run("convert", str(legacy_folder), "-g", "coinrun", "-d", "1M_E")
    last = broken.stderr.rstrip("\n").split("\n")[-1]  # after the progress bar
    assert broken.returncode == 2 and last.startswith("error: ") and files[2].name in last
    assert "Traceback" not in broken.stderr and "IsalError" in last

    npy_folder = legacy_folder.parent / "npy" / "coinrun"
    npy_folder.mkdir(parents=True)
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (), "  # the dict never closes
    bad = npy_folder / files[0].with_suffix(".npy").name
    bad.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    refused = run("convert", str(npy_folder.parent), "-g", "coinrun", "-d", "1M_E", "--overwrite")
    last = refused.stderr.rstrip("\n").split("\n")[-1]
    assert refused.returncode == 2 and last.startswith("error: ") and bad.name in last
    assert "Traceback" not in refused.stderr


def test_convert_warns_of_duplicates_and_refuses_another_games_lengths(legacy_folder: Path) -> None:
    """Issue 12 item 6, as a user types it."""
    files = sorted((legacy_folder / "coinrun").glob("*.npz"))
    with np.load(files[0]) as npz:
        arrays = {key: npz[key] for key in npz.files}
    np.save(files[0].with_suffix(".npy"), np.array(arrays, dtype=object), allow_pickle=True)
    done = run("convert", str(legacy_folder), "-g", "coinrun", "-d", "1M_E")
    assert done.returncode == 0, done.stderr
    assert "6 episodes" in done.stdout
    assert "warning: " in done.stderr and "repeat an episode" in done.stderr

    name = files[1].name.split("_")
    name[2] = "600"  # the name claims more steps than maze allows
    files[1].rename(files[1].with_name("_".join(name)))
    maze_store = legacy_folder.parent / "maze_store"
    refused = run("convert", str(legacy_folder / "coinrun"), str(maze_store), "-g", "maze")
    last = refused.stderr.rstrip("\n").split("\n")[-1]
    assert refused.returncode == 2 and "maze's limit of 500" in last and "--force" in last
    assert "Traceback" not in refused.stderr and not maze_store.exists()


def test_own_datasets_by_name_in_list_info_verify_card(small_episodes) -> None:  # type: ignore[no-untyped-def]
    build_store(dataset_dir("my_random", "coinrun"), small_episodes[:3])
    build_store(dataset_dir("my-lab/coinrun-random", "coinrun"), small_episodes[:2])
    build_store(dataset_dir("1M_S", "coinrun"), small_episodes[:1])  # takes mixed_1M's alias
    listed = run("list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any(line.startswith("my_random") and "coinrun (" in line for line in lines)
    assert any(line.startswith("my-lab/coinrun-random") and "coinrun (" in line for line in lines)
    assert any(
        line.startswith("1M_S") and "ignored" in line and "mixed_1M" in line for line in lines
    )

    info = run("info", "my-lab/coinrun-random", "--game", "coinrun")
    assert info.returncode == 0, info.stderr
    assert "episodes      2" in info.stdout
    verified = run("verify", "my_random", "-g", "coinrun", "--quick")
    assert verified.returncode == 0, verified.stderr
    assert "3 episodes" in verified.stdout
    card = run("card", "my_random", "--game", "coinrun")
    assert card.returncode == 0, card.stderr
    text = (dataset_dir("my_random", "coinrun").parent / "README.md").read_text()
    assert "# Procgen offline RL: `my_random`" in text and "predecessor" not in text
    shown = run("info", "my_random", "-g", "coinrun")
    assert "# Procgen offline RL: `my_random`" in shown.stdout
    typo = run("info", "my_randm", "-g", "coinrun")
    assert typo.returncode == 2
    assert "Did you mean 'my_random'?" in typo.stderr and "Traceback" not in typo.stderr


HELP_AT_80 = [
    ["offgen"],
    *[["offgen", c] for c in ("list", "info", "convert", "verify", "collect", "merge")],
    *[["offgen", c] for c in ("download", "push", "pull", "card", "evaluate")],
    ["offgen-download"],
    ["offgen-collect"],
]


@pytest.mark.parametrize("command", HELP_AT_80, ids=" ".join)
def test_help_at_80_columns_shows_every_flag_in_full_and_examples(command: list[str]) -> None:
    import typer

    from offgen.cli import app

    env = {**os.environ, "COLUMNS": "80"}
    script = str(Path(sys.executable).with_name(command[0]))
    shown = subprocess.run(
        [script, *command[1:], "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert "Examples:" in shown.stdout or "Example:" in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    group = typer.main.get_command(app)
    name = {"offgen-download": "download", "offgen-collect": "collect"}.get(command[0])
    sub = command[1] if len(command) > 1 else name
    if sub is not None:
        words = set(shown.stdout.replace(",", " ").split())
        for param in group.commands[sub].params:  # type: ignore[attr-defined]
            for flag in (*param.opts, *getattr(param, "secondary_opts", [])):
                if flag.startswith("-"):
                    assert flag in words, f"{flag} cut or missing in {' '.join(command)} --help"


def test_flags_take_both_spellings_and_booleans_take_values(small_episodes) -> None:  # type: ignore[no-untyped-def]
    store = build_store(dataset_dir("my_random", "coinrun"), small_episodes[:2])
    as_json = run("info", "my_random", "--game", "coinrun", "--json=True")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["episodes"] == 2
    for text_form in (["--json=false"], ["--json", "False"], ["--no-json"], ["--no_json"]):
        shown = run("info", str(store), "--no_card", *text_form)
        assert shown.returncode == 0, (text_form, shown.stderr)
        assert shown.stdout.startswith("location"), text_form
    quick = run("verify", str(store), "--quick=yes")
    assert quick.returncode == 0 and "frames decoded" not in quick.stdout
    full = run("verify", str(store), "--quick=no")
    assert full.returncode == 0 and "frames decoded" in full.stdout
    bad = run("verify", str(store), "--quick=maybe")
    assert bad.returncode == 2 and "expected True or False, got 'maybe'" in bad.stderr
    # offgen-download's seed spelling and its kebab-case twin both reach the name check.
    download = str(Path(sys.executable).with_name("offgen-download"))
    for flag in ("--category_name", "--category-name"):
        got = subprocess.run(
            [download, flag, "expret_1M", "--download-folder", "x", "--clear_archives_after_unpacking"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert got.returncode == 2 and "Did you mean 'expert_1M'" in got.stderr, got.stderr


def test_collect_flags_as_the_seed_and_kebab_case_spell_them(tmp_path: Path) -> None:
    collect = str(Path(sys.executable).with_name("offgen-collect"))
    report = subprocess.run(
        [collect, "--env-name", "coinrun", "--policy", "random", "--num-env-steps", "40",
         "--num-processes", "2", "--save_dataset=False", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert not (tmp_path / "out").exists()
    out = tmp_path / "datasets" / "my_random" / "coinrun"
    saved = subprocess.run(
        [collect, "--env_name", "coinrun", "--policy", "random", "--num_env_steps", "40",
         "--num_processes", "2", "--save-dataset", "--dataset", "my_random",
         "--dataset-saving-dir", str(out), "--no_progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert (out / "info.json").is_file()
