"""Run source over the WandB public API (``wandb.Api``), with paging and HTTP 429 retries."""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from offgen_tools._optional import require
from offgen_tools.errors import WandbApiError
from offgen_tools.runs.filters import Filters
from offgen_tools.runs.model import RunInfo, Series
from offgen_tools.runs.retry import RetryPolicy, call_with_retry, is_rate_limited


def default_api() -> Any:
    """Create a real ``wandb.Api`` (needs network access and credentials).

    Returns:
        A ``wandb.Api`` instance.

    Raises:
        WandbApiError: When WandB refuses to open the API (no API key, bad host).
        MissingDependencyError: Without the ``wandb`` extra.
    """
    wandb = require("wandb", "wandb")
    try:
        return wandb.Api(timeout=60)
    except wandb.errors.Error as exc:
        raise WandbApiError(
            f"cannot open the WandB API: {exc} (run `wandb login` or set WANDB_API_KEY; "
            "for runs on disk pass --offline-dir)"
        ) from exc


class ApiSource:
    """Runs of a WandB project through the public API.

    The API object is injected (any object with ``runs(path, filters=..., per_page=...)``
    returning WandB-like runs works), which is how tests run without a server. Filters are
    sent to the server; ``lazy=False`` is passed where supported so config and summary come
    with the listing. Pages are fetched ``per_page`` runs at a time; a 429 during listing
    restarts the listing and skips runs already yielded; a 429 during a history download
    retries that download (``scan_history`` resumes after the last step it had).

    Example:
        >>> import wandb                                               # doctest: +SKIP
        >>> source = ApiSource(wandb.Api(), project="team/proj")       # doctest: +SKIP
        >>> runs = list(source.runs({"state": "finished"}))            # doctest: +SKIP
    """

    cacheable = True

    def __init__(
        self,
        api: Any,
        project: str,
        *,
        per_page: int = 50,
        page_size: int = 1000,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        """Create a source.

        Args:
            api: A ``wandb.Api`` or a stand-in with the same ``runs`` method.
            project: ``entity/project`` (or ``project`` for the API's default entity).
            per_page: Runs per listing page.
            page_size: Rows per ``scan_history`` page.
            retry: Backoff policy for HTTP 429.
            sleep: Sleep function used between retries.
        """
        self.api = api
        self.project = project
        self.per_page = per_page
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._raw: dict[str, Any] = {}

    def runs(self, filters: Filters | None = None) -> Iterator[RunInfo]:
        """Yield the runs that match server-side filters.

        Args:
            filters: MongoDB-style filters.

        Yields:
            Runs in the server's order (oldest first).

        Raises:
            WandbApiError: When the listing fails for another reason than rate limiting
                (unknown project, no access, network), with the API's message.
        """
        try:
            yield from self._runs(filters)
        except WandbApiError:
            raise
        except Exception as exc:
            # The API object is injected and raises its own types (wandb's CommError,
            # ValueError for an unknown project, requests' errors): all mean the listing failed.
            raise WandbApiError(
                f"listing runs of WandB project {self.project!r} failed: "
                f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            ) from exc

    def _runs(self, filters: Filters | None) -> Iterator[RunInfo]:
        listing = self._list(filters)
        if hasattr(listing, "__getitem__"):
            # WandB's paginator: ``listing[i]`` loads pages as needed and keeps its state
            # when a page request fails, so each lookup can be retried on its own.
            index = 0
            while True:
                try:
                    raw = call_with_retry(
                        functools.partial(listing.__getitem__, index),
                        self.retry,
                        sleep=self.sleep,
                        what="run listing",
                    )
                except IndexError:
                    return
                run = to_run_info(raw)
                self._raw[run.id] = raw
                yield run
                index += 1
        else:
            yield from self._restartable(filters, listing)

    def _restartable(self, filters: Filters | None, listing: Any) -> Iterator[RunInfo]:
        # A plain iterable cannot resume after an error: list again, skipping runs seen.
        seen: set[str] = set()
        attempt = 0
        while True:
            try:
                for raw in listing:
                    run = to_run_info(raw)
                    if run.id in seen:
                        continue
                    seen.add(run.id)
                    attempt = 0
                    self._raw[run.id] = raw
                    yield run
                return
            except Exception as exc:
                attempt += 1
                if not is_rate_limited(exc) or attempt >= self.retry.max_attempts:
                    raise
                self.sleep(self.retry.delay(attempt))
                listing = self._list(filters)

    def _list(self, filters: Filters | None) -> Any:
        kwargs: dict[str, Any] = {"filters": dict(filters or {}), "per_page": self.per_page}
        try:
            names = set(inspect.signature(self.api.runs).parameters)
        except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
            names = set()
        if "lazy" in names:
            kwargs["lazy"] = False
        return self.api.runs(self.project, **kwargs)

    def history(
        self, run: RunInfo, keys: Sequence[str], samples: int | None = None
    ) -> dict[str, Series]:
        """Download the history of some metrics of a run.

        Each metric is fetched on its own so that rows missing one metric do not drop the
        others (``scan_history`` only yields rows having all requested keys).

        Args:
            run: A run yielded by :meth:`runs`.
            keys: Metric names.
            samples: None for the complete history (``scan_history``), or a number of rows
                for the server's sampled ``history(samples=...)``.

        Returns:
            Metric name to series on the ``_step`` axis.
        """
        raw = self._raw.get(run.id)
        if raw is None:
            raise KeyError(f"run {run.id} was not listed by this source")
        out: dict[str, Series] = {}
        for key in keys:
            if samples is None:
                out[key] = self._scan(raw, key)
            else:
                rows: list[dict[str, Any]] = call_with_retry(
                    functools.partial(
                        raw.history, samples=samples, keys=[key], x_axis="_step", pandas=False
                    ),
                    self.retry,
                    sleep=self.sleep,
                    what=f"history of {run.id}",
                )
                out[key] = _rows_to_series(rows, key, sampled=True)
        return out

    def _scan(self, raw: Any, key: str) -> Series:
        steps: list[int] = []
        values: list[float] = []
        min_step = 0
        attempt = 0
        while True:
            try:
                for row in raw.scan_history(
                    keys=[key, "_step"], page_size=self.page_size, min_step=min_step
                ):
                    value = _as_float(row.get(key))
                    step = row.get("_step")
                    if step is None:
                        continue
                    min_step = int(step) + 1
                    attempt = 0  # progress since the last failure: a fresh retry budget
                    if value is not None:
                        steps.append(int(step))
                        values.append(value)
                return Series.from_lists(steps, values)
            except Exception as exc:
                attempt += 1
                if not is_rate_limited(exc) or attempt >= self.retry.max_attempts:
                    raise
                self.sleep(self.retry.delay(attempt))


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value)
    return None


