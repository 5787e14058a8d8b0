"""``offgen list``, ``offgen info``, ``offgen convert`` and ``offgen verify``."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from offgen.errors import MissingDependencyError, OffgenError, UnknownNameError

__all__ = ["convert", "info", "list_datasets", "register", "store_size", "summarize", "verify"]


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError  # pragma: no cover


def store_size(path: str | os.PathLike[str]) -> int:
    """Bytes on disk of every file under a local store directory."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:  # a writer replaced it meanwhile
                continue
    return total


def _open(target: str, game: str | None, allow_incomplete: bool = False) -> Any:
    from offgen.data.store import OffgenStore
    from offgen.load import resolve_location

    store = OffgenStore(resolve_location(target, game), allow_incomplete=allow_incomplete)
    if game is not None:
        from offgen.registry import resolve_game

        if resolve_game(game).name != store.game:
            raise UnknownNameError(f"{store.location}: holds game {store.game!r}, not {game!r}")
    return store


# -------------------------------------------------------------------------------------------- list
_LIST_EPILOG = """
Examples:

  offgen list              # registered datasets and your own, games present

  OFFGEN_HOME=/data/offgen offgen list

Datasets live under $OFFGEN_HOME/datasets/<dataset>/<game> (default ~/.cache/offgen). Any
store there is a dataset of that name (my_random, or namespaced my-lab/coinrun-random):
offgen.load("my_random", game="coinrun") opens it.
"""


def _present(folder: Path, games: Iterable[str]) -> str:
    """``coinrun (1.2 MB), maze (3.4 MB, unfinished)`` for the stores of ``games`` in ``folder``."""
    present = []
    for game in games:
        root = folder / game
        if (root / "info.json").is_file():
            try:
                status = json.loads((root / "info.json").read_bytes()).get("status")
            except (ValueError, AttributeError):
                status = "damaged"
            mark = {"complete": "", "writing": ", unfinished"}.get(status, ", damaged")
            present.append(f"{game} ({_human(store_size(root))}{mark})")
    return ", ".join(present) or "-"


def list_datasets(
    games: Annotated[
        bool, typer.Option("--games", help="Also list the 16 games with their time limits.")
    ] = False,
) -> None:
    """List the registered datasets and your own, and which games are present locally."""
    from offgen.paths import datasets_root
    from offgen.registry import DATASETS, GAMES, local_datasets, registered_clash

    typer.echo(f"local store: {datasets_root()}")
    header = f"{'dataset':<21}{'alias':<12}{'behaviour':<12}{'steps/game':>12}  {'levels':<8}local"
    typer.echo(header)
    typer.echo("-" * len(header))
    for spec in DATASETS.values():
        last = spec.start_level + spec.num_levels - 1
        levels = f"{spec.start_level}-{last}" if last > spec.start_level else str(last)
        typer.echo(
            f"{spec.name:<21}{spec.legacy_category:<12}{spec.behaviour:<12}"
            f"{spec.transitions_per_game:>12,}  {levels:<8}"
            f"{_present(datasets_root() / spec.name, GAMES)}"
        )
    own = [d for d in local_datasets() if d.name not in DATASETS]
    if own:
        typer.echo(f"\n{'your datasets':<33}local")
        typer.echo("-" * len(header))
        for local in own:
            clash = registered_clash(local.name)
            where = _present(local.folder, local.games)
            if clash is not None:
                where = (
                    f"ignored: {local.name!r} is a name of registered {clash.name}; rename "
                    f"the folder ({where})"
                )
            typer.echo(f"{local.name:<33}{where}")
    if games:
        typer.echo("\ngame        max steps   normalised return (Rmin, Rmax)")
        for g in GAMES.values():
            typer.echo(f"{g.name:<12}{g.max_episode_steps:>9}   ({g.return_min}, {g.return_max})")
    typer.echo(
        "\nGet one: offgen download --dataset expert_1M --games coinrun, or convert files you "
        "have: offgen convert <folder> --game coinrun --dataset expert_1M. Your own: "
        "offgen-collect --dataset my_random --output $OFFGEN_HOME/datasets/my_random/coinrun"
    )


