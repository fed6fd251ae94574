"""Pure helpers of influx_to_kafka: time, Flux, annotated CSV, messages, partitioning, crash recovery."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


from ansible_collections.isobar.pipeline.plugins.module_utils import pipeline_checkpoint as cp
from ansible_collections.isobar.pipeline.plugins.module_utils import pipeline_producer as pp


def test_rfc3339_round_trip_keeps_nanoseconds():
    ns = 1_795_000_000_123_456_789
    assert pp.rfc3339_to_ns(pp.ns_to_rfc3339(ns)) == ns
    assert pp.rfc3339_to_ns("1970-01-01T00:00:00Z") == 0
    assert pp.rfc3339_to_ns("2026-01-01T01:00:00.5+01:00") == pp.rfc3339_to_ns("2026-01-01T00:00:00.5Z")
    with pytest.raises(pp.PipelineError):
        pp.rfc3339_to_ns("yesterday")


def test_flux_strings_cannot_break_out():
    assert pp.flux_string('a"b') == '"a\\"b"'
    assert pp.flux_string("a\\b") == '"a\\\\b"'
    assert pp.flux_string("${x}") == '"\\${x}"'


def test_batch_query_filters_strictly_after_the_cursor():
    q = pp.batch_query("weather", "weather", "station", 0, 10**18, {"time_ns": 5 * 10**9, "key": "lyon"}, 100)
    assert 'from(bucket: "weather")' in q
    assert 'r._measurement == "weather" and exists r["station"]' in q
    assert 'r._time > time(v: "1970-01-01T00:00:05.000000000Z") or (r._time == time(v: "1970-01-01T00:00:05.000000000Z") and r["station"] > "lyon")' in q
    assert q.rstrip().endswith("limit(n: 100)")
    assert "filter(fn: (r) => r._time >" not in pp.batch_query("b", "m", "station", 0, 1, None, 5)


CSV = """#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,double,double
#group,false,false,true,true,false,true,true,false,false
#default,_result,,,,,,,,
,result,table,_start,_stop,_time,_measurement,station,humidity,temperature
,,0,1970-01-01T00:00:00Z,2030-01-01T00:00:00Z,2026-01-01T00:00:00.000000001Z,weather,lyon,40,21.5
,,0,1970-01-01T00:00:00Z,2030-01-01T00:00:00Z,2026-01-01T00:00:10Z,weather,lyon,41,
,,1,1970-01-01T00:00:00Z,2030-01-01T00:00:00Z,2026-01-01T00:00:00.000000001Z,weather,paris,50,19