def _rows_to_series(rows: Sequence[Mapping[str, Any]], key: str, *, sampled: bool) -> Series:
    steps: list[int] = []
    values: list[float] = []
    for row in rows:
        step = row.get("_step")
        value = _as_float(row.get(key))
        if step is None or value is None:
            continue
        if isinstance(step, float) and math.isnan(step):
            continue
        steps.append(int(step))
        values.append(value)
    return Series.from_lists(steps, values, sampled=sampled)


def to_run_info(raw: Any) -> RunInfo:
    """Convert a WandB public-API run (or a stand-in) to a :class:`RunInfo`.

    Args:
        raw: Object with ``id``, ``name``, ``project``, ``entity``, ``group``, ``job_type``,
            ``tags``, ``state``, ``config`` and ``summary_metrics`` (or ``summary``).

    Returns:
        The run.
    """
    summary = getattr(raw, "summary_metrics", None)
    if summary is None:
        summary = getattr(raw, "summary", {}) or {}
    summary = dict(summary)
    step = summary.get("_step")
    config = {
        k: v
        for k, v in dict(getattr(raw, "config", {}) or {}).items()
        if not k.startswith("_wandb")
    }
    entity = getattr(raw, "entity", "") or ""
    project = getattr(raw, "project", "") or ""
    return RunInfo(
        id=str(raw.id),
        name=str(getattr(raw, "name", raw.id) or raw.id),
        project=project,
        entity=entity,
        group=getattr(raw, "group", None) or None,
        job_type=getattr(raw, "job_type", None) or None,
        tags=tuple(getattr(raw, "tags", ()) or ()),
        state=str(getattr(raw, "state", "finished")),
        config=config,
        summary=summary,
        source=f"{entity}/{project}/{raw.id}",
        last_step=int(step)
        if isinstance(step, int | float) and not isinstance(step, bool)
        else None,
    )
