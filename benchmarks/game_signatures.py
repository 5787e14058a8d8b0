"""Build (``--write``) and measure the game signatures that ``offgen convert`` checks frames with.

:mod:`offgen.data.game_look` refuses files whose first frames look like another Procgen game than
the one claimed. Its reference data, ``offgen/data/game_signatures.npz``, is made here from real
envpool first frames, deterministically (fixed level seeds, one environment per level or fixed
envpool seeds):

* references: per game, the first frames of easy levels 0-199 (every published dataset's levels,
  so the published data is matched exactly), of 256 easy levels drawn from 1,000-100,999 and of 256
  hard levels drawn from 200,000-299,999;
* calibration: 256 easy levels from 1,000,000+ and 256 hard levels from 1,200,000+, which set
  each game's distance threshold (how far from its references a real frame of it was seen).

The measurement then uses levels used for neither (256 easy from 5,000,000+ and 256 hard from
6,000,000+ per game) and prints, per frame and per checked folder (``CHECKED`` first frames):

* false refusals: real frames of game G that look like another game (want 0);
* detection: frames of game H claimed as G that are seen to look like H, per pair (want high);
* time per checked frame.

Usage::

    python benchmarks/game_signatures.py            # measure against the committed file
    python benchmarks/game_signatures.py --write    # rebuild offgen/data/game_signatures.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from offgen.data.game_look import (
    MARGIN,
    SIGNATURES_FILE,
    GameSignatures,
    frame_signature,
    load_signatures,
)
from offgen.registry import GAMES

TRAIN_LEVELS = 200
DRAWN = 256
CHECKED = 16
# (mode, start_level, envpool seed) of each frame set; levels are drawn from start .. start+100k.
REFERENCE = (("Easy", 1_000, 11), ("Hard", 200_000, 12))
CALIBRATION = (("Easy", 1_000_000, 21), ("Hard", 1_200_000, 22))
TEST = (("Easy", 5_000_000, 31), ("Hard", 6_000_000, 32))


def _drawn_first_frames(game: str, mode: str, start: int, seed: int) -> np.ndarray:
    import envpool

    env = envpool.make_gymnasium(
        f"{game.capitalize()}{mode}-v0",
        num_envs=DRAWN,
        num_levels=100_000,
        start_level=start,
        seed=seed,
        channel_first=False,
    )
    obs, _info = env.reset()
    env.close()
    return np.asarray(obs)


def _level_first_frames(game: str, levels: range) -> np.ndarray:
    import envpool

    frames = []
    for level in levels:
        env = envpool.make_gymnasium(
            f"{game.capitalize()}Easy-v0",
            num_envs=1,
            num_levels=1,
            start_level=level,
            seed=0,
            channel_first=False,
        )
        obs, _info = env.reset()
        env.close()
        frames.append(obs[0])
    return np.stack(frames)


def _frames(game: str, sets: tuple[tuple[str, int, int], ...]) -> np.ndarray:
    return np.concatenate([_drawn_first_frames(game, *s) for s in sets])


def build() -> None:
    """Write ``offgen/data/game_signatures.npz`` from envpool frames."""
    games = sorted(GAMES)
    counts = []
    for game in games:
        refs = np.concatenate(
            [_level_first_frames(game, range(TRAIN_LEVELS)), _frames(game, REFERENCE)]
        )
        counts.append(frame_signature(refs, counts=True))
        print(f"{game}: {len(refs)} reference frames", flush=True)
    provisional = GameSignatures(
        games=tuple(games), counts=np.stack(counts), thresholds=np.full(len(games), np.inf)
    )
    thresholds = []
    for gi, game in enumerate(games):
        distances = provisional.distances(_frames(game, CALIBRATION))
        # Real frames of the game were seen this far from its references; 1.5x leaves room for
        # levels never seen. Only used to tell "looks like no game" (noise) from a look-alike.
        thresholds.append(float(distances[:, gi].max()) * MARGIN)
    np.savez_compressed(
        SIGNATURES_FILE,
        games=np.array(games),
        counts=np.stack(counts),
        thresholds=np.array(thresholds, dtype=np.float32),
    )
    print(f"wrote {SIGNATURES_FILE} ({SIGNATURES_FILE.stat().st_size / 1e3:.0f} kB)")


def measure() -> None:
    """Print false refusals, detection per pair and time per frame on unseen levels."""
    signatures = load_signatures()
    games = list(signatures.games)
    looks = {}
    spent, frames_done = 0.0, 0
    for game in games:
        frames = _frames(game, TEST)
        started = time.perf_counter()
        distances = signatures.distances(frames)
        spent += time.perf_counter() - started
        frames_done += len(frames)
        looks[game] = distances
    print(f"{frames_done} unseen first frames (easy + hard), margin {MARGIN}")
    print(f"time per checked frame: {1e3 * spent / frames_done:.2f} ms")
    print(f"{'game':<10} {'false':>6} {'worst-pair detection':>28}")
    worst_folder = 1.0
    false_total = 0
    for game in games:
        own = signatures.look_alikes(looks[game], game)
        false = sum(x is not None for x in own)
        false_total += false
        detect = []
        for claimed in games:
            if claimed == game:
                continue
            alike = signatures.look_alikes(looks[game], claimed)
            detect.append((np.mean([x == game for x in alike]), claimed))
        rate, claimed = min(detect)
        # A folder is refused when half its CHECKED frames look like one other game.
        folder = _folder_detection(float(rate))
        worst_folder = min(worst_folder, folder)
        print(f"{game:<10} {false:>6} {rate:>10.3f} (claimed {claimed}; folder {folder:.6f})")
    print(f"false refusals (frames): {false_total} of {frames_done}")
    print(
        f"worst folder detection ({CHECKED} checked episodes on random levels): {worst_folder:.6f}"
    )


def _folder_detection(rate: float) -> float:
    """P(at least half of CHECKED independent frames are detected) at per-frame ``rate``."""
    from math import comb

    need = (CHECKED + 1) // 2
    return sum(
        comb(CHECKED, k) * rate**k * (1 - rate) ** (CHECKED - k) for k in range(need, CHECKED + 1)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rebuild the signatures file first")
    args = parser.parse_args()
    if args.write:
        build()
    measure()


if __name__ == "__main__":
    Path(SIGNATURES_FILE).parent.mkdir(parents=True, exist_ok=True)
    main()