"""


def test_annotated_csv_to_points_in_time_then_key_order():
    tables = pp.parse_annotated_csv(CSV)
    assert len(tables) == 2
    points = pp.next_batch(pp.points_from_tables(tables, "weather", "station"), 10, "station")
    t0 = pp.rfc3339_to_ns("2026-01-01T00:00:00.000000001Z")
    assert [(p["time_ns"], p["key"]) for p in points] == [(t0, "lyon"), (t0, "paris"), (t0 + 10**10 - 1, "lyon")]
    assert points[0]["fields"] == {"humidity": 40.0, "temperature": 21.5}
    assert points[2]["fields"] == {"humidity": 41.0}  # a null field is left out
    assert points[0]["tags"] == {"station": "lyon"}
    assert len(pp.next_batch(points, 2, "station")) == 2


def test_flux_error_table_raises():
    text = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,bad things,123\n"
    with pytest.raises(pp.PipelineError, match="bad things"):
        pp.parse_annotated_csv(text)


def test_same_key_twice_at_one_time_is_refused():
    point = {"time_ns": 1, "key": "lyon", "tags": {"station": "lyon"}, "fields": {"t": 1.0}, "measurement": "w"}
    other = dict(point, tags={"station": "lyon", "sensor": "b"})
    with pytest.raises(pp.PipelineError, match="key_tag must identify one series"):
        pp.next_batch([point, other], 10, "station")


def test_message_is_json_keyed_by_station_with_a_stable_id():
    point = {"time_ns": 1_767_225_600_000_000_000, "key": "paris", "measurement": "weather",
             "tags": {"station": "paris"}, "fields": {"temperature": 12.5}}
    key, value = pp.message_for(point, "station")
    body = json.loads(value)
    assert key == "paris"
    assert body == {"id": "weather/paris/1767225600000000000", "measurement": "weather", "station": "paris",
                    "time": "2026-01-01T00:00:00.000000000Z", "time_ns": 1_767_225_600_000_000_000,
                    "tags": {"station": "paris"}, "fields": {"temperature": 12.5}}


def test_partitioning_matches_kafka_python_default_partitioner():
    kafka_default = pytest.importorskip("kafka.partitioner.default")
    for key in ["paris", "lyon", "marseille", "lille", "", "a", "ab", "abc", "station-0042", "é"]:
        data = key.encode()
        expected = (kafka_default.murmur2(data) & 0x7FFFFFFF) % 4
        assert pp.partition_for(key, 4) == expected, key


# -- recovery -------------------------------------------------------------------------------------
def _pending(partitions):
    """Messages in send order: partitions [0, 1, 0, 1, 0] -> indexes 0..4, ids m0..m4."""
    return {"offsets_before": {"0": 100, "1": 7, "2": 3},
            "messages": [[p, f"k{i}", json.dumps({"id": f"m{i}"})] for i, p in enumerate(partitions)]}


def test_recovery_resends_exactly_what_did_not_arrive():
    pending = _pending([0, 1, 0, 1, 0])
    # partition 0 got 1 of its 3 messages, partition 1 both of its 2, partition 2 none (had none)
    resend, delivered, unexpected = pp.recovery_plan(pending, {0: 101, 1: 9, 2: 3}, {0: ["m0"], 1: ["m1", "m3"]})
    assert resend == [2, 4] and delivered == 3 and unexpected == 0
    assert pp.recovery_plan(pending, {0: 100, 1: 7, 2: 3}, {}) == ([0, 1, 2, 3, 4], 0, 0)
    assert pp.recovery_plan(pending, {0: 103, 1: 9, 2: 3}, {0: ["m0", "m2", "m4"], 1: ["m1", "m3"]}) == ([], 5, 0)


def test_recovery_checks_ids_not_counts_when_a_middle_send_failed():
    pending = _pending([0, 0, 0, 1])
    # m1 failed, m2 (after it) arrived: counting would take m0, m1 as delivered and resend m2 (lost m1, twice m2)
    assert pp.recovery_plan(pending, {0: 102, 1: 8, 2: 3}, {0: ["m0", "m2"], 1: ["m3"]}) == ([1], 3, 0)


def test_recovery_leaves_other_writers_records_and_refuses_what_it_cannot_check():
    pending = _pending([0, 1])
    # another writer's record (no id of ours) and a duplicate are not deliveries of the batch
    assert pp.recovery_plan(pending, {0: 102, 1: 7, 2: 4}, {0: ["m0", None], 2: ["x"]}) == ([1], 1, 2)
    assert pp.recovery_plan(pending, {0: 102, 1: 7, 2: 3}, {0: ["m0", "m0"]}) == ([1], 1, 1)
    with pytest.raises(pp.PipelineError, match="could be read back"):
        pp.recovery_plan(pending, {0: 102, 1: 7, 2: 3}, {0: ["m0"]})  # a record deleted before it was read
    with pytest.raises(pp.PipelineError, match="shrank"):
        pp.recovery_plan(pending, {0: 50, 1: 7, 2: 3}, {})
    with pytest.raises(pp.PipelineError, match="unknown to the topic"):
        pp.recovery_plan(pending, {0: 100, 1: 7}, {})


def test_record_ids():
    assert pp.record_id(b'{"id": "weather/paris/1"}') == "weather/paris/1"
    assert pp.record_id(b"not json") is None and pp.record_id(None) is None and pp.record_id(b"[1]") is None


def test_checkpoint_of_another_source_is_refused():
    source = {"org": "o", "bucket": "b", "measurement": "m", "key_tag": "station", "topic": "t"}
    state = pp.new_state(source)
    assert pp.check_state(state, source, "/x") is state
    with pytest.raises(pp.PipelineError, match="belongs to"):
        pp.check_state(state, dict(source, topic="other"), "/x")
    with pytest.raises(pp.PipelineError, match="not an influx_to_kafka checkpoint"):
        pp.check_state({"hello": 1}, source, "/x")


# -- checkpoint file --------------------------------------------------------------------------------
def test_checkpoint_save_is_atomic_private_and_leaves_no_temp_files(tmp_path):
    store = cp.CheckpointStore(str(tmp_path / "c.json"))
    assert store.load() is None
    store.save({"a": 1})
    store.save({"a": 2})
    assert store.load() == {"a": 2}
    assert (tmp_path / "c.json").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]
    (tmp_path / "c.json").write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        store.load()


def test_checkpoint_lock_excludes_a_second_run_and_dies_with_its_holder(tmp_path):
    path = tmp_path / "c.json"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(path) + '.lock'!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(cp.CheckpointBusy):
            with cp.CheckpointStore(str(path)).locked():
                pass
    finally:
        holder.kill()
        holder.wait()
    with cp.CheckpointStore(str(path)).locked():  # a killed holder releases the lock
        assert os.path.exists(str(path) + ".lock")


def test_query_window_aims_at_a_batch_and_moves_in_bounded_steps():
    hour = 3600 * 10**9
    assert pp.next_window(hour, 0, 500) == 16 * hour  # nothing there: widen fast
    assert pp.next_window(hour, 250, 500) == int(2.5 * hour)  # half a batch: about twice as wide
    assert pp.next_window(hour, 50_000, 500) == hour // 16  # 100x too many: shrink, one bounded step
    assert pp.next_window(hour, 500, 500) == int(1.25 * hour)
    assert pp.next_window(pp.MIN_WINDOW_NS, 10**6, 1) == pp.MIN_WINDOW_NS
    assert pp.next_window(pp.MAX_WINDOW_NS, 0, 500) == pp.MAX_WINDOW_NS


def test_a_full_batch_sets_the_window_from_the_span_that_held_it():
    hour = 3600 * 10**9
    # 50 series, 1000 points each within one second: the batch of 5000 ended 99 ms after the range start
    assert pp.window_after_full_batch(hour // 16, 10**18, 10**18 + 99 * 10**6) == int(1.25 * (99 * 10**6 + 1))
    # never wider than what the count alone gave, never under the minimum
    assert pp.window_after_full_batch(10**6 * 10, 0, 10**12) == 10**6 * 10
    assert pp.window_after_full_batch(hour, 5, 5) == pp.MIN_WINDOW_NS
