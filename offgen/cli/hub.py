"""CLI: ``offgen download`` (also ``offgen-download``), ``offgen push``, ``offgen pull``, ``offgen card``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from offgen.errors import DatasetLabelError

if TYPE_CHECKING:
    from offgen.hub.card import WrittenCard

__all__ = ["card", "download", "pull", "push", "register"]


def download(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            "--category",
            "--category_name",
            "-d",
            help="Dataset name or the predecessor's category: expert_1M (1M_E), mixed_1M (1M_S), "
            "expert_10M (10M), suboptimal_25M (25M), level1_expert_100k (level_1_E), ...",
        ),
    ],
    games: Annotated[
        list[str] | None,
        typer.Option(
            "--games",
            "-g",
            help="Games to fetch; repeat the flag or separate by commas (default: all 16).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "--download_folder",
            "-o",
            help="Parent folder; each dataset gets its own subfolder (default: $OFFGEN_HOME/datasets, "
            "where offgen.load looks).",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="offgen: convert into one offgen store per game (default). legacy: keep the "
            "unpacked predecessor files under <output>/<dataset>/legacy/<game>/.",
        ),
    ] = "offgen",
    clear_archives: Annotated[
        bool,
        typer.Option(
            "--clear-archives",
            "--clear_archives_after_unpacking",
            help="Delete each archive once its contents are unpacked (and converted) and "
            "verified. A bundle holding all 16 games (the 100k datasets) is kept until every game "
            "in it is present, so later runs for the other games need no second download.",
        ),
    ] = False,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Games in parallel.")] = 4,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="OFFGEN_BASE_URL",
            help="Mirror base replacing https://dl.fbaipublicfiles.com/DGRL: an http(s) URL, a "
            "file:// URL or a local folder with the same tree; several separated by commas.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Convert episodes an archive holds that break the published rules (longer than "
            "the game's time limit, or first frames that look like another game) instead of "
            "refusing the archive. Only for a mirror you trust.",
        ),
    ] = False,
) -> None:
    """Download the published Procgen offline datasets, verified and resumable.

    Each archive is downloaded (resuming a partial file), checked against the size and sha256 recorded in <output>/<dataset>/offgen.lock.json by the first verified download, unpacked safely and converted into an offgen store. Rerun the same command after an interruption to continue.

    Examples:

      offgen-download --dataset expert_1M --games coinrun,maze

      offgen-download --category 1M_E --output /data/procgen --clear-archives

      OFFGEN_BASE_URL=http://mirror.lab/DGRL offgen download -d mixed_1M -g chaser
    """
    from offgen.hub.download import download_dataset, format_bytes

    if fmt not in ("offgen", "legacy"):
        raise typer.BadParameter("--format must be 'offgen' or 'legacy'")
    names = [g.strip() for item in (games or []) for g in item.split(",") if g.strip()]
    results = download_dataset(
        dataset,
        names or None,
        output=output,
        fmt=fmt,  # type: ignore[arg-type]
        clear_archives=clear_archives,
        workers=workers,
        base_url=base_url,
        progress=not quiet,
        force=force,
    )
    for result in results:
        size = f" ({format_bytes(result.bytes)})" if result.bytes else ""
        typer.echo(f"{result.game}\t{result.status}{size}\t{result.path}")


def _resolve_store(name: str, game: str, store: Path | None) -> tuple[str, str, Path]:
    """(dataset, game, store folder) of a dataset name or a store folder given on the CLI; the
    store must hold ``game``'s episodes."""
    from offgen.data.store import OffgenStore
    from offgen.errors import UnknownNameError
    from offgen.hub.sources import locate_local
    from offgen.paths import dataset_dir
    from offgen.registry import resolve_game, resolve_target

    game_spec = resolve_game(game)
    target = resolve_target(name)
    if target.spec is not None:
        dataset = target.spec.name
        root = store or dataset_dir(dataset, game_spec.name)
    elif target.local is not None:
        dataset, root = target.local.name, store or locate_local(target.local, game_spec)
    elif target.repo is not None:
        raise UnknownNameError(
            f"{name}: a hub name is fetched, not published from; give a dataset name or a store "
            "folder (offgen pull fetches from a hub)."
        )
    else:
        root = store or Path(target.text)
        dataset = OffgenStore(root).info.dataset or Path(target.text).name
    held = OffgenStore(root).game
    if held != game_spec.name:
        raise DatasetLabelError(
            f"{root}: holds {held} episodes, not {game_spec.name}; pass --game {held}, or the "
            f"store of {game_spec.name}"
        )
    return dataset, game_spec.name, root


