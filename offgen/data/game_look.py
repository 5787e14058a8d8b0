"""Tell which Procgen game frames look like, to refuse data labelled with the wrong game.

Every Procgen game draws from its own palette (backgrounds, walls, sprites), so the colour
histogram of a first frame says which game it is. A frame's signature is the square root of its
normalised joint RGB histogram with 4 levels per channel (64 bins); the reference data,
``game_signatures.npz`` (built by ``benchmarks/game_signatures.py`` from envpool), holds per game
the signatures of 712 real first frames: easy levels 0-199 (every published dataset's levels),
256 other easy levels and 256 hard levels, 1.5 MB in memory.

A frame *looks like game H instead of the claimed G* when H is its nearest game, H's nearest
reference is at least :data:`MARGIN` times closer than G's, and it is within H's own threshold
(the farthest a real frame of H was seen from H's references, times :data:`MARGIN`, on levels used
for neither). The last condition keeps frames that look like no game (noise, other
environments) from being called a look-alike: they are accepted, since nothing says which game
they are. Measured on 8,192 first frames of unseen levels (easy and hard, all 16 games), no frame
looked like another game than its own, and frames claimed as the wrong game were recognised in
at least ~88% of cases for every pair (see ``docs/reliability.md``).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from offgen.errors import SchemaError

__all__ = ["OpeningCheck", "check_game_look"]

MARGIN = 1.5
"""How much closer another game's references must be than the claimed game's."""

SIGNATURES_FILE = Path(__file__).with_name("game_signatures.npz")
"""The reference signatures (rebuilt by ``benchmarks/game_signatures.py --write``)."""

_LEVELS = 4  # per channel: 64 bins, robust to the small colour changes between levels
_PIXELS = 64 * 64


def frame_signature(
    frames: npt.NDArray[np.uint8], *, counts: bool = False
) -> npt.NDArray[np.float32] | npt.NDArray[np.uint16]:
    """Signatures of HWC ``uint8`` frames ``(n, 64, 64, 3)``: ``(n, 64)`` float32 (``counts``:
    the raw ``uint16`` histogram counts, as stored)."""
    n = frames.shape[0]
    q = frames.reshape(n, -1, 3) // (256 // _LEVELS)
    bins = (q[..., 0].astype(np.intp) * _LEVELS + q[..., 1]) * _LEVELS + q[..., 2]
    bins += (np.arange(n, dtype=np.intp) * _LEVELS**3)[:, None]
    hist = np.bincount(bins.ravel(), minlength=n * _LEVELS**3).reshape(n, _LEVELS**3)
    if counts:
        return hist.astype(np.uint16)
    return _normalised(hist)


def _normalised(counts: npt.NDArray[np.integer]) -> npt.NDArray[np.float32]:
    # sqrt: small patches of a game's sprite colours weigh more than against raw fractions.
    return np.sqrt(counts.astype(np.float32) / _PIXELS)


@dataclass(frozen=True)
class GameSignatures:
    """Reference signatures of every game.

    Attributes:
        games: Game names, in the order of the other arrays.
        counts: ``(games, references, 64)`` histogram counts of real first frames.
        thresholds: Per game, the farthest a real frame may be from its references and still be
            called a look-alike of it.
    """

    games: tuple[str, ...]
    counts: npt.NDArray[np.uint16]
    thresholds: npt.NDArray[np.floating]
    _refs: npt.NDArray[np.float32] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_refs", _normalised(self.counts).reshape(-1, _LEVELS**3))

    def distances(self, frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """``(n, games)``: L1 distance of each frame's signature to each game's nearest reference."""
        signatures = frame_signature(frames)
        per_game = self.counts.shape[1]
        out = np.empty((len(signatures), len(self.games)), dtype=np.float32)
        for i, sig in enumerate(signatures):  # one frame at a time: a ~3 MB temporary, not n x it
            nearest = np.abs(self._refs - sig).sum(axis=1).reshape(-1, per_game).min(axis=1)
            out[i] = nearest
        return out

    def look_alikes(self, distances: npt.NDArray[np.float32], claimed: str) -> list[str | None]:
        """Per frame, the game it looks like instead of ``claimed``, or ``None``."""
        g = self.games.index(claimed)
        out: list[str | None] = []
        for row in distances:
            best = int(row.argmin())
            alike = best != g and row[best] * MARGIN < row[g] and row[best] <= self.thresholds[best]
            out.append(self.games[best] if alike else None)
        return out


@functools.lru_cache(maxsize=1)
def load_signatures() -> GameSignatures:
    """The committed reference signatures (read once per process)."""
    with np.load(SIGNATURES_FILE, allow_pickle=False) as data:
        return GameSignatures(
            games=tuple(str(g) for g in data["games"]),
            counts=data["counts"],
            thresholds=data["thresholds"],
        )


def check_game_look(
    first_frames: npt.NDArray[np.uint8], names: Sequence[str], game: str, *, where: str
) -> None:
    """Refuse first frames of which at least half look like one other game than ``game``.

    Args:
        first_frames: ``(n, 64, 64, 3)`` uint8, the first frame of each checked episode.
        names: The file (or episode) each frame comes from, for the message.
        game: The claimed game.
        where: The folder or file named in the message.

    Raises:
        SchemaError: Naming ``where``, the claimed game, the game the frames look like, and the
            fix (``--game``, or ``--force`` for data known to be ``game``).
    """
    if len(first_frames) == 0:
        return
    signatures = load_signatures()
    alikes = signatures.look_alikes(signatures.distances(first_frames), game)
    counted = Counter(a for a in alikes if a is not None)
    if not counted:
        return
    other, count = counted.most_common(1)[0]
    if 2 * count < len(alikes):
        return
    example = names[alikes.index(other)]
    raise SchemaError(
        f"{where}: the first frames of {count} of {len(alikes)} checked episodes look like "
        f"{other}, not {game} (e.g. {example}), so they are not {game} data. Pass --game {other} "
        f"(game={other!r}), or --force (force=True) if they are {game}."
    )


@dataclass
class OpeningCheck:
    """:func:`check_game_look` over the first episodes of a stream, as they arrive.

    For a converter that cannot look ahead (an archive read as one stream): the first frame of each
    of the first ``wanted`` episodes is kept (12 KiB each), and the check runs when ``wanted`` have
    arrived or at :meth:`finish`. Episodes written before a refusal stay in the unfinished store;
    rerunning with ``force`` continues it.

    Attributes:
        game: The claimed game.
        where: The archive named in the message.
        wanted: Episodes to check (half of them must look like one other game to refuse).
    """

    game: str
    where: str
    wanted: int = 16
    _frames: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    _names: list[str] = field(default_factory=list)
    _done: bool = False

    def add(self, first_frame: npt.NDArray[np.uint8], name: str) -> None:
        """Record one episode's first ``(64, 64, 3)`` frame; check once ``wanted`` are in.

        Raises:
            SchemaError: As :func:`check_game_look`.
        """
        if self._done:
            return
        self._frames.append(np.array(first_frame, dtype=np.uint8, copy=True))
        self._names.append(name)
        if len(self._frames) >= self.wanted:
            self.finish()

    def finish(self) -> None:
        """Check what has arrived (a stream shorter than ``wanted``); later calls do nothing.

        Raises:
            SchemaError: As :func:`check_game_look`.
        """
        if self._done or not self._frames:
            return
        self._done = True
        check_game_look(np.stack(self._frames), self._names, self.game, where=self.where)