# -------------------------------------------------------------------------------------------- info
def summarize(store: Any) -> dict[str, Any]:
    """A JSON-able summary of an opened :class:`~offgen.data.store.OffgenStore`.

    Counts, return and length statistics, level-seed coverage, policies, codec and size on disk,
    computed from the episode table and ``info.json`` only (no frames are read).
    """
    import numpy as np

    from offgen.data.store import is_url
    from offgen.registry import GAMES

    table = store.table
    info = store.info
    returns, lengths, seeds = table.returns, table.lengths, table.level_seeds
    out: dict[str, Any] = {
        "location": store.location,
        "game": store.game,
        "dataset": info.dataset,
        "status": info.status,
        "format_version": info.format_version,
        "episodes": len(table),
        "transitions": table.num_transitions,
        "frames": store.num_frames_stored,
        "final_frame": info.observation.final_frame,
        "terminated": int(table.rows["terminated"].sum()),
        "truncated": int(table.rows["truncated"].sum()),
        "codec": info.codec.to_json(),
        "env": info.env.to_json(),
    }
    if len(table):
        out["return"] = {
            "mean": float(returns.mean()),
            "std": float(returns.std()),
            "min": float(returns.min()),
            "median": float(np.median(returns)),
            "max": float(returns.max()),
        }
        if store.game in GAMES:
            out["return"]["normalised_mean"] = GAMES[store.game].normalized_return(
                float(returns.mean())
            )
        out["length"] = {
            "mean": float(lengths.mean()),
            "min": int(lengths.min()),
            "max": int(lengths.max()),
        }
        known = seeds[seeds >= 0]
        out["level_seeds"] = {
            "unique": len(np.unique(known)),
            "min": int(known.min()) if len(known) else None,
            "max": int(known.max()) if len(known) else None,
            "unknown": int((seeds < 0).sum()),
        }
        names = table.policy_names()
        out["policies"] = {name: names.count(name) for name in sorted(set(names))}
    if not is_url(store.location):
        out["size_on_disk"] = store_size(store.location)
    return out


def _print_summary(summary: dict[str, Any]) -> None:
    def line(key: str, value: Any) -> None:
        typer.echo(f"{key:<14}{value}")

    line("location", summary["location"])
    line("game", summary["game"])
    line("dataset", summary["dataset"] or "-")
    line("status", f"{summary['status']} (format v{summary['format_version']})")
    line("episodes", f"{summary['episodes']:,}")
    line("transitions", f"{summary['transitions']:,}")
    line(
        "ends",
        f"{summary['terminated']:,} terminated, {summary['truncated']:,} truncated; final frame: "
        f"{summary['final_frame']}",
    )
    if "return" in summary:
        ret = summary["return"]
        norm = f", normalised mean {ret['normalised_mean']:.3f}" if "normalised_mean" in ret else ""
        line(
            "return",
            f"mean {ret['mean']:.2f} ± {ret['std']:.2f}, min {ret['min']:.2f}, median "
            f"{ret['median']:.2f}, max {ret['max']:.2f}{norm}",
        )
        length = summary["length"]
        line("length", f"mean {length['mean']:.1f}, min {length['min']}, max {length['max']}")
        seeds = summary["level_seeds"]
        unknown = f", {seeds['unknown']} unknown" if seeds["unknown"] else ""
        line(
            "level seeds", f"{seeds['unique']} unique in [{seeds['min']}, {seeds['max']}]{unknown}"
        )
        line("policies", ", ".join(f"{k} ({v})" for k, v in summary["policies"].items()))
    codec = summary["codec"]
    line(
        "codec",
        f"{codec.get('name')} level {codec.get('level')}, {codec.get('chunk_frames')} frames/chunk, "
        f"{codec.get('shard_frames')} frames/shard",
    )
    if summary.get("env"):
        line("env", ", ".join(f"{k}={v}" for k, v in summary["env"].items()))
    if "size_on_disk" in summary:
        raw = summary["frames"] * 64 * 64 * 3
        ratio = f" ({raw / summary['size_on_disk']:.1f}x smaller than raw frames)" if raw else ""
        line("size on disk", f"{_human(summary['size_on_disk'])}{ratio}")


_INFO_EPILOG = """
Examples:

  offgen info expert_1M --game coinrun      # local store (aliases work: 1M_E)

  offgen info my-lab/coinrun-random -g coinrun   # a dataset of your own

  offgen info ./stores/coinrun              # any store directory

  offgen info s3://bucket/coinrun --json    # a remote store, machine-readable
"""


