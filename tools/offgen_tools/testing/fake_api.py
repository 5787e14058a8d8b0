"""A minimal stand-in for ``wandb.Api`` that replays recorded runs.

It implements the part of the public API the engine uses: ``Api.runs(path, filters,
per_page, lazy)`` returning a paginated iterable (one request per page, server-side filters
evaluated with the same MongoDB semantics), and per run ``history(samples=..., keys=...)``
and ``scan_history(keys=..., page_size=..., min_step=...)`` (one request per page). Every
request is recorded in :attr:`FakeApi.requests`; chosen requests fail with HTTP 429 the way
``requests`` reports it, and an optional per-request latency imitates a remote server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from offgen_tools.runs.filters import match_filters


@dataclass(frozen=True)
class RecordedRun:
    """One recorded run.

    Attributes:
        id: Run id.
        name: Display name.
        project: Project.
        entity: Entity.
        group: Group.
        job_type: Job type.
        tags: Tags.
        state: State.
        config: Config.
        summary: Summary metrics.
        rows: History rows (each has ``_step``).
    """

    id: str
    name: str
    project: str = "proj"
    entity: str = "team"
    group: str | None = None
    job_type: str | None = None
    tags: tuple[str, ...] = ()
    state: str = "finished"
    config: Mapping[str, Any] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)
    rows: Sequence[Mapping[str, Any]] = ()


def too_many_requests() -> requests.HTTPError:
    """An ``HTTPError`` carrying a 429 response, as ``requests`` raises it."""
    response = requests.Response()
    response.status_code = 429
    response.reason = "Too Many Requests"
    return requests.HTTPError("429 Client Error: Too Many Requests", response=response)


class FakeApi:
    """Stand-in for ``wandb.Api``.

    Example:
        >>> api = FakeApi([RecordedRun("a1", "run-a", rows=[{"_step": 0, "loss": 1.0}])])
        >>> [r.name for r in api.runs("team/proj")]
        ['run-a']
    """

    def __init__(
        self,
        runs: Sequence[RecordedRun],
        *,
        fail_every: int = 0,
        fail_on: Collection[int] = (),
        latency: float = 0.0,
    ) -> None:
        """Create a stand-in.

        Args:
            runs: The recorded runs.
            fail_every: When > 0, every ``fail_every``-th request fails once with HTTP 429.
            fail_on: Numbers (1-based) of requests that fail with HTTP 429.
            latency: Seconds each request takes.
        """
        self.recorded = list(runs)
        self.fail_every = fail_every
        self.fail_on = set(fail_on)
        self.latency = latency
        self.requests: list[tuple[str, ...]] = []
        self.rate_limited = 0
        self._lock = threading.Lock()

    def request(self, *what: str) -> None:
        """Record one request; sleep the latency; maybe fail with 429."""
        with self._lock:
            self.requests.append(what)
            n = len(self.requests)
            fail = (self.fail_every > 0 and n % self.fail_every == 0) or n in self.fail_on
            if fail:
                self.rate_limited += 1
        if self.latency:
            time.sleep(self.latency)
        if fail:
            raise too_many_requests()

    def runs(
        self,
        path: str,
        filters: Mapping[str, Any] | None = None,
        order: str = "+created_at",
        per_page: int = 50,
        include_sweeps: bool = False,
        lazy: bool = True,
    ) -> FakeRuns:
        """Paginated runs of ``entity/project`` matching the filters (one request per page)."""
        entity, _, project = path.rpartition("/")
        matching = [
            r
            for r in self.recorded
            if r.project == project
            and (not entity or r.entity == entity)
            and match_filters(FakeRun(self, r).document(), filters)
        ]
        return FakeRuns(self, path, matching, per_page)


class FakeRuns:
    """Stand-in for WandB's ``Runs`` paginator: pages load lazily, one request each.

    Like WandB's paginator, ``runs[i]`` loads pages until item ``i`` is available (raising
    ``IndexError`` past the end) and leaves its state unchanged when a page request fails,
    so a failed lookup can be retried.
    """

    def __init__(self, api: FakeApi, path: str, matching: list[RecordedRun], per_page: int) -> None:
        """Create the paginator (no request yet)."""
        self._api = api
        self._path = path
        self._matching = matching
        self._per_page = per_page
        self.objects: list[FakeRun] = []

    def _load_page(self) -> bool:
        start = len(self.objects)
        if start >= len(self._matching):
            return False
        self._api.request("runs", self._path, str(start))
        self.objects.extend(
            FakeRun(self._api, r) for r in self._matching[start : start + self._per_page]
        )
        return True

    def __getitem__(self, index: int) -> FakeRun:
        loaded = True
        while loaded and index > len(self.objects) - 1:
            loaded = self._load_page()
        return self.objects[index]

    def __iter__(self) -> Iterator[FakeRun]:
        index = 0
        while True:
            try:
                yield self[index]
            except IndexError:
                return
            index += 1


class FakeRun:
    """Stand-in for ``wandb.apis.public.Run``."""

    def __init__(self, api: FakeApi, rec: RecordedRun) -> None:
        """Wrap a recorded run."""
        self._api = api
        self._rec = rec
        self.id = rec.id
        self.name = rec.name
        self.project = rec.project
        self.entity = rec.entity
        self.group = rec.group
        self.job_type = rec.job_type
        self.tags = list(rec.tags)
        self.state = rec.state
        self.config = dict(rec.config)
        self.summary_metrics = dict(rec.summary)

    def document(self) -> dict[str, Any]:
        """The run as the server's filter document."""
        return {
            "name": self.id,
            "display_name": self.name,
            "group": self.group,
            "jobType": self.job_type,
            "tags": self.tags,
            "state": self.state,
            "config": self.config,
            "summary_metrics": self.summary_metrics,
        }

    def history(
        self,
        samples: int = 500,
        keys: list[str] | None = None,
        x_axis: str = "_step",
        pandas: bool = True,
        stream: str = "default",
    ) -> list[dict[str, Any]]:
        """Sampled history: at most ``samples`` evenly spaced rows having all keys."""
        self._api.request("history", self.id, ",".join(keys or []))
        rows = [r for r in self._rec.rows if all(k in r for k in keys or [])]
        if len(rows) > samples:
            step = len(rows) / samples
            rows = [rows[int(i * step)] for i in range(samples)]
        return [{k: r[k] for k in [x_axis, *(keys or r.keys())] if k in r} for r in rows]

    def scan_history(
        self,
        keys: list[str] | None = None,
        page_size: int = 1000,
        min_step: int = 0,
        max_step: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Complete history, rows having all keys, one request per page."""
        rows = [
            r
            for r in self._rec.rows
            if r["_step"] >= min_step
            and (max_step is None or r["_step"] < max_step)
            and all(k in r for k in keys or [])
        ]
        for start in range(0, max(len(rows), 1), page_size):
            self._api.request("scan_history", self.id, str(start + min_step))
            for r in rows[start : start + page_size]:
                yield {k: r[k] for k in (keys or r.keys())}
