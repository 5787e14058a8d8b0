"""Whether data can carry a registered dataset's name.

A registered name (``expert_1M``, ``level1_mixed_100k``, ...) stands for the predecessor's
published episodes: their behaviour policy, their level range, their size, and frames whose last
row is the next level's first frame. Data that contradicts one of these facts is not that dataset,
whatever it is called: labelling it so (``offgen convert --dataset``, ``offgen card``, ``offgen
push``) is refused with :class:`~offgen.errors.DatasetLabelError` unless forced, and a forced label
is flagged in the card. Facts the data does not record are not contradictions: the card then gives
the registry's words as the publisher's description.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from offgen.errors import DatasetLabelError
from offgen.registry import DatasetSpec

__all__ = ["DataFacts", "check_label", "label_mismatches"]

_SIZE_BOUNDS = (1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)


def _size_rank(transitions: int) -> int:
    """Index of the HF ``size_categories`` bucket of a row count (0: n<1K)."""
    return sum(transitions >= bound for bound in _SIZE_BOUNDS)


@dataclass(frozen=True)
class DataFacts:
    """What a store or a folder of episode files says about itself.

    Attributes:
        game: Procgen game.
        transitions: Steps held.
        level_seeds: Distinct level seeds of the episodes.
        label: Dataset name already recorded with the data (``info.json``), if any.
        final_frame_is_true: Whether each episode's last frame is its true final frame; ``None``
            when not recorded.
        policies: Ids of the behaviour policies that wrote episodes; empty when not recorded.
        env: Procgen options recorded with the data (``num_levels``, ``start_level``, ...).
    """

    game: str
    transitions: int
    level_seeds: Sequence[int]
    label: str | None = None
    final_frame_is_true: bool | None = None
    policies: Sequence[str] = ()
    env: dict[str, object] = field(default_factory=dict)


def _levels(lo: int, count: int) -> str:
    return f"level {lo}" if count == 1 else f"levels {lo}-{lo + count - 1}"


def label_mismatches(spec: DatasetSpec, facts: DataFacts) -> list[str]:
    """Every fact of ``facts`` that contradicts the registered dataset ``spec`` (one line each)."""
    out: list[str] = []
    if facts.label is not None and facts.label != spec.name:
        out.append(f"the data is recorded as dataset {facts.label!r}")
    if facts.final_frame_is_true:
        out.append(
            "its episodes end with their true final frame; the published episodes end with the "
            "next level's first frame (Procgen auto-reset)"
        )
    foreign = sorted({p for p in facts.policies if p not in ("legacy", f"legacy:{spec.name}")})
    if foreign:
        out.append(
            f"its behaviour policies are {', '.join(foreign)}; {spec.name} holds the "
            f"predecessor's published {spec.behaviour} episodes (policy legacy:{spec.name})"
        )
    lo, hi = spec.start_level, spec.start_level + spec.num_levels
    outside = sorted(s for s in set(facts.level_seeds) if not lo <= s < hi)
    if outside:
        shown = ", ".join(map(str, outside[:5])) + (", ..." if len(outside) > 5 else "")
        out.append(
            f"{len(outside)} of its {len(set(facts.level_seeds))} level seeds lie outside "
            f"{spec.name}'s {_levels(lo, spec.num_levels)} ({shown})"
        )
    for key, want in (("num_levels", spec.num_levels), ("start_level", spec.start_level)):
        have = facts.env.get(key)
        if have is not None and have != want:
            out.append(f"it was collected with {key}={have}; {spec.name} has {key}={want}")
    if _size_rank(facts.transitions) > _size_rank(spec.transitions_per_game):
        out.append(
            f"it holds {facts.transitions:,} transitions of {facts.game}, more than {spec.name}'s "
            f"{spec.transitions_per_game:,} per game"
        )
    return out


def check_label(spec: DatasetSpec, facts: DataFacts, *, where: str, force: bool) -> list[str]:
    """Refuse to call data ``spec`` when it contradicts it, unless ``force``.

    Args:
        spec: The registered dataset the data is labelled as.
        facts: What the data says about itself.
        where: The data's location, for the message.
        force: Accept the label anyway (the caller flags it, e.g. in the card).

    Returns:
        The mismatches (empty when the data may be ``spec``).

    Raises:
        DatasetLabelError: If there are mismatches and ``force`` is false.
    """
    found = label_mismatches(spec, facts)
    if found and not force:
        raise DatasetLabelError(
            f"{where}: cannot be the registered dataset {spec.name}: {'; '.join(found)}. Give it "
            f"its own name, or pass --force to label it {spec.name} anyway (the card flags it)."
        )
    return found