def info(
    target: Annotated[
        str, typer.Argument(help="Dataset name (with --game), hf://ORG/REPO, store path or URL.")
    ],
    game: Annotated[str | None, typer.Option("--game", "-g", help="Game, e.g. coinrun.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    card: Annotated[
        bool,
        typer.Option(
            "--card/--no-card",
            help="After the summary, show the dataset card of a registered dataset (the one "
            "`offgen card` measured, else the published card).",
        ),
    ] = True,
) -> None:
    """Summarise a store: counts, returns, lengths, level seeds, policies, codec, size, card."""
    store = _open(target, game, allow_incomplete=True)
    summary = summarize(store)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    _print_summary(summary)
    from offgen.registry import resolve_target

    # A store opened by name shows that dataset's card, whatever label its info.json carries.
    text = _card_for(resolve_target(target).name or summary.get("dataset")) if card else None
    if text:
        typer.echo("\n" + text)


def _card_for(dataset: Any) -> str | None:
    """The card of a registered dataset name, or None for stores of unregistered datasets."""
    from offgen.errors import UnknownNameError
    from offgen.hub.card import card_text

    if not isinstance(dataset, str):
        return None
    try:
        return card_text(dataset)
    except UnknownNameError:
        return None


# ----------------------------------------------------------------------------------------- convert
_CONVERT_EPILOG = """
Examples:

  # an extracted archive (coinrun/<files>) into the local store (offgen.load)
  offgen convert ~/dgrl/1M/expert --game coinrun --dataset expert_1M

  # a flat folder of .npz / .npy episode files into a store of your choice
  offgen convert episodes/ stores/coinrun --game coinrun

  # continue an interrupted conversion, or start again
  offgen convert episodes/ stores/coinrun --game coinrun --resume
  offgen convert episodes/ stores/coinrun --game coinrun --overwrite

Files are read in episode-index order; .npy files are parsed without executing pickles.
"""


def convert(
    source: Annotated[
        Path, typer.Argument(help="Folder of legacy .npz/.npy files (or holding <game>/).")
    ],
    game: Annotated[str, typer.Option("--game", "-g", help="Game of the files.")],
    destination: Annotated[
        Path | None,
        typer.Argument(help="Store directory (default: the local store of --dataset)."),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", "-d", help="Dataset the files belong to, e.g. expert_1M, 1M_E."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted conversion.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing store.")
    ] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Decode threads.")] = 2,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Convert episodes longer than the game's time limit or whose first frames "
            "look like another game, and label the files "
            "--dataset even though their level seeds or size contradict it (recorded in the "
            "store; its card flags it).",
        ),
    ] = False,
    wait_for_lock: Annotated[
        bool,
        typer.Option("--wait-for-lock", help="If another process writes the store, wait for it."),
    ] = False,
) -> None:
    """Convert the predecessor's per-episode files into an offgen store."""
    from offgen.data.convert import convert_legacy
    from offgen.data.writer import WriteMode
    from offgen.paths import dataset_dir
    from offgen.registry import dataset_name, resolve_game

    if resume and overwrite:
        raise typer.BadParameter("choose one of --resume and --overwrite")
    if destination is None:
        if dataset is None:
            raise typer.BadParameter(
                "give a DESTINATION folder, or --dataset to use the local store"
            )
        destination = dataset_dir(dataset_name(dataset), resolve_game(game).name)
    mode: WriteMode = "append" if resume else "overwrite" if overwrite else "create"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        result = convert_legacy(
            source,
            destination,
            game=game,
            dataset=dataset,
            mode=mode,
            workers=workers,
            force=force,
            wait_for_lock=wait_for_lock,
        )
    for warning in caught:
        typer.secho(f"warning: {warning.message}", fg=typer.colors.YELLOW, err=True)
    rate = result.converted and (result.transitions / max(result.seconds, 1e-9))
    typer.echo(
        f"{result.store}: {result.episodes:,} episodes, {result.transitions:,} transitions "
        f"({result.converted:,} converted, {result.skipped:,} already there) in "
        f"{result.seconds:.1f} s" + (f", {rate:,.0f} transitions/s" if result.converted else "")
    )


# ------------------------------------------------------------------------------------------ verify
_VERIFY_EPILOG = """
Examples:

  # manifest sizes + sha256, schema, every chunk, archives vs offgen.lock.json
  offgen verify expert_1M --game coinrun

  offgen verify my_random --game coinrun     # a dataset of your own

  offgen verify ./stores/coinrun --quick     # sizes, episode table (seconds)

  # also replay 5 episodes in Procgen (needs envpool)
  offgen verify ./stores/coinrun --replay 5

For a dataset name, the downloaded archives of that game still kept under
$OFFGEN_HOME/datasets/<dataset>/archives/ (none after --clear-archives) are checked against the
sizes and sha256 recorded in <dataset>/offgen.lock.json (--quick: sizes only).

Exit status 0: the store (and its archives) are intact; 2: what is damaged, with the file named.
"""


