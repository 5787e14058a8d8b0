"""The pictures of a dataset card: return and length histograms, level coverage, a frame strip.

Each is a PNG drawn with matplotlib (the ``plots`` extra, Agg backend, imported lazily) from one
game's store; the card references them as ``images/<game>_<kind>.png``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from offgen._optional import require

if TYPE_CHECKING:
    from offgen.data.store import OffgenStore

__all__ = ["IMAGE_KINDS", "card_images", "frame_strip_rows", "return_histogram"]

IMAGE_KINDS = ("returns", "lengths", "levels", "frames")
"""The card's pictures per game, as ``images/<game>_<kind>.png``."""

_STRIP_FRAMES = 8  # frames per sample episode, first to last
_COLOR = "#4c72b0"


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "plots")


def _save(fig: Any, plt: Any, out: str | os.PathLike[str]) -> Path:
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _title(stats: Mapping[str, Any]) -> str:
    name = stats.get("dataset")
    where = f"{name} / {stats['game']}" if name else str(stats["game"])
    return f"{where}: {stats['episodes']:,} episodes"


def _histogram(
    values: Sequence[float], xlabel: str, title: str, out: str | os.PathLike[str]
) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.hist(values, bins=min(30, max(5, len(set(values)))), color=_COLOR)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("episodes")
    ax.set_title(title)
    return _save(fig, plt, out)


def return_histogram(stats: Mapping[str, Any], out: str | os.PathLike[str]) -> Path:
    """Draw the return distribution of one game's stats (:func:`offgen.hub.card.measure_store`)."""
    return _histogram(stats["returns"]["values"], "episode return", _title(stats), out)


def _level_coverage(
    seeds: npt.NDArray[np.int64], stats: Mapping[str, Any], out: str | os.PathLike[str]
) -> Path:
    """Episodes per level seed over the collection's level range (or the seeds seen)."""
    plt = _pyplot()
    env = stats.get("procgen_options") or {}
    start, count = int(env.get("start_level") or 0), env.get("num_levels")
    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=100)
    if isinstance(count, int) and 0 < count <= 2000:
        counts = np.bincount(np.clip(seeds - start, 0, count), minlength=count + 1)[:count]
        ax.bar(np.arange(start, start + count), counts, width=1.0, color=_COLOR)
        ax.set_title(f"{stats['game']}: {int((counts > 0).sum())} of {count} levels visited")
    else:  # the full level distribution: too many seeds for a bar each
        ax.hist(seeds, bins=50, color=_COLOR)
        ax.set_title(f"{stats['game']}: {len(np.unique(seeds)):,} distinct level seeds")
    ax.set_xlabel("level seed")
    ax.set_ylabel("episodes")
    return _save(fig, plt, out)


def frame_strip_rows(store: OffgenStore, rows: int = 3) -> list[tuple[int, list[int]]]:
    """The sample episodes of the frame strip: the lowest-, median- and highest-return episode
    (table positions), each with ``_STRIP_FRAMES`` frame indices from its first to its last."""
    returns = np.asarray(store.table.returns)
    if not returns.size:
        return []
    order = np.argsort(returns, kind="stable")
    picks = list(dict.fromkeys(int(order[int(q * (len(order) - 1))]) for q in (0.0, 0.5, 1.0)))
    out = []
    for index in picks[:rows]:
        length = int(store.table.rows["length"][index])
        frames = np.unique(np.linspace(0, length, _STRIP_FRAMES).round().astype(int))
        out.append((index, [int(f) for f in frames]))
    return out


def _frame_strip(store: OffgenStore, out: str | os.PathLike[str]) -> Path:
    plt = _pyplot()
    picks = frame_strip_rows(store)
    fig, axes = plt.subplots(
        max(1, len(picks)), _STRIP_FRAMES, figsize=(_STRIP_FRAMES * 1.1, 1.35 * max(1, len(picks)))
    )
    axes = np.atleast_2d(axes)
    for ax in axes.ravel():
        ax.axis("off")
    last = "final" if store.final_frame_is_true else "next level"
    for row, (index, frames) in enumerate(picks):
        record = store.table.rows[index]
        start = int(record["frame_offset"])
        for col, t in enumerate(frames):
            ax = axes[row, col]
            ax.imshow(store.read_frames(start + t, start + t + 1)[0])
            ax.set_title(f"t={t}" + (f" ({last})" if t == frames[-1] else ""), fontsize=6)
        axes[row, 0].text(
            -8, 32, f"return {float(record['return']):g}", fontsize=6, rotation=90,
            va="center", ha="right",
        )  # fmt: skip
    fig.suptitle(f"{store.game}: sample episodes, first to last frame", fontsize=8)
    return _save(fig, plt, out)


def card_images(
    store: OffgenStore, stats: Mapping[str, Any], folder: str | os.PathLike[str]
) -> list[Path]:
    """Draw every picture of one game's card section into ``folder`` (``<game>_<kind>.png``)."""
    root, game = Path(folder), stats["game"]
    lengths = np.asarray(store.table.lengths, dtype=np.int64)
    seeds = np.asarray(store.table.level_seeds, dtype=np.int64)
    return [
        return_histogram(stats, root / f"{game}_returns.png"),
        _histogram(
            lengths.tolist(), "episode length (steps)", _title(stats), root / f"{game}_lengths.png"
        ),
        _level_coverage(seeds, stats, root / f"{game}_levels.png"),
        _frame_strip(store, root / f"{game}_frames.png"),
    ]
