"""The run-query engine: select runs from a source, download histories concurrently, cache them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from tqdm import tqdm

from offgen_tools.runs.cache import HistoryCache
from offgen_tools.runs.filters import Filters
from offgen_tools.runs.model import History, RunInfo, Series

log = logging.getLogger(__name__)


class RunSource(Protocol):
    """What the engine needs from a run source."""

    cacheable: bool

    def runs(self, filters: Filters | None = None) -> Iterator[RunInfo]:
        """Yield runs matching MongoDB-style filters."""
        ...

    def history(
        self, run: RunInfo, keys: Sequence[str], samples: int | None = None
    ) -> dict[str, Series]:
        """Return metric series of a run."""
        ...


@dataclass(frozen=True)
class FetchReport:
    """Outcome of downloading one run's history.

    Attributes:
        run: The run.
        history: The history, or None when the download failed.
        error: Why it failed, or None.
    """

    run: RunInfo
    history: History | None
    error: str | None = None


class RunQuery:
    """Select runs and download their histories from any :class:`RunSource`.

    Downloads run in a bounded thread pool (``max_workers``); sources retry HTTP 429 with
    backoff; a :class:`HistoryCache` (for sources that are remote) avoids re-downloading.

    Example:
        >>> query = RunQuery(OfflineSource(["wandb"]))                 # doctest: +SKIP
        >>> runs = query.select({"config.algo": "PPO"})                # doctest: +SKIP
        >>> reports = query.fetch(runs, ["reward/reward"])             # doctest: +SKIP
    """

    def __init__(
        self, source: RunSource, *, cache: HistoryCache | None = None, max_workers: int = 8
    ) -> None:
        """Create an engine.

        Args:
            source: The run source.
            cache: History cache; only used when ``source.cacheable`` is true.
            max_workers: Concurrent history downloads (at least 1).
        """
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.source = source
        self.cache = cache if source.cacheable else None
        self.max_workers = max_workers

    def select(self, filters: Filters | None = None) -> list[RunInfo]:
        """List runs matching the filters.

        Args:
            filters: MongoDB-style filters.

        Returns:
            The runs.
        """
        return list(self.source.runs(filters))

    def history(self, run: RunInfo, keys: Sequence[str], samples: int | None = None) -> History:
        """Fetch one run's history, using the cache where possible.

        Args:
            run: The run.
            keys: Metric names.
            samples: None for the complete history, or a sample count.

        Returns:
            The history.
        """
        series: dict[str, Series] = {}
        missing: list[str] = []
        for key in keys:
            cached = self.cache.get(run, key, samples) if self.cache else None
            if cached is None:
                missing.append(key)
            else:
                series[key] = cached
        if missing:
            fetched = self.source.history(run, missing, samples)
            for key in missing:
                got = fetched.get(key) or Series.empty(sampled=samples is not None)
                series[key] = got
                if self.cache:
                    self.cache.put(run, key, samples, got)
        return History(run=run, series={k: series[k] for k in keys})

    def fetch(
        self,
        runs: Sequence[RunInfo],
        keys: Sequence[str],
        samples: int | None = None,
        *,
        progress: bool = False,
    ) -> list[FetchReport]:
        """Fetch histories of many runs concurrently.

        A run whose download fails is reported (``error``), never raised, so one bad run
        does not stop the others.

        Args:
            runs: Runs to fetch.
            keys: Metric names.
            samples: None for the complete history, or a sample count.
            progress: Show a tqdm progress bar.

        Returns:
            One report per run, in the order of ``runs``.
        """

        def one(run: RunInfo) -> FetchReport:
            try:
                return FetchReport(run, self.history(run, keys, samples))
            except Exception as exc:
                log.warning("history of run %s failed: %s", run.id, exc)
                return FetchReport(run, None, f"{type(exc).__name__}: {exc}")

        if not runs:
            return []
        workers = min(self.max_workers, len(runs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="history") as pool:
            it: Iterable[FetchReport] = pool.map(one, runs)
            if progress:
                it = tqdm(it, total=len(runs), desc="histories", unit="run")
            return list(it)