def _verify_download_archives(target: str, game: str | None, quick: bool) -> None:
    """For a registered dataset name: check its kept archives of ``game`` against the lockfile."""
    from offgen.hub.download import verify_archives
    from offgen.hub.lockfile import LOCKFILE_NAME
    from offgen.paths import datasets_root
    from offgen.registry import resolve_target

    if game is None:
        return
    spec = resolve_target(target).spec
    if spec is None:
        return
    folder = datasets_root() / spec.name
    if not (folder / "archives").is_dir():
        return
    checked = verify_archives(folder, game=game, check_hashes=not quick)
    if checked:
        what = "sizes" if quick else "sizes and sha256"
        typer.echo(
            f"ok: {len(checked)} archive(s) ({', '.join(p.name for p in checked)}) match "
            f"{folder / LOCKFILE_NAME} ({what})"
        )


def _check_schema(store: Any) -> None:
    import numpy as np

    from offgen.data.schema import NUM_ACTIONS
    from offgen.errors import CorruptStoreError

    actions, rewards = store.actions, store.rewards
    if len(actions) != store.num_steps_stored or len(rewards) != store.num_steps_stored:
        raise CorruptStoreError(f"{store.location}: action / reward arrays shorter than the table")
    if len(actions) and int(actions.max()) >= NUM_ACTIONS:
        raise CorruptStoreError(f"{store.location}/actions: action {int(actions.max())} >= 15")
    if not np.isfinite(rewards).all():
        raise CorruptStoreError(f"{store.location}/rewards: NaN or infinite rewards")
    shape = tuple(store.observations.shape)
    if shape[1:] != (64, 64, 3) or shape[0] < store.num_frames_stored:
        raise CorruptStoreError(f"{store.location}/observations: shape {shape} disagrees")


def verify(
    target: Annotated[
        str, typer.Argument(help="Dataset name (with --game), hf://ORG/REPO, store path or URL.")
    ],
    game: Annotated[str | None, typer.Option("--game", "-g", help="Game, e.g. coinrun.")] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Check sizes and the table; skip hashes and decoding.")
    ] = False,
    replay: Annotated[
        int,
        typer.Option("--replay", min=0, help="Replay N episodes in Procgen and compare them."),
    ] = 0,
) -> None:
    """Check a store: manifest (sizes, sha256), schema, every chunk, and downloaded archives."""
    store = _open(target, game)
    checked = store.verify(check_hashes=not quick, check_frames=not quick)
    _check_schema(store)
    what = "sizes" if quick else "sizes and sha256"
    files = f"{len(checked)} files ({what})"
    if store.sealed:
        files += ", info.json and the manifest against their checksums"
    decoded = "" if quick else f", {store.num_frames_stored:,} frames decoded"
    typer.echo(f"ok: {store.location}: {files}, {len(store.table):,} episodes{decoded}")
    if not store.sealed:
        typer.echo(
            f"note: {store.location} was written before offgen sealed its metadata: info.json "
            "and the manifest carry no checksum, so info.json was checked against its schema "
            "only. Rebuilding the store (offgen convert / collect) or downloading it again "
            "seals it."
        )
    _verify_download_archives(target, game, quick)
    if replay:
        try:
            from offgen.envs.replay import replay_episodes
        except ImportError as exc:
            raise MissingDependencyError(
                f"--replay needs offgen's Procgen support, which is not available ({exc}). "
                "Install it with: pip install 'offgen[collect]'"
            ) from exc
        results = replay_episodes(store, num_episodes=replay, seed=0)
        bad = [r for r in results if not r.ok]
        for r in results:
            typer.echo(f"replay episode {r.index}: {'ok' if r.ok else 'FAILED: ' + r.message}")
        if bad:
            raise _ReplayFailed(
                f"{store.location}: {len(bad)} of {len(results)} replayed episodes differ from "
                "the environment"
            )


class _ReplayFailed(OffgenError):
    pass


def register(app: typer.Typer) -> None:
    """Add the data commands to the ``offgen`` app."""
    app.command("list", epilog=_LIST_EPILOG)(list_datasets)
    app.command("info", epilog=_INFO_EPILOG)(info)
    app.command("convert", epilog=_CONVERT_EPILOG)(convert)
    app.command("verify", epilog=_VERIFY_EPILOG)(verify)
