"""Dataset cards in the HF dataset-card format, from a store's measured statistics.

A card is Markdown with a YAML header (license, task categories, size category, tags, one config
per game pointing at ``<dataset>/<game>/**``) followed by prose. ``offgen card NAME --game G``
measures a store (episodes, transitions, returns, level-seed coverage, lengths, behaviour policies
and mixture recipe, size on disk, compression ratio, Procgen options), keeps the numbers per game
in ``card_stats.json`` next to the card, draws the return histogram (matplotlib, Agg backend) and
re-renders the card with every game measured so far.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from offgen._io import atomic_write_bytes, atomic_write_json
from offgen._optional import require
from offgen.data.format import EPISODES
from offgen.errors import UnknownNameError
from offgen.registry import DATASETS, GAMES, DatasetSpec, dataset_name

__all__ = [
    "card_text",
    "measure_store",
    "render_card",
    "return_histogram",
    "size_category",
    "write_card",
]

_FRAME_BYTES = 64 * 64 * 3
_LICENSE_NOTE = (
    "The episodes were published by the authors of *A Study of Generalization in Offline "
    "Reinforcement Learning*; the licence is theirs (see their repository). offgen's "
    "conversion adds no terms."
)


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
    info = opened.info
    frames = int(opened.num_frames_stored)
    raw = frames * _FRAME_BYTES + int(table.num_transitions) * 5  # uint8 action + float32 reward
    disk = _disk_bytes(Path(store))
    env = info.env.to_json()
    num_levels = info.env.num_levels
    unique = np.unique(seeds[seeds >= 0]) if seeds.size else seeds
    q = np.percentile(returns, [25, 50, 75]).tolist() if returns.size else [None] * 3
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


def return_histogram(stats: Mapping[str, Any], out: str | os.PathLike[str]) -> Path:
    """Draw the return distribution of one game's stats as a PNG (matplotlib, Agg)."""
    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "plots")
    values = stats["returns"]["values"]
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.hist(values, bins=min(30, max(5, len(set(values)))), color="#4c72b0")
    ax.set_xlabel("episode return")
    ax.set_ylabel("episodes")
    ax.set_title(f"{stats['dataset']} / {stats['game']}: {stats['episodes']} episodes")
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _yaml_header(name: str, tag: str | None, games: list[str], rows: int) -> str:
    licence = ['license_name: "predecessor-dataset-licence"'] if tag else []
    lines = [
        "---",
        "license: other",
        *licence,
        "task_categories:",
        "- reinforcement-learning",
        "size_categories:",
        f"- {size_category(rows)}",
        "tags:",
        "- offline-rl",
        "- procgen",
        "- offgen",
        *([f"- {tag}"] if tag else []),
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
    lines.append("---")
    return "\n".join(lines) + "\n"


def _local_intro(name: str, stats: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Header and prose of a dataset of your own: every claim read from its stores."""
    games = sorted(stats)
    total = sum(int(s["transitions"]) for s in stats.values())
    finals = sorted({str(s.get("final_frame")) for s in stats.values()})
    return [
        _yaml_header(name, None, games, total),
        f"# Procgen offline RL: `{name}`\n",
        f"A dataset collected with offgen: {total:,} transitions over {len(games)} game(s) "
        f"({', '.join(games)}). The numbers below are measured from the stores.\n",
        "## Load it\n",
        "```python\nimport offgen\n\n"
        f'ds = offgen.load("{name}", game="{games[0]}")  # from $OFFGEN_HOME/datasets/{name}/\n'
        f'ds = offgen.load("hf://ORG/REPO/{name}", game="{games[0]}")  # from a hub repository\n'
        "```\n",
        "## Collection\n",
        f"- Final frame of each episode (store's `final_frame`): {', '.join(finals)}.\n"
        "- Behaviour policies and exact Procgen options: per game below.\n",
    ]


def _published_intro(spec: DatasetSpec, games: list[str], total: int | None) -> list[str]:
    """Header and prose of a registered dataset (the predecessor's published description)."""
    rows = total if total is not None else spec.transitions_per_game * len(GAMES)
    env = spec.env_options
    return [
        _yaml_header(spec.name, spec.behaviour, games, rows),
        f"# Procgen offline RL: `{spec.name}`\n",
        f"{spec.description[:1].upper()}{spec.description[1:]}. {spec.transitions_per_game:,} transitions per game for "
        f"each of the 16 Procgen games (easy mode), behaviour: **{spec.behaviour}**. The "
        f"predecessor's category name is `{spec.legacy_category}`.\n",
        "## Load it\n",
        "```python\nimport offgen\n\n"
        f'ds = offgen.load("{spec.name}", game="coinrun")  # downloads what is missing\n```\n',
        "Or `offgen-download --dataset " + spec.name + " --games coinrun`, or from a hub "
        f"repository: `offgen pull {spec.name} --game coinrun --repo ORG/NAME`.\n",
        "## Collection\n",
        f"- Procgen options: `distribution_mode={env['distribution_mode']}`, "
        f"`start_level={env['start_level']}`, `num_levels={env['num_levels']}`.\n"
        "- Behaviour policies: PPO (IMPALA ResNet) checkpoints; "
        + {
            "expert": "the final checkpoint.",
            "mixed": "the final and earlier checkpoints chosen so the mean return is ~75% of the "
            "expert's (not met for every game: a third party measured chaser mixed_1M mean return 6.91 vs expert_1M 6.83).",
            "suboptimal": "every rollout of PPO's whole training run.",
        }[spec.behaviour]
        + "\n- Frames: 64x64 RGB uint8, stored HWC. The last frame of each episode is the next "
        "level's first frame (Procgen auto-reset in the original collection).\n"
        "- Episode end flags are inferred: truncated when the length equals the game's time limit.\n",
    ]


def render_card(
    spec: DatasetSpec | str, stats: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """The card of a registered dataset (``spec``) or of a dataset of your own (its name).

    With ``stats`` (game -> :func:`measure_store` output) it includes the measured numbers and
    histograms of those games; a dataset of your own has only measured statistics to show.

    Raises:
        UnknownNameError: ``spec`` is a name and there are no ``stats``.
    """
    stats = dict(stats or {})
    games = sorted(stats) if stats else list(GAMES)
    total = sum(int(s["transitions"]) for s in stats.values()) if stats else None
    if isinstance(spec, DatasetSpec):
        parts = _published_intro(spec, games, total)
        name = spec.name
    elif stats:
        parts, name = _local_intro(spec, stats), spec
    else:
        raise UnknownNameError(
            f"dataset {spec!r} is not registered, so its card is measured: run `offgen card "
            f"{spec} --game <game>`."
        )
    parts += [
        "## Format\n",
        "One offgen store per game (`<dataset>/<game>/`): zarr v3 arrays (zstd) for frames, "
        "actions and rewards, a checksummed episode table, `info.json` and a sha256 manifest. "
        "`offgen verify` checks it.\n",
    ]
    if stats:
        parts.append("## Measured statistics\n")
        parts.append(
            "| game | episodes | transitions | return mean ± std | return min / median / max | "
            "length mean (min-max) | level seeds (coverage) | size on disk | compression |\n"
            "|---|---|---|---|---|---|---|---|---|\n"
        )
        for game in games:
            s = stats[game]
            r, ln, ls = s["returns"], s["lengths"], s["level_seeds"]
            coverage = f" ({ls['coverage']:.0%})" if ls.get("coverage") is not None else ""
            parts.append(
                f"| {game} | {_fmt(s['episodes'])} | {_fmt(s['transitions'])} | "
                f"{_fmt(r['mean'])} ± {_fmt(r['std'])} | {_fmt(r['min'])} / {_fmt(r['median'])} / "
                f"{_fmt(r['max'])} | {_fmt(ln['mean'], 1)} ({_fmt(ln['min'])}-{_fmt(ln['max'])}) | "
                f"{_fmt(ls['unique'])}{coverage} | {s['size_on_disk'] / 1e6:.1f} MB | "
                f"{_fmt(s['compression_ratio'], 1)}x |\n"
            )
        parts.append("\n")
        for game in games:
            s = stats[game]
            parts.append(f"### {game}\n\n![returns of {game}](images/{game}_returns.png)\n\n")
            policies = ", ".join(f"`{p['id']}` ({p['episodes']} episodes)" for p in s["policies"])
            parts.append(f"- Behaviour policies: {policies or 'n/a'}\n")
            parts.append(f"- Mixture recipe: `{json.dumps(s['recipe'])}`\n")
            parts.append(
                f"- Exact Procgen options: `{json.dumps(s['procgen_options'], sort_keys=True)}`\n"
            )
            parts.append(f"- Episode table sha256: `{s['episode_table_sha256']}`\n\n")
    else:
        parts.append(
            "## Measured statistics\n\nRun `offgen card " + name + " --game <game>` on a "
            "downloaded store to add episodes, returns, level-seed coverage, sizes and a return "
            "histogram per game.\n"
        )
    licence = _LICENSE_NOTE if isinstance(spec, DatasetSpec) else _OWN_LICENSE_NOTE
    parts += ["## Licence\n", licence + "\n"]
    return "\n".join(parts)


def write_card(
    name: str, store: str | os.PathLike[str], folder: str | os.PathLike[str]
) -> tuple[Path, Path]:
    """Measure ``store``, merge its stats into ``folder/card_stats.json`` and rewrite
    ``folder/README.md`` and ``folder/images/<game>_returns.png``.

    Returns:
        The card path and the histogram path.
    """
    spec = _subject(name)
    root = Path(folder)
    stats = measure_store(store)
    stats_file = root / "card_stats.json"
    try:
        every: dict[str, Any] = json.loads(stats_file.read_bytes())
    except FileNotFoundError:
        every = {}
    every[stats["game"]] = stats
    atomic_write_json(stats_file, every)
    png = return_histogram(stats, root / "images" / f"{stats['game']}_returns.png")
    card = root / "README.md"
    atomic_write_bytes(card, render_card(spec, every).encode())
    return card, png


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
    import sys

    _write_published_cards(Path(sys.argv[1] if len(sys.argv) > 1 else "dataset_cards"))
