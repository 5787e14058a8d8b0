"""Evaluation results: per-episode records, per-split statistics, JSON / CSV output, paired
comparison.

Statistics per split: ``mean`` and ``std`` (sample standard deviation, ``ddof=1``) of the episode
returns, ``stderr = std / sqrt(n)``, and ``normalised = (mean - Rmin) / (Rmax - Rmin)`` with the
easy-mode constants of :data:`offgen.registry.GAMES` (REFERENCE section 2).

CSV: the predecessor's ``evaluate.csv`` columns ``final_test_ret,final_train_ret,final_val_ret``
(mean raw returns) as plain floats - the predecessor wrote strings like ``[8.5]`` - then
``final_<split>_ret`` of any other split, then the normalised means ``final_<split>_norm``. Note
the predecessor's ``test`` was the full level distribution (overlapping train); ours is unseen
levels only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offgen._io import atomic_write_bytes, atomic_write_json
from offgen.errors import EvaluationError, FormatVersionError
from offgen.registry import resolve_game

__all__ = [
    "REPORT_FORMAT",
    "Comparison",
    "EpisodeResult",
    "EvaluationReport",
    "PairedDifference",
    "SplitResult",
    "compare",
    "normalised_return",
]

REPORT_FORMAT = "offgen-evaluation"
_REPORT_VERSION = 1
_CSV_NAMES = {"validation": "val"}


def normalised_return(game: str, episode_return: float) -> float:
    """``(R - Rmin) / (Rmax - Rmin)`` with the game's easy-mode constants (REFERENCE section 2).

    Raises:
        UnknownNameError: For an unknown game.
    """
    return resolve_game(game).normalized_return(float(episode_return))


@dataclass(frozen=True)
class EpisodeResult:
    """One planned evaluation episode.

    Attributes:
        level_seed: The Procgen level it was played on.
        return_: Undiscounted return.
        length: Steps.
    """

    level_seed: int
    return_: float
    length: int


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std, std / math.sqrt(arr.size)


@dataclass(frozen=True)
class SplitResult:
    """Every planned episode of one split and their statistics.

    Attributes:
        split: Split name.
        start_level: First level of the split's range.
        num_levels: Levels in the range (``0``: the full distribution).
        mean: Mean return.
        std: Sample standard deviation of the returns.
        stderr: Standard error of the mean.
        normalised: Normalised mean return.
        episodes: The planned episodes, in plan order.
    """

    split: str
    start_level: int
    num_levels: int
    mean: float
    std: float
    stderr: float
    normalised: float
    episodes: tuple[EpisodeResult, ...]

    @classmethod
    def of(
        cls,
        game: str,
        split: str,
        start_level: int,
        num_levels: int,
        episodes: Sequence[EpisodeResult],
    ) -> SplitResult:
        """Compute the statistics of ``episodes``."""
        mean, std, stderr = _stats([e.return_ for e in episodes])
        return cls(
            split,
            start_level,
            num_levels,
            mean,
            std,
            stderr,
            normalised_return(game, mean),
            tuple(episodes),
        )

    @property
    def mean_length(self) -> float:
        """Mean episode length."""
        return float(np.mean([e.length for e in self.episodes]))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "split": self.split,
            "start_level": self.start_level,
            "num_levels": self.num_levels,
            "mean": self.mean,
            "std": self.std,
            "stderr": self.stderr,
            "normalised": self.normalised,
            "mean_length": self.mean_length,
            "episodes": [
                {"level_seed": e.level_seed, "return": e.return_, "length": e.length}
                for e in self.episodes
            ],
        }


@dataclass(frozen=True)
class EvaluationReport:
    """The result of :func:`offgen.evaluation.evaluate`.

    Attributes:
        game: Game.
        policy_id: The policy's id.
        action: The action mode, e.g. ``"greedy"`` or ``"epsilon:0.05"``.
        seed: Evaluation seed (fixes every split's level plan and random draws).
        splits: Results by split name, in the order evaluated.
        settings: Everything else (environment, episodes, num_envs, torch threads, policy
            metadata, seconds), JSON values.
    """

    game: str
    policy_id: str
    action: str
    seed: int
    splits: Mapping[str, SplitResult]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what :meth:`to_json` writes)."""
        return {
            "format": REPORT_FORMAT,
            "format_version": _REPORT_VERSION,
            "game": self.game,
            "policy_id": self.policy_id,
            "action": self.action,
            "seed": self.seed,
            "note": (
                "test = unseen levels 250..2^31-2, disjoint from train (0-199) and validation "
                "(200-249); the predecessor's 'test' was the full distribution (split 'full')"
            ),
            "settings": dict(self.settings),
            "splits": {name: result.to_dict() for name, result in self.splits.items()},
        }

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON (atomically)."""
        atomic_write_json(path, self.to_dict())
        return Path(path)

    def csv_row(self) -> dict[str, float]:
        """The ``evaluate.csv`` row: ``final_<split>_ret`` then ``final_<split>_norm``."""
        names = sorted(
            self.splits,
            key=lambda s: (
                _CSV_NAMES.get(s, s) not in ("test", "train", "val"),
                _CSV_NAMES.get(s, s),
            ),
        )
        row = {f"final_{_CSV_NAMES.get(s, s)}_ret": float(self.splits[s].mean) for s in names}
        row.update(
            {f"final_{_CSV_NAMES.get(s, s)}_norm": float(self.splits[s].normalised) for s in names}
        )
        return row

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the predecessor's ``evaluate.csv`` (one header line, one row of plain floats)."""
        row = self.csv_row()
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(list(row))
        writer.writerow([repr(v) for v in row.values()])
        atomic_write_bytes(path, text.getvalue().encode())
        return Path(path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "report") -> EvaluationReport:
        """Rebuild a report from :meth:`to_dict`'s form.

        Raises:
            FormatVersionError: If it is not an offgen evaluation report of a known version.
        """
        if data.get("format") != REPORT_FORMAT or data.get("format_version") != _REPORT_VERSION:
            raise FormatVersionError(
                f"{where}: not an offgen evaluation report (format {data.get('format')!r} version "
                f"{data.get('format_version')!r}); write it with `offgen evaluate --output`"
            )
        splits = {
            name: SplitResult(
                s["split"],
                s["start_level"],
                s["num_levels"],
                s["mean"],
                s["std"],
                s["stderr"],
                s["normalised"],
                tuple(
                    EpisodeResult(e["level_seed"], e["return"], e["length"]) for e in s["episodes"]
                ),
            )
            for name, s in data["splits"].items()
        }
        return cls(
            data["game"],
            data["policy_id"],
            data["action"],
            data["seed"],
            splits,
            data.get("settings", {}),
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> EvaluationReport:
        """Read a report written by :meth:`to_json`."""
        try:
            data = json.loads(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise EvaluationError(f"{path}: cannot read the evaluation report ({exc})") from exc
        return cls.from_dict(data, str(path))


@dataclass(frozen=True)
class PairedDifference:
    """Per-level differences ``a - b`` of two policies' returns on one split's planned episodes.

    Attributes:
        split: Split name.
        n: Paired episodes.
        mean: Mean difference.
        std: Sample standard deviation of the differences.
        stderr: Standard error of the mean difference.
        wins, losses, ties: Episodes where ``a`` scored more, less, the same.
        differences: The per-episode differences in plan order.
    """

    split: str
    n: int
    mean: float
    std: float
    stderr: float
    wins: int
    losses: int
    ties: int
    differences: tuple[float, ...]

    @property
    def z(self) -> float:
        """``mean / stderr`` (``inf`` for a nonzero mean with no spread, ``0`` when equal)."""
        if self.stderr > 0:
            return self.mean / self.stderr
        return 0.0 if self.mean == 0 else math.copysign(math.inf, self.mean)


@dataclass(frozen=True)
class Comparison:
    """Paired differences of two reports, by split."""

    a: str
    b: str
    splits: Mapping[str, PairedDifference]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "a": self.a,
            "b": self.b,
            "splits": {
                name: {k: v for k, v in d.__dict__.items() if k != "differences"} | {"z": d.z}
                for name, d in self.splits.items()
            },
        }


def compare(a: EvaluationReport, b: EvaluationReport) -> Comparison:
    """Paired differences ``a - b`` on every split both reports evaluated.

    The reports must come from the same game and seed so that each planned episode played the same
    level in both (checked level by level).

    Raises:
        EvaluationError: If the reports share no split, or a shared split's levels differ.
    """
    shared = [s for s in a.splits if s in b.splits]
    if a.game != b.game or not shared:
        raise EvaluationError(
            f"cannot pair reports of {a.game!r} (splits {', '.join(a.splits)}) and {b.game!r} "
            f"(splits {', '.join(b.splits)}); evaluate both on the same game and splits"
        )
    out: dict[str, PairedDifference] = {}
    for name in shared:
        ea, eb = a.splits[name].episodes, b.splits[name].episodes
        if [e.level_seed for e in ea] != [e.level_seed for e in eb]:
            raise EvaluationError(
                f"split {name!r}: the two reports played different levels (seeds {a.seed} and "
                f"{b.seed}, {len(ea)} and {len(eb)} episodes); evaluate both with the same --seed "
                "and --episodes"
            )
        diff = [x.return_ - y.return_ for x, y in zip(ea, eb, strict=True)]
        mean, std, stderr = _stats(diff)
        out[name] = PairedDifference(
            name,
            len(diff),
            mean,
            std,
            stderr,
            sum(d > 0 for d in diff),
            sum(d < 0 for d in diff),
            sum(d == 0 for d in diff),
            tuple(diff),
        )
    return Comparison(a.policy_id, b.policy_id, out)
