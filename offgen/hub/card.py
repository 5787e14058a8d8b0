"""Dataset cards in the HF dataset-card format, from a store's measured statistics.

A card is Markdown with a YAML header (license, task categories, size category, tags, one config
per game pointing at ``<dataset>/<game>/**``, and with a preview one per game pointing at its
Parquet preview) followed by prose. ``offgen card NAME --game G`` measures a store (episodes,
transitions, returns, level seeds, lengths, episode ends, behaviour policies and mixture recipe,
final-frame semantics, size on disk, compression ratio, Procgen options), keeps the numbers per
game in ``card_stats.json`` next to the card, draws its pictures (:mod:`offgen.hub.card_plots`)
and re-renders the card with every game measured so far.

A card never lies: what it says about the data comes from the stores; what offgen's registry says
about a registered name is shown apart, as the publisher's description. A store that contradicts
the name it is carded under (:mod:`offgen.data.labels`) is refused unless forced, and a forced
card carries a warning at the top. A dataset of your own (a name the registry does not know) has
no publisher's description: its card holds only what its stores measure.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offgen._io import atomic_write_bytes, atomic_write_json
from offgen.data.format import EPISODES
from offgen.data.labels import DataFacts, check_label
from offgen.errors import UnknownNameError
from offgen.hub.card_plots import card_images, return_histogram
from offgen.registry import DATASETS, GAMES, DatasetSpec, dataset_name

__all__ = [
    "WrittenCard",
    "card_text",
    "measure_store",
    "render_card",
    "return_histogram",
    "size_category",
    "store_facts",
    "write_card",
]

_FRAME_BYTES = 64 * 64 * 3
_LICENSE_NOTE = (
    "The episodes were published by the authors of *A Study of Generalization in Offline "
    "Reinforcement Learning*; the licence is theirs (see their repository). offgen's "
    "conversion adds no terms."
)
_FORCED_LICENSE_NOTE = (
    "This data was not shown to be the published dataset (see the warning at the top), so the "
    "published dataset's licence does not tell you its terms: ask whoever collected it."
)
_BEHAVIOUR = {
    "expert": "the final checkpoint.",
    "mixed": "the final and earlier checkpoints chosen so the mean return is ~75% of the "
    "expert's (not met for every game: a third party measured chaser mixed_1M mean return 6.91 "
    "vs expert_1M 6.83).",
    "suboptimal": "every rollout of PPO's whole training run.",
}
_OWN_LICENSE_NOTE = (
    "Set by the dataset's publisher (edit this section and the `license` field of the header)."
)


def size_category(transitions: int) -> str:
    """The HF ``size_categories`` bucket of a row count."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
              (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]  # fmt: skip
    for bound, label in bounds:
        if transitions < bound:
            return label
    return "100M<n<1B"


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _quantiles(values: np.ndarray[Any, Any]) -> list[float | None]:
    if not values.size:
        return [None] * 3
    return [float(v) for v in np.percentile(values, [25, 50, 75])]


