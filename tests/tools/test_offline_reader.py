"""The offline ``.wandb`` reader against real WandB offline runs, and the log format itself."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from offgen_tools.errors import FilterError, WandbFileError
from offgen_tools.runs.datastore import BLOCK_LEN, RecordReader, write_records
from offgen_tools.runs.engine import RunQuery
from offgen_tools.runs.filters import match_filters
from offgen_tools.runs.offline import OfflineSource, find_run_files, read_history, read_run_info


def test_reads_real_runs(wandb_runs: Path) -> None:
    assert (wandb_runs / "wandb" / "latest-run").is_symlink()
    files = find_run_files([wandb_runs])
    assert len(files) == 11  # latest-run symlink not counted twice
    runs = {r.name: r for r in OfflineSource([wandb_runs], project="hasard").runs()}
    assert len(runs) == 10 and "elsewhere" not in runs
    first = runs["ppo-ab-l1-s1"]
    assert first.state == "finished" and first.tags == ("NIPS",)
    assert (first.group, first.job_type) == ("g1", "train")
    assert first.config == {
        "algo": "PPO",
        "env": "armament_burden",
        "level": 1,
        "seed": 1,
        "lr": 0.001,
    }
    assert first.summary["final_reward"] == 9
    assert runs["ppo-failed"].state == "failed"
    assert runs["eval-nogroup"].group is None and runs["eval-nogroup"].job_type == "eval"
    crashed = runs["ppo-rr-l1-s3-crashed"]
    assert crashed.state == "crashed"
    series = read_history(Path(crashed.source), ["reward/reward"])["reward/reward"]
    assert 0 < len(series) < 3000  # the unflushed tail is lost
    assert np.array_equal(series.values, np.arange(len(series), dtype=float))


def test_history_nan_and_missing_keys(wandb_runs: Path) -> None:
    run = next(OfflineSource([wandb_runs]).runs({"display_name": "ppo-ab-l1-s1"}))
    hist = read_history(Path(run.source), ["reward/reward", "policy_stats/avg_cost", "never"])
    reward, cost = hist["reward/reward"], hist["policy_stats/avg_cost"]
    assert reward.steps.tolist() == [0, 100, 200, 300, 400, 600, 700, 800, 900]  # step 500 missing
    assert reward.values.tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert cost.steps.tolist() == list(range(0, 1000, 100))
    assert np.isnan(cost.values[3]) and cost.values[4] == 6.0
    assert len(hist["never"]) == 0


def test_local_filters_select_like_server(wandb_runs: Path) -> None:
    query = RunQuery(OfflineSource([wandb_runs], project="hasard"))
    names = lambda f: sorted(r.name for r in query.select(f))  # noqa: E731
    assert names({"tags": {"$in": ["TEST"]}}) == ["ppolag-ab-l1-s2-test"]
    assert "ppolag-ab-l1-s2-test" not in names({"tags": {"$nin": ["TEST"]}})
    assert names({"$and": [{"jobType": "eval"}]}) == ["eval-nogroup"]
    assert names({"config.safety_bound": {"$gte": 10}}) == ["ppolag-vv-l2-s1-hard"]
    assert names({"$or": [{"state": "crashed"}, {"state": "failed"}]}) == [
        "ppo-failed",
        "ppo-rr-l1-s3-crashed",
    ]
    assert names({"summary_metrics.final_reward": {"$lt": 4}}) == ["eval-nogroup"]
    assert names(
        {"config.hard_constraint": {"$ne": True}, "config.safety_bound": {"$exists": True}}
    ) == ["ppolag-vv-l2-s1-soft"]
    assert names({"display_name": {"$regex": "^ppocost-ab"}}) == [
        "ppocost-ab-l1-s1",
        "ppocost-ab-l1-s2",
    ]


def test_filter_semantics_on_documents() -> None:
    doc = {
        "tags": ["a", "b"],
        "config": {"lr": {"value": 0.1}, "nested": {"x": 1}},
        "state": "finished",
    }
    assert match_filters(doc, {"tags": "a"})
    assert match_filters(doc, {"config.lr": 0.1})  # server-style {"value": ...} unwrapped
    assert match_filters(doc, {"config.nested.x": {"$in": [1, 2]}})
    assert not match_filters(doc, {"tags": {"$nin": ["b"]}})
    assert match_filters(doc, {"config.missing": {"$ne": True}})
    assert not match_filters(doc, {"config.missing": {"$exists": True}})
    assert match_filters(doc, {"$nor": [{"state": "crashed"}]})
    assert match_filters(doc, {"tags": {"$all": ["a", "b"], "$size": 2}})
    assert match_filters(doc, {"state": {"$not": {"$eq": "crashed"}}})
    with pytest.raises(FilterError):
        match_filters(doc, {"state": {"$near": 1}})


def test_record_format_roundtrip_and_block_spanning(tmp_path: Path) -> None:
    payloads = [b"x" * 10, os.urandom(3 * BLOCK_LEN + 17), b"", b"tail" * 1000]
    path = tmp_path / "run-abc.wandb"
    write_records(path, payloads)
    reader = RecordReader(path)
    assert list(reader) == payloads and not reader.truncated
    # Cut inside the big record: the reader stops, reporting truncation.
    data = path.read_bytes()
    path.write_bytes(data[: BLOCK_LEN + 100])
    reader = RecordReader(path)
    assert list(reader) == payloads[:1] and reader.truncated


def test_header_and_checksum_errors(tmp_path: Path) -> None:
    path = tmp_path / "run-x.wandb"
    write_records(path, [b"hello"], version=1)
    with pytest.raises(WandbFileError, match=r"unsupported \.wandb format version 1"):
        list(RecordReader(path))
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 10)
    with pytest.raises(WandbFileError, match=r"not a \.wandb file"):
        list(RecordReader(path))
    path.write_bytes(struct.pack("<4sHB", b":W&B", 0x1234, 0))
    with pytest.raises(WandbFileError, match="bad magic"):
        list(RecordReader(path))
    write_records(path, [b"hello world"])
    corrupt = bytearray(path.read_bytes())
    corrupt[-1] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    with pytest.raises(WandbFileError, match="checksum"):
        list(RecordReader(path))
    with pytest.raises(WandbFileError):
        read_run_info(path)


def test_fast_path_and_protobuf_fallback_agree(tmp_path: Path) -> None:
    from wandb.proto import wandb_internal_pb2 as pb

    def row(step: int, items: list[tuple[list[str] | str, str]]) -> bytes:
        rec = pb.Record()
        rec.num = step + 1
        for key, value in items:
            it = rec.history.item.add()
            if isinstance(key, str):
                it.key = key  # the older writers' form
            else:
                it.nested_key.extend(key)
            it.value_json = value
        return rec.SerializeToString()

    long_value = "1" + "0" * 200  # a value longer than one length byte
    payloads = [
        row(0, [(["loss"], "1.5"), (["a", "loss"], "9"), (["_step"], "0")]),
        row(1, [("loss", "2.5"), ("_step", "1")]),
        row(2, [(["loss"], long_value), (["_step"], "2")]),
        row(3, [(["loss"], '"text"'), (["x"], "NaN"), (["_step"], "3")]),
        row(4, [(["loss"], "true"), (["_step"], "4")]),
    ]
    path = tmp_path / "run-mixed.wandb"
    write_records(path, payloads)
    hist = read_history(path, ["loss", "a.loss", "x"])
    assert hist["loss"].steps.tolist() == [0, 1, 2, 4]
    assert hist["loss"].values.tolist() == [1.5, 2.5, float(long_value), 1.0]
    assert hist["a.loss"].steps.tolist() == [0] and hist["a.loss"].values.tolist() == [9.0]
    assert hist["x"].steps.tolist() == [3] and np.isnan(hist["x"].values[0])
