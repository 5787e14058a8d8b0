"""On-disk cache of downloaded metric histories (``.npz``, no pickle)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from offgen_tools.runs.model import RunInfo, Series

#: Environment variable naming the cache directory.
CACHE_ENV = "OFFGEN_TOOLS_CACHE"


def default_cache_dir() -> Path:
    """The cache directory: ``$OFFGEN_TOOLS_CACHE`` or ``~/.cache/offgen_tools/histories``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    return Path.home() / ".cache" / "offgen_tools" / "histories"


class HistoryCache:
    """Cache of metric series keyed by run, metric, sampling and the run's last step.

    Runs still ``running`` are never cached (their history grows). A finished run's entry is
    reused until its last step changes, so re-running an export downloads nothing new.

    Example:
        >>> cache = HistoryCache(tmp_path)                      # doctest: +SKIP
        >>> cache.put(run, "loss", None, series)                # doctest: +SKIP
        >>> cache.get(run, "loss", None)                        # doctest: +SKIP
    """

    def __init__(self, root: str | Path | None = None) -> None:
        """Create a cache.

        Args:
            root: Directory; defaults to :func:`default_cache_dir`.
        """
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def _path(self, run: RunInfo, key: str, samples: int | None) -> Path:
        ident = json.dumps(
            [run.source, run.id, key, samples, run.last_step, run.state], sort_keys=True
        )
        digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
        return self.root / digest[:2] / f"{digest}.npz"

    @staticmethod
    def cacheable(run: RunInfo) -> bool:
        """Whether a run's history is final enough to cache."""
        return run.state != "running"

    def get(self, run: RunInfo, key: str, samples: int | None) -> Series | None:
        """Return a cached series, or None.

        Args:
            run: The run.
            key: Metric name.
            samples: Sample count (None for complete history).

        Returns:
            The cached series or None on a miss.
        """
        if not self.cacheable(run):
            return None
        path = self._path(run, key, samples)
        try:
            with np.load(path, allow_pickle=False) as data:
                series = Series(
                    steps=data["steps"].astype(np.int64),
                    values=data["values"].astype(np.float64),
                    sampled=bool(data["sampled"]),
                )
        except (OSError, KeyError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return series

    def put(self, run: RunInfo, key: str, samples: int | None, series: Series) -> None:
        """Store a series (atomically; ignored for running runs).

        Args:
            run: The run.
            key: Metric name.
            samples: Sample count (None for complete history).
            series: The series.
        """
        if not self.cacheable(run):
            return
        path = self._path(run, key, samples)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, steps=series.steps, values=series.values, sampled=np.bool_(series.sampled))
        os.replace(tmp, path)