def measure_store(store: str | os.PathLike[str]) -> dict[str, Any]:
    """Measured statistics of one finished store (JSON-serialisable)."""
    from offgen.data.store import OffgenStore

    opened = OffgenStore(store)
    table = opened.table
    returns = np.asarray(table.returns, dtype=np.float64)
    lengths = np.asarray(table.lengths, dtype=np.int64)
    seeds = np.asarray(table.level_seeds, dtype=np.int64)
    counts = np.bincount(
        np.asarray(table.rows["policy"], dtype=np.int64), minlength=len(opened.policies)
    )
    terminated = np.asarray(table.rows["terminated"], dtype=bool)
    truncated = np.asarray(table.rows["truncated"], dtype=bool)
    info = opened.info
    frames = int(opened.num_frames_stored)
    raw = frames * _FRAME_BYTES + int(table.num_transitions) * 5  # uint8 action + float32 reward
    disk = _disk_bytes(Path(store))
    env = info.env.to_json()
    num_levels = info.env.num_levels
    unique = np.unique(seeds[seeds >= 0]) if seeds.size else seeds
    q = _quantiles(returns)
    return {
        "game": opened.game,
        "dataset": info.dataset,
        "episodes": len(table),
        "transitions": int(table.num_transitions),
        "returns": {
            "mean": float(returns.mean()) if returns.size else None,
            "std": float(returns.std()) if returns.size else None,
            "min": float(returns.min()) if returns.size else None,
            "max": float(returns.max()) if returns.size else None,
            "p25": q[0],
            "median": q[1],
            "p75": q[2],
            "values": returns.round(4).tolist(),
        },
        "lengths": {
            "mean": float(lengths.mean()) if lengths.size else None,
            "min": int(lengths.min()) if lengths.size else None,
            "max": int(lengths.max()) if lengths.size else None,
        },
        "level_seeds": {
            "unique": len(unique),
            "min": int(unique.min()) if len(unique) else None,
            "max": int(unique.max()) if len(unique) else None,
            "num_levels": num_levels,
            "coverage": (len(unique) / num_levels) if num_levels else None,
        },
        "episode_ends": {
            "terminated": int(terminated.sum()),
            "truncated": int(truncated.sum()),
            "how": info.provenance.get("end_flags", "recorded by the environment"),
        },
        "policies": [
            {**p, "episodes": int(counts[i]) if i < len(counts) else 0}
            for i, p in enumerate(opened.policies)
        ],
        "recipe": None if info.recipe is None else info.recipe.to_json(),
        "procgen_options": env,
        "final_frame": info.observation.final_frame,
        "size_on_disk": disk,
        "raw_bytes": raw,
        "compression_ratio": raw / disk if disk else None,
        "codec": info.codec.to_json(),
        "episode_table_sha256": hashlib.sha256((Path(store) / EPISODES).read_bytes()).hexdigest(),
    }


