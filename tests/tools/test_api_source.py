"""The WandB public-API source through the recorded stand-in: paging, filters, 429 retries, cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from offgen_tools.runs.api import ApiSource
from offgen_tools.runs.cache import HistoryCache
from offgen_tools.runs.engine import RunQuery
from offgen_tools.runs.retry import RetryPolicy, http_status, is_rate_limited
from offgen_tools.testing import FakeApi, RecordedRun
from offgen_tools.testing.fake_api import too_many_requests
from offgen_tools.wandb_export.layouts import BUILTIN_LAYOUTS
from offgen_tools.wandb_export.presets import download, options_from


def recorded(n: int = 120, rows: int = 20) -> list[RecordedRun]:
    runs = []
    for i in range(n):
        hist = []
        for step in range(rows):
            row: dict[str, object] = {"_step": step * 10, "loss": float(i + step)}
            if step % 7 == 3:
                del row["loss"]  # a row without the metric
            if step % 5 == 0:
                row["acc"] = math.nan
            hist.append(row)
        runs.append(
            RecordedRun(
                id=f"r{i:03d}",
                name=f"run-{i}",
                tags=("A",) if i % 2 else ("B",),
                state="running" if i == 0 else "finished",
                config={
                    "algo": "PPO",
                    "env": "armament_burden",
                    "level": 1,
                    "seed": 1 + i % 3,
                    "idx": i,
                },
                summary={"_step": (rows - 1) * 10},
                rows=hist,
            )
        )
    return runs


def no_sleep(log: list[float]):  # type: ignore[no-untyped-def]
    return lambda seconds: log.append(seconds)


def test_paging_and_server_side_filters() -> None:
    api = FakeApi(recorded())
    source = ApiSource(api, "team/proj", per_page=50)
    runs = list(source.runs())
    assert len(runs) == 120 and len({r.id for r in runs}) == 120
    assert [r for r in api.requests if r[0] == "runs"] == [
        ("runs", "team/proj", "0"),
        ("runs", "team/proj", "50"),
        ("runs", "team/proj", "100"),
    ]
    api.requests.clear()
    picked = list(source.runs({"tags": {"$in": ["A"]}, "config.idx": {"$lt": 10}}))
    assert [r.name for r in picked] == ["run-1", "run-3", "run-5", "run-7", "run-9"]
    assert len(api.requests) == 1  # filtered on the "server", one page
    assert (
        picked[0].config["algo"] == "PPO"
        and picked[0].entity == "team"
        and picked[0].last_step == 190
    )


def test_full_history_keeps_steps_and_skips_missing_rows() -> None:
    api = FakeApi(recorded(n=2))
    source = ApiSource(api, "team/proj", page_size=4)
    run = next(source.runs({"name": "r001"}))
    hist = source.history(run, ["loss", "acc"])
    loss = hist["loss"]
    expected_steps = [s * 10 for s in range(20) if s % 7 != 3]
    assert loss.steps.tolist() == expected_steps
    assert loss.values.tolist() == [1.0 + s for s in range(20) if s % 7 != 3]
    assert not loss.sampled
    assert hist["acc"].steps.tolist() == [0, 50, 100, 150] and np.isnan(hist["acc"].values).all()


def test_sampled_history() -> None:
    api = FakeApi(recorded(n=2, rows=100))
    source = ApiSource(api, "team/proj")
    run = next(source.runs({"name": "r001"}))
    series = source.history(run, ["loss"], samples=10)["loss"]
    assert series.sampled and len(series) == 10
    assert np.all(np.diff(series.steps) > 0)


def test_429_retries_with_backoff_everywhere() -> None:
    slept: list[float] = []
    api = FakeApi(recorded(n=30, rows=25), fail_every=3)
    source = ApiSource(
        api,
        "team/proj",
        per_page=7,
        page_size=4,
        retry=RetryPolicy(base_delay=0.5, jitter=0.0),
        sleep=no_sleep(slept),
    )
    query = RunQuery(source, max_workers=4)
    runs = query.select()
    assert len(runs) == 30 and len({r.id for r in runs}) == 30
    reports = query.fetch(runs, ["loss"])
    assert all(r.error is None for r in reports)
    for report in reports:
        assert report.history is not None
        loss = report.history.series["loss"]
        assert len(loss) == len(set(loss.steps.tolist())) == 25 - 4  # no duplicated or lost rows
    assert api.rate_limited > 10 and slept and set(slept) <= {0.5, 1.0, 2.0, 4.0}


def test_retry_gives_up_and_reports() -> None:
    api = FakeApi(recorded(n=3), fail_every=1)
    source = ApiSource(api, "team/proj", retry=RetryPolicy(max_attempts=3), sleep=no_sleep([]))
    api.fail_every = 0
    runs = list(source.runs())
    api.fail_every = 1
    reports = RunQuery(source, max_workers=2).fetch(runs, ["loss"])
    assert all(r.history is None and "HTTPError" in (r.error or "") for r in reports)


def test_http_status_detection() -> None:
    err = too_many_requests()
    assert http_status(err) == 429 and is_rate_limited(err)
    try:
        try:
            raise err
        except Exception as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_rate_limited(outer)
    assert not is_rate_limited(ValueError("x"))


def test_history_cache_avoids_redownload(tmp_path: Path) -> None:
    api = FakeApi(recorded(n=5))
    cache = HistoryCache(tmp_path / "cache")
    query = RunQuery(ApiSource(api, "team/proj"), cache=cache)
    runs = query.select()
    first = query.fetch(runs, ["loss"])
    history_requests = sum(1 for r in api.requests if r[0] == "scan_history")
    assert history_requests == 5
    api.requests.clear()
    fresh = RunQuery(ApiSource(api, "team/proj"), cache=HistoryCache(tmp_path / "cache"))
    second = fresh.fetch(fresh.select(), ["loss"])
    # Only the running run (r000) is downloaded again; finished runs come from the cache.
    assert [r[1] for r in api.requests if r[0] == "scan_history"] == ["r000"]
    for a, b in zip(first, second, strict=True):
        assert a.history is not None and b.history is not None
        np.testing.assert_array_equal(
            a.history.series["loss"].values, b.history.series["loss"].values
        )
    assert not list(tmp_path.rglob("*.pkl")) and list(tmp_path.rglob("*.npz"))


def test_preset_download_through_api(tmp_path: Path) -> None:
    api = FakeApi(recorded(n=6))
    layout = BUILTIN_LAYOUTS["tags"]
    opts = options_from(
        layout,
        "team/proj",
        {"output": tmp_path / "data", "wandb_tags": ["A"], "metrics": ["loss"], "seeds": [1, 2, 3]},
    )
    summary = download(layout, opts, RunQuery(ApiSource(api, "team/proj")))
    # Runs 1, 3, 5 carry tag A; seeds 2, 1, 3.
    assert len(summary.written) == 3
    doc = json.loads((tmp_path / "data/A/armament_burden/PPO/level_1/seed_2/loss.json").read_text())
    assert doc["run_name"] == "run-1" and doc["project"] == "team/proj" and doc["samples"] is None


def test_plain_iterable_listing_restarts_and_skips_seen() -> None:
    slept: list[float] = []
    api = FakeApi(recorded(n=10), fail_on={2, 5})

    class GeneratorApi:
        def runs(self, path: str, filters: object = None, per_page: int = 50) -> object:
            return iter(api.runs(path, filters, per_page=per_page))

    source = ApiSource(GeneratorApi(), "team/proj", per_page=3, sleep=no_sleep(slept))
    assert [r.id for r in source.runs()] == [f"r{i:03d}" for i in range(10)]
    assert slept