def _flag(card: WrittenCard, dataset: str) -> None:
    """Say on stderr that a card was forced onto a store that contradicts its name."""
    if card.mismatches:
        typer.echo(
            f"warning: {card.game} is carded as {dataset} with --force although "
            f"{'; '.join(card.mismatches)} (the card carries this warning)",
            err=True,
        )


_FORCE_HELP = (
    "Card (and push) a store under a registered name its levels, behaviour policies, final "
    "frames or size contradict; the card then says so in a warning at the top."
)


def push(
    name: Annotated[
        str, typer.Argument(help="Dataset name (its local store is used) or a store folder.")
    ],
    game: Annotated[str, typer.Option("--game", "-g", help="Game of the store.")],
    repo: Annotated[
        str,
        typer.Option(
            "--repo",
            "-r",
            help="Hub dataset repository ORG/NAME, or an object-store prefix s3://BUCKET/PATH "
            "(credentials and endpoint from AWS_* variables).",
        ),
    ],
    store: Annotated[
        Path | None,
        typer.Option("--store", help="Store folder (default: the local store of NAME)."),
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch to commit to (default main).")
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Create the repository private.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
) -> None:
    """Publish an offgen store and its dataset card to an HF-compatible hub (HF_ENDPOINT).

    The store goes to <dataset>/<game>/ in the dataset repository, in several commits of bounded size (OFFGEN_PUSH_COMMIT_FILES, default 256 files; OFFGEN_PUSH_COMMIT_BYTES, default 1 GiB). Files the repository already holds are skipped, so an interrupted push is resumed by running it again. The card (measured from the store, merged with the games pushed earlier, kept in card_stats.json) becomes README.md with the return histograms under images/.

    Examples:

      offgen push expert_1M --game coinrun --repo my-lab/procgen-offline

      offgen push my-lab/coinrun-random --game coinrun --repo my-lab/offgen-procgen

      HF_ENDPOINT=https://hub.my-lab.org offgen push ./stores/coinrun --game coinrun --repo lab/p

      offgen push my_random -g coinrun -r s3://lab-data/offgen

    To an object store (credentials and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_ENDPOINT_URL) the store goes to <repo>/<dataset>/<game>/ (files the bucket already holds are skipped; manifest.json and info.json last) and the card to <repo>/<dataset>/.
    """
    from offgen.data.labels import check_label
    from offgen.hub.card import store_facts
    from offgen.hub.hf import push_card, push_store
    from offgen.hub.objstore import is_object_store
    from offgen.registry import DATASETS, dataset_name

    dataset, game_name, root = _resolve_store(name, game, store)
    spec = DATASETS.get(dataset_name(dataset))
    if spec is not None:  # a dataset of your own has no registered label to contradict
        # Refuse a mislabelled store before uploading anything (its card would refuse it after).
        check_label(spec, store_facts(root), where=str(root), force=force)

    if is_object_store(repo):
        _push_to_object_store(root, repo, dataset=dataset, game=game_name, force=force)
        return

    def progress(done: int, total: int) -> None:
        typer.echo(f"committed {done}/{total} files", err=True)

    result = push_store(
        root,
        repo,
        dataset=dataset,
        game=game_name,
        revision=revision,
        private=private,
        on_commit=progress,
    )
    commit, written = push_card(repo, dataset=dataset, store=root, revision=revision, force=force)
    _flag(written, dataset)
    skipped = result.files - result.uploaded
    typer.echo(
        f"pushed {result.files} files to {repo}/{result.path_in_repo}: {result.uploaded} uploaded "
        f"in {result.commits} commit(s), {skipped} already there; card commit {commit}"
    )


def _push_to_object_store(root: Path, url: str, *, dataset: str, game: str, force: bool) -> None:
    from offgen.hub.objstore import push_card_url, push_store_url

    def progress(done: int, total: int) -> None:
        typer.echo(f"uploaded {done}/{total} files", err=True)

    result = push_store_url(root, url, dataset=dataset, game=game, on_upload=progress)
    written = push_card_url(url, dataset=dataset, store=root, force=force)
    _flag(written, dataset)
    skipped = result.files - result.uploaded
    typer.echo(
        f"pushed {result.files} files to {url.rstrip('/')}/{result.path_in_repo}: "
        f"{result.uploaded} uploaded, {skipped} already there; card in "
        f"{url.rstrip('/')}/{dataset}/"
    )


def pull(
    name: Annotated[
        str, typer.Argument(help="Dataset name in the repository, e.g. expert_1M or my_random.")
    ],
    game: Annotated[str, typer.Option("--game", "-g", help="Game to fetch.")],
    repo: Annotated[
        str,
        typer.Option(
            "--repo",
            "-r",
            envvar="OFFGEN_HUB_REPO",
            help="Hub dataset repository ORG/NAME, or an object-store prefix s3://BUCKET/PATH.",
        ),
    ],
    revision: Annotated[
        str | None,
        typer.Option(
            "--revision",
            help="Branch, tag or commit (default: the commit pinned in offgen.lock.json, else main).",
        ),
    ] = None,
) -> None:
    """Fetch one game's offgen store from a hub repository into the hub cache, pinned.

    Only <dataset>/<game>/ is downloaded. The resolved commit is recorded in $OFFGEN_HOME/datasets/<dataset>/offgen.lock.json so later loads read the same bytes.

    Examples:

      offgen pull expert_1M --game coinrun --repo my-lab/procgen-offline

      offgen pull expert_1M --game coinrun --repo my-lab/procgen-offline --revision v1.0

      offgen pull my_random --game coinrun --repo s3://lab-data/offgen

    In Python, offgen.load("hf://my-lab/procgen-offline", game="coinrun", revision="v1.0") pulls and opens it.

    From an object store, <repo>/<dataset>/<game>/ is copied into $OFFGEN_HOME/datasets/<dataset>/<game> (each file checked against the store's manifest), where offgen.load(<dataset>, game=...) finds it; offgen.load("s3://...") reads it in place instead.
    """
    from offgen.hub.hf import pull_store
    from offgen.hub.objstore import is_object_store, pull_store_url
    from offgen.paths import dataset_dir, datasets_root
    from offgen.registry import dataset_name, resolve_game

    dataset, game_name = dataset_name(name), resolve_game(game).name
    if is_object_store(repo):
        if revision is not None:
            raise typer.BadParameter("--revision applies to hub repositories, not object stores")
        dest = pull_store_url(
            repo, dataset=dataset, game=game_name, dest=dataset_dir(dataset, game_name)
        )
        typer.echo(f"{dataset}/{game_name}\t{repo.rstrip('/')}/{dataset}/{game_name}\t{dest}")
        return
    result = pull_store(
        repo,
        dataset=dataset,
        game=game_name,
        revision=revision,
        lock_folder=datasets_root() / dataset,
    )
    typer.echo(f"{dataset}/{game_name}\t{result.commit}\t{result.store}")


def card(
    name: Annotated[
        str, typer.Argument(help="Dataset name, e.g. expert_1M or my_random, or a store folder.")
    ],
    game: Annotated[str, typer.Option("--game", "-g", help="Game whose store is measured.")],
    store: Annotated[
        Path | None, typer.Option("--store", help="Store folder (default: the local store).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Card folder (default: $OFFGEN_HOME/datasets/<dataset>/)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Also write preview/<dataset>/<game>.parquet (episode table and a thumbnail "
            "per episode) and declare it in the card for the HF dataset viewer (push does).",
        ),
    ] = False,
) -> None:
    """Generate or refresh a dataset card from a store's measured statistics.

    Writes README.md (HF dataset-card format), card_stats.json and images/<game>_{returns,lengths,levels,frames}.png; games measured earlier stay in the card. Everything the card says about the data is measured from the store; the registry's words are shown apart as the publisher's description. A store whose levels, behaviour policies, final frames or size contradict the registered NAME is refused (--force cards it with a warning at the top).

    Examples:

      offgen card expert_1M --game coinrun

      offgen card my_random --game coinrun     # a dataset of your own: every line measured

      offgen card mixed_1M --game chaser --store ./stores/chaser -o dataset_cards/mixed_1M

      offgen card expert_1M --game coinrun --store ./my_random_store --force
    """
    from offgen.hub.card import write_card
    from offgen.paths import datasets_root

    dataset, _game, root = _resolve_store(name, game, store)
    written = write_card(
        dataset, root, output or datasets_root() / dataset, force=force, preview=preview
    )
    _flag(written, dataset)
    for path in (written.card, *written.images, *([written.preview] if written.preview else [])):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add the hub commands to the ``offgen`` app."""
    app.command("download")(download)
    app.command("push")(push)
    app.command("pull")(pull)
    app.command("card")(card)