def store_facts(store: str | os.PathLike[str]) -> DataFacts:
    """What a finished store says about itself, for :func:`offgen.data.labels.check_label`."""
    from offgen.data.store import OffgenStore

    opened = OffgenStore(store)
    used = np.unique(np.asarray(opened.table.rows["policy"], dtype=np.int64))
    return DataFacts(
        game=opened.game,
        transitions=int(opened.table.num_transitions),
        level_seeds=np.unique(opened.table.level_seeds).tolist(),
        label=opened.info.dataset,
        final_frame_is_true=opened.final_frame_is_true,
        policies=[opened.table.policies[i] for i in used if i < len(opened.table.policies)],
        env=opened.info.env.to_json(),
    )


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _forced(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    return {g: list(s["label_mismatches"]) for g, s in stats.items() if s.get("label_mismatches")}


def _yaml_header(
    name: str, spec: DatasetSpec | None, stats: Mapping[str, Mapping[str, Any]], games: list[str]
) -> str:
    """The HF YAML header; ``spec`` is None for a dataset of your own (then ``stats`` is set)."""
    if stats or spec is None:
        rows = sum(int(s["transitions"]) for s in stats.values())
    else:
        rows = spec.transitions_per_game * len(GAMES)
    if _forced(stats):
        tags = ["- offgen-label-forced"]
    else:
        tags = [f"- {spec.behaviour}"] if spec is not None else []
    lines = [
        "---",
        "license: other",
        *(['license_name: "predecessor-dataset-licence"'] if spec is not None else []),
        "task_categories:",
        "- reinforcement-learning",
        "size_categories:",
        f"- {size_category(rows)}",
        "tags:",
        "- offline-rl",
        "- procgen",
        "- offgen",
        *tags,
        f"pretty_name: Procgen {name} (offgen)",
        "configs:",
    ]
    for game in games:
        lines += [
            f"- config_name: {game}",
            "  data_files:",
            "  - split: train",
            f"    path: {name}/{game}/**",
        ]
    previews = [g for g in games if stats.get(g, {}).get("preview")]
    for i, game in enumerate(previews):
        lines += [
            f"- config_name: {game}-preview",
            *(["  default: true"] if i == 0 else []),
            "  data_files:",
            "  - split: train",
            f"    path: {stats[game]['preview']}",
        ]
    lines.append("---")
    return "\n".join(lines) + "\n"


def _warning(spec: DatasetSpec, forced: Mapping[str, list[str]]) -> str:
    lines = [
        "> [!WARNING]",
        f"> **This data is not the registered dataset `{spec.name}`.** It was carded under that "
        "name with `--force` although its stores contradict it:",
    ]
    lines += [f"> - {game}: {'; '.join(found)}." for game, found in sorted(forced.items())]
    lines.append(">")
    lines.append(
        "> What follows about the data is measured from its stores; the publisher's description "
        "of the registered dataset does not apply to it."
    )
    return "\n".join(lines) + "\n"


def _publisher(spec: DatasetSpec, measured: bool) -> str:
    env = spec.env_options
    source = (
        "What offgen's registry says about the published dataset; it is **not** measured from "
        "the stores of this card (see *What the stores hold* for that)."
        if measured
        else "What offgen's registry says about the published dataset; nothing here is measured. "
        "Run `offgen card` on a store to add what the store itself holds."
    )
    return (
        "## Publisher's description\n\n"
        f"_{source}_\n\n"
        f"- {spec.description[:1].upper()}{spec.description[1:]}: {spec.transitions_per_game:,} "
        "transitions per game for each of the 16 Procgen games (easy mode), behaviour "
        f"**{spec.behaviour}**; the predecessor's category name is `{spec.legacy_category}`.\n"
        f"- Procgen options: `distribution_mode={env['distribution_mode']}`, "
        f"`start_level={env['start_level']}`, `num_levels={env['num_levels']}`.\n"
        f"- Behaviour policies: PPO (IMPALA ResNet) checkpoints; {_BEHAVIOUR[spec.behaviour]}\n"
        "- Frames: 64x64 RGB uint8. In the published episodes the last frame is the next "
        "level's first frame (Procgen auto-reset in the original collection).\n"
        "- Episode end flags are not published: offgen infers truncated when the length equals "
        "the game's time limit.\n"
    )


def _load_it(spec: DatasetSpec, *, forced: bool) -> str:
    pull = f"`offgen pull {spec.name} --game coinrun --repo ORG/NAME`"
    if forced:
        # offgen.load(name) without a hub repository fetches the published archives: other data.
        return (
            f"From the hub repository holding this card: {pull}, or `OFFGEN_HUB_REPO=ORG/NAME "
            f'OFFGEN_SOURCES=local,hub` and `offgen.load("{spec.name}", game="coinrun")`. '
            f"`offgen download {spec.name}` fetches the published dataset, which this is not.\n"
        )
    return (
        "```python\nimport offgen\n\n"
        f'ds = offgen.load("{spec.name}", game="coinrun")  # downloads what is missing\n```\n\n'
        "Or `offgen-download --dataset " + spec.name + " --games coinrun`, or from a hub "
        f"repository: {pull}.\n"
    )


def _own_intro(name: str, stats: Mapping[str, Mapping[str, Any]]) -> str:
    """What a dataset of your own is, and how to load it: every number read from its stores."""
    games = sorted(stats)
    total = sum(int(s["transitions"]) for s in stats.values())
    return (
        f"A dataset collected with offgen: {total:,} transitions over {len(games)} game(s) "
        f"({', '.join(games)}). Everything below is measured from its stores.\n\n"
        "## Load it\n\n"
        "```python\nimport offgen\n\n"
        f'ds = offgen.load("{name}", game="{games[0]}")  # from $OFFGEN_HOME/datasets/{name}/\n'
        f'ds = offgen.load("hf://ORG/REPO/{name}", game="{games[0]}")  # from a hub repository\n'
        "```\n"
    )


def _stats_table(stats: Mapping[str, Mapping[str, Any]], games: list[str]) -> str:
    """The measured-statistics table, one block of contiguous lines (a blank line between rows
    would end the table on GitHub and the HF hub)."""
    lines = [
        "| game | episodes | transitions | return mean ± std | return min / median / max | "
        "length mean (min-max) | level seeds (coverage) | size on disk | compression |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for game in games:
        s = stats[game]
        r, ln, ls = s["returns"], s["lengths"], s["level_seeds"]
        coverage = f" ({ls['coverage']:.0%})" if ls.get("coverage") is not None else ""
        lines.append(
            f"| {game} | {_fmt(s['episodes'])} | {_fmt(s['transitions'])} | "
            f"{_fmt(r['mean'])} ± {_fmt(r['std'])} | {_fmt(r['min'])} / {_fmt(r['median'])} / "
            f"{_fmt(r['max'])} | {_fmt(ln['mean'], 1)} ({_fmt(ln['min'])}-{_fmt(ln['max'])}) | "
            f"{_fmt(ls['unique'])}{coverage} | {s['size_on_disk'] / 1e6:.1f} MB | "
            f"{_fmt(s['compression_ratio'], 1)}x |"
        )
    return "\n".join(lines) + "\n"


def _policy_text(policy: Mapping[str, Any]) -> str:
    extra = {k: v for k, v in policy.items() if k not in ("id", "episodes")}
    detail = f", {json.dumps(extra, sort_keys=True)}" if extra else ""
    return f"`{policy['id']}` ({policy['episodes']} episodes{detail})"


def _game_section(game: str, s: Mapping[str, Any]) -> str:
    images = " ".join(
        f"![{kind} of {game}](images/{game}_{kind}.png)"
        for kind in ("returns", "lengths", "levels")
    )
    ls, ends = s["level_seeds"], s.get("episode_ends")
    final = {
        "true": "the true final frame",
        "next_level_first_frame": "the next level's first frame (Procgen auto-reset)",
    }.get(str(s.get("final_frame")), "not recorded")
    used = [p for p in s["policies"] if p["episodes"]]
    lines = [
        f"### {game}\n",
        images + "\n",
        f"![sample episodes of {game}, first to last frame](images/{game}_frames.png)\n",
        f"- Behaviour policies (policies.json): {', '.join(map(_policy_text, used)) or 'none'}",
        f"- Last frame of each episode (info.json): {final}",
        f"- Levels: {ls['unique']:,} distinct level seeds ({_fmt(ls['min'])}-{_fmt(ls['max'])}); "
        f"Procgen options `{json.dumps(s['procgen_options'], sort_keys=True)}`",
    ]
    if ends is not None:
        lines.append(
            f"- Episode ends: {ends['terminated']} terminated, {ends['truncated']} truncated "
            f"of {s['episodes']:,} episodes ({ends['how']})"
        )
    lines += [
        f"- Mixture recipe: `{json.dumps(s['recipe'])}`",
        f"- Episode table sha256: `{s['episode_table_sha256']}`",
    ]
    if s.get("preview"):
        lines.append(f"- Preview for the dataset viewer: `{s['preview']}` (Parquet)")
    return "\n".join(lines) + "\n"


def render_card(
    spec: DatasetSpec | str, stats: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """The card of a registered dataset (``spec``) or of a dataset of your own (its name).

    With ``stats`` (game -> :func:`measure_store` output) it includes what those games' stores
    hold, measured, with their pictures. A registered dataset's card adds the registry's words
    apart, as the publisher's description; a dataset of your own has only its measured facts.

    Raises:
        UnknownNameError: ``spec`` is a name and there are no ``stats``.
    """
    stats = dict(stats or {})
    games = sorted(stats) if stats else list(GAMES)
    published = spec if isinstance(spec, DatasetSpec) else None
    name = spec.name if isinstance(spec, DatasetSpec) else spec
    if published is None and not stats:
        raise UnknownNameError(
            f"dataset {name!r} is not registered, so its card is measured: run `offgen card "
            f"{name} --game <game>`."
        )
    forced = _forced(stats) if published is not None else {}
    parts = [_yaml_header(name, published, stats, games), f"# Procgen offline RL: `{name}`\n"]
    if published is None:
        parts.append(_own_intro(name, stats))
    else:
        if forced:
            parts.append(_warning(published, forced))
        parts += ["## Load it\n", _load_it(published, forced=bool(forced))]
    if stats:
        parts += ["## What the stores hold (measured)\n", _stats_table(stats, games)]
        parts += [_game_section(game, stats[game]) for game in games]
    if published is not None:
        parts.append(_publisher(published, measured=bool(stats)))
    parts += [
        "## Format\n",
        "One offgen store per game (`<dataset>/<game>/`): zarr v3 arrays (zstd) for frames, "
        "actions and rewards, a checksummed episode table, `info.json` and a sha256 manifest. "
        "`offgen verify` checks it.\n",
    ]
    if not stats:
        parts.append(
            "## Measured statistics\n\nRun `offgen card " + name + " --game <game>` on a "
            "downloaded store to add episodes, returns, lengths, level seeds, episode ends, "
            "behaviour policies, sizes and pictures per game.\n"
        )
    if published is None:
        licence = _OWN_LICENSE_NOTE
    else:
        licence = _FORCED_LICENSE_NOTE if forced else _LICENSE_NOTE
    parts += ["## Licence\n", licence + "\n"]
    return "\n".join(parts)


@dataclass(frozen=True)
class WrittenCard:
    """The files :func:`write_card` wrote.

    Attributes:
        card: ``README.md``.
        stats: ``card_stats.json`` (every game measured so far).
        game: The game measured by this call.
        images: Its pictures (``images/<game>_<kind>.png``).
        preview: Its Parquet preview, if asked for.
        mismatches: How the store contradicts the dataset name (empty unless forced).
    """

    card: Path
    stats: Path
    game: str
    images: tuple[Path, ...]
    preview: Path | None = None
    mismatches: tuple[str, ...] = ()


def write_card(
    name: str,
    store: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    force: bool = False,
    preview: bool = False,
) -> WrittenCard:
    """Measure ``store``, merge its stats into ``folder/card_stats.json`` and rewrite
    ``folder/README.md`` and the game's pictures under ``folder/images/``.

    Args:
        name: The dataset the card is for: a registered name (or alias), whose label the store
            must bear out, or the name of a dataset of your own (no label to check).
        store: The store of one game.
        folder: Where the card, its stats and pictures go.
        force: Card a store that contradicts ``name`` anyway; the card then carries a warning.
        preview: Also write the Parquet preview ``folder/preview/<dataset>/<game>.parquet`` and
            declare it in the card's YAML header (the HF dataset viewer shows it).

    Raises:
        DatasetLabelError: If the store cannot be registered dataset ``name`` and ``force`` is
            false.
    """
    from offgen.data.store import OffgenStore

    spec = _subject(name)
    label = spec.name if isinstance(spec, DatasetSpec) else spec
    mismatches = (
        check_label(spec, store_facts(store), where=str(store), force=force)
        if isinstance(spec, DatasetSpec)
        else []
    )
    root = Path(folder)
    stats = measure_store(store)
    stats["recorded_dataset"], stats["dataset"] = stats["dataset"], label
    stats["label_mismatches"] = mismatches
    opened = OffgenStore(store)
    parquet = None
    if preview:
        from offgen.hub.preview import write_preview

        rel = f"preview/{label}/{stats['game']}.parquet"
        parquet = write_preview(opened, root / rel)
        stats["preview"] = rel
    stats_file = root / "card_stats.json"
    try:
        every: dict[str, Any] = json.loads(stats_file.read_bytes())
    except FileNotFoundError:
        every = {}
    every[stats["game"]] = stats
    atomic_write_json(stats_file, every)
    images = card_images(opened, stats, root / "images")
    card = root / "README.md"
    atomic_write_bytes(card, render_card(spec, every).encode())
    return WrittenCard(
        card=card,
        stats=stats_file,
        game=stats["game"],
        images=tuple(images),
        preview=parquet,
        mismatches=tuple(mismatches),
    )


def _subject(name: str) -> DatasetSpec | str:
    """A registered dataset's spec, or the name of a dataset of your own."""
    canonical = dataset_name(name)
    return DATASETS.get(canonical, canonical)


def card_text(name: str) -> str:
    """The card ``offgen info`` shows: the measured one in ``$OFFGEN_HOME/datasets/<name>/``
    if ``offgen card`` wrote it, else the published card rendered from the registry.

    Raises:
        UnknownNameError: ``name`` is not registered and has no measured card.
    """
    from offgen.paths import datasets_root

    spec = _subject(name)
    local = datasets_root() / (spec.name if isinstance(spec, DatasetSpec) else spec) / "README.md"
    if local.is_file():
        return local.read_text(encoding="utf-8")
    return render_card(spec)


def _write_published_cards(folder: Path) -> None:
    for spec in DATASETS.values():
        atomic_write_bytes(folder / f"{spec.name}.md", render_card(spec).encode())


if __name__ == "__main__":  # regenerate dataset_cards/ from the registry
    _write_published_cards(Path(sys.argv[1] if len(sys.argv) > 1 else "dataset_cards"))
