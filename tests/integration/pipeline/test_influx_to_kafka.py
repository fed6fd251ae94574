"""influx_to_kafka against a real InfluxDB 2 and a real Kafka (TLS + SCRAM + ACLs) from the artifact store.

The producer runs with least privilege, as in the lab: a SCRAM user with WRITE and READ on its topic only and an
InfluxDB token that may only read the bucket. What arrived is always read back from the topic.
"""
from __future__ import annotations

import collections
import random
import secrets
import time
from pathlib import Path

import pytest
from conftest import run_module
from fixtures.pipeline_helpers import (  # noqa: F401 - producer, read_token and stream are fixtures
    create_topic, kill_tree, producer, read_checkpoint, read_token, read_topic, scram_user, start_module, stream,
    write_points)

pytestmark = pytest.mark.slow
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, safely in the past
# The exactly-once tests run with each Kafka client library the module can send with (kafka_client); the others
# with its default.
EACH_CLIENT = pytest.mark.parametrize("job", ["confluent-kafka", "kafka-python"], indirect=True)


@pytest.fixture
def job(request, kafka_server, influxdb_server, producer, read_token, tmp_path, stream):
    """A fresh measurement and topic (4 partitions) per test, the producer allowed to write to it."""
    name = stream("itk")
    args = {
        "url": influxdb_server.url, "token": read_token, "org": influxdb_server.org, "ca_path": influxdb_server.ca_path,
        "bucket": influxdb_server.bucket, "measurement": name, "key_tag": "station", "topic": name,
        "checkpoint_path": str(tmp_path / "state" / "checkpoint.json"), "batch_size": 50,
        "bootstrap_servers": [kafka_server.bootstrap], "sasl_username": producer["user"],
        "sasl_password": producer["password"], "ssl_cafile": kafka_server.ca_file,
        "api_version": ".".join(kafka_server.version.split(".")[:2]),
    }
    if getattr(request, "param", None):
        args["kafka_client"] = request.param
    return {"name": name, "args": args, "checkpoint": Path(args["checkpoint_path"])}


def assert_exactly_once(records, written, measurement, in_order=True):
    """Every written point arrived once, with its values, keyed by station, in time order per station (unless a send
    in the middle of a batch failed: the point resent for it comes after the later ones of its partition)."""
    ids = collections.Counter(r["value"]["id"] for r in records)
    duplicates = {i: n for i, n in ids.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} points published more than once, e.g. {list(duplicates.items())[:3]}"
    got = {(r["value"]["station"], r["value"]["time_ns"]): r["value"]["fields"] for r in records}
    missing = set(written) - set(got)
    assert not missing, f"{len(missing)} points never published, e.g. {sorted(missing)[:3]}"
    assert got == written
    partition_of = {}
    last_time = {}
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        value = r["value"]
        assert r["key"] == value["station"] and value["measurement"] == measurement
        assert value["id"] == f"{measurement}/{value['station']}/{value['time_ns']}"
        # publish time, not the point's time: retention must not delete points of old windows at once
        assert abs(r["timestamp"] - time.time() * 1000) < 3600_000
        assert partition_of.setdefault(r["key"], r["partition"]) == r["partition"], "a station moved partition"
        assert value["time_ns"] > last_time.get(r["key"], -1) or not in_order, "a station's points are out of order"
        last_time[r["key"]] = value["time_ns"]


@EACH_CLIENT
def test_publishes_each_point_once_then_nothing_on_rerun(job, kafka_server, influxdb_server):
    written = write_points(influxdb_server, job["name"], T0, 30)  # 4 stations x 30 = 120 points

    check = run_module("influx_to_kafka", job["args"], check=True, diff=True)
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] and check["messages"] == 120
    assert not job["checkpoint"].exists(), "check mode wrote a checkpoint"
    assert read_topic(kafka_server, job["name"]) == [], "check mode sent messages"

    first = run_module("influx_to_kafka", job["args"], diff=True)
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] and first["messages"] == 120 and first["batches"] == 3
    assert first["rate"] > 0 and sum(first["partitions"].values()) == 120
    assert first["checkpoint"]["delivered_total"] == 120 and first["checkpoint"]["pending"] == 0
    assert first["diff"]["before"]["time"] is None and first["diff"]["after"]["key"] == "paris"
    assert job["checkpoint"].stat().st_mode & 0o777 == 0o600
    assert_exactly_once(read_topic(kafka_server, job["name"]), written, job["name"])

    again = run_module("influx_to_kafka", job["args"])
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["messages"] == 0, again
    assert len(read_topic(kafka_server, job["name"])) == 120

    # New points: only they are published.
    more = write_points(influxdb_server, job["name"], T0 + 30 * 10**9, 2)
    third = run_module("influx_to_kafka", job["args"])
    assert third["changed"] and third["messages"] == 8
    assert_exactly_once(read_topic(kafka_server, job["name"]), {**written, **more}, job["name"])


def test_points_sharing_a_timestamp_are_split_across_batches_without_loss(job, kafka_server, influxdb_server):
    # 7 stations at each timestamp and batches of 5: batch boundaries fall between stations of one timestamp.
    stations = [f"s{i}" for i in range(7)]
    written = write_points(influxdb_server, job["name"], T0, 5, stations=stations)
    result = run_module("influx_to_kafka", dict(job["args"], batch_size=5))
    assert result["messages"] == 35 and result["batches"] == 7
    assert_exactly_once(read_topic(kafka_server, job["name"]), written, job["name"])


def test_sparse_points_and_a_long_gap_are_read_in_full_batches(job, kafka_server, influxdb_server):
    # The query reads a time window sized from what the last one held: thin windows are widened before
    # a batch is sent, and a 40-day gap (and the 56 years from the default start) is crossed in few steps.
    day = 86400 * 10**9
    written = write_points(influxdb_server, job["name"], T0, 30, step_ns=3600 * 10**9)  # 120 points, hourly
    written.update(write_points(influxdb_server, job["name"], T0 + 40 * day, 30, step_ns=10**9))  # 120, per second
    result = run_module("influx_to_kafka", dict(job["args"], batch_size=50))
    assert not result.get("failed"), result.get("msg")
    assert result["messages"] == 240 and result["batches"] <= 6, result  # 5 when every batch is full
    assert_exactly_once(read_topic(kafka_server, job["name"]), written, job["name"])


def test_max_messages_stops_early_and_the_next_run_continues(job, kafka_server, influxdb_server):
    written = write_points(influxdb_server, job["name"], T0, 10)
    first = run_module("influx_to_kafka", dict(job["args"], max_messages=15))
    assert first["messages"] == 15
    second = run_module("influx_to_kafka", job["args"])
    assert second["messages"] == 25
    assert_exactly_once(read_topic(kafka_server, job["name"]), written, job["name"])


def test_start_is_ignored_once_a_checkpoint_exists(job, kafka_server, influxdb_server):
    # The cursor is older than `start` (T0 is months ago, start is 30 days ago): the points between them are
    # still published, and check mode counts what the real run publishes.
    written = write_points(influxdb_server, job["name"], T0, 10)
    first = run_module("influx_to_kafka", dict(job["args"], max_messages=15))
    assert first["messages"] == 15 and first["checkpoint"]["time"].startswith("2026-01-01T00:00:03")
    args = dict(job["args"], start="-30d")
    check = run_module("influx_to_kafka", args, check=True)
    second = run_module("influx_to_kafka", args)
    assert not second.get("failed"), second.get("msg")
    assert second["messages"] == 25 == check["messages"], (second["messages"], check["messages"])
    assert_exactly_once(read_topic(kafka_server, job["name"]), written, job["name"])


@EACH_CLIENT
@pytest.mark.parametrize("stage, recovered, already", [
    ("after_journal", 50, 0),    # died after journaling batch 2, before sending it
    ("partial_send", 25, 25),    # died after half of batch 2 was acknowledged
    ("after_delivery", 0, 50),   # died after batch 2 was acknowledged, before the checkpoint moved
    ("gap_send", 1, 49),         # died after batch 2 was acknowledged except its 25th message (a failed middle send)
])
def test_a_run_dying_mid_batch_is_completed_by_the_next_without_duplicates(
        job, kafka_server, influxdb_server, monkeypatch, tmp_path, stage, recovered, already):
    written = write_points(influxdb_server, job["name"], T0, 40)  # 160 points, batches of 50
    monkeypatch.setenv("ISOBAR_FAULT_INJECT", f"{stage}:2")
    # The injected crash leaves the module's unpacked AnsiballZ payload behind: in pytest's tmp_path, not in /tmp
    # (four directories per test run were piling up there).
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    crashed = run_module("influx_to_kafka", job["args"])
    assert crashed.get("failed"), "the injected crash did not happen"
    state = read_checkpoint(job["checkpoint"])
    assert state["delivered_total"] == 50 and len(state["pending"]["messages"]) == 50
    monkeypatch.delenv("ISOBAR_FAULT_INJECT")

    resumed = run_module("influx_to_kafka", job["args"])
    assert not resumed.get("failed"), resumed.get("msg")
    assert resumed["recovered"] == recovered and resumed["already_delivered"] == already
    assert resumed["messages"] == recovered + 60  # the rest of batch 2, then batches 3 and 4 (50 + 10)
    assert resumed["checkpoint"]["delivered_total"] == 160 and resumed["checkpoint"]["pending"] == 0
    assert_exactly_once(read_topic(kafka_server, job["name"]), written, job["name"], in_order=stage != "gap_send")
    assert run_module("influx_to_kafka", job["args"])["changed"] is False


@EACH_CLIENT
def test_sigkill_at_random_moments_then_resume_delivers_everything_once(job, kafka_server, influxdb_server, tmp_path):
    written = write_points(influxdb_server, job["name"], T0, 500)  # 2000 points, 20 batches of 100
    args = dict(job["args"], batch_size=100)
    kills, in_flight = [], 0
    for threshold in range(100, 1900, 100):
        # A killed module leaves its unpacked AnsiballZ payload behind: in pytest's tmp_path, not in /tmp.
        proc = start_module("influx_to_kafka", args, env={"TMPDIR": str(tmp_path)})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            state = read_checkpoint(job["checkpoint"])
            if state and state["delivered_total"] >= threshold and state["pending"]:
                time.sleep(random.uniform(0, 0.01))  # somewhere in sending the batch, or just after
                break
            time.sleep(0.002)
        if proc.poll() is not None:
            out, err = proc.communicate()
            # A run that cannot start at all (module not found, bad arguments) must not read as "too fast".
            assert proc.returncode == 0, f"the producer failed before it could be killed:\n{out[-3000:]}\n{err[-2000:]}"
            break
        kill_tree(proc)
        state = read_checkpoint(job["checkpoint"])
        kills.append((state["delivered_total"], len(state["pending"]["messages"]) if state["pending"] else 0))
        in_flight += bool(state["pending"])
        if len(kills) >= 3 and in_flight:
            break
    # (delivered and checkpointed, messages of the batch in flight) at each kill
    print(f"kills: {kills}")
    assert len(kills) >= 2, "the producer finished before it could be killed: raise the number of points"
    assert in_flight, f"no kill landed while a batch was in flight ({kills}): rerun or raise the number of points"
    assert read_checkpoint(job["checkpoint"])["delivered_total"] < 2000

    resumed = run_module("influx_to_kafka", args)
    assert not resumed.get("failed"), resumed.get("msg")
    assert resumed["checkpoint"]["delivered_total"] == 2000
    print(f"resumed: already delivered {resumed['already_delivered']}, resent {resumed['recovered']}, "
          f"then {resumed['messages'] - resumed['recovered']} new")
    assert resumed["already_delivered"] + resumed["recovered"] == kills[-1][1]
    records = read_topic(kafka_server, job["name"])
    assert len(records) == 2000
    assert_exactly_once(records, written, job["name"])


def test_bad_input_fails_clearly_and_changes_nothing(job, kafka_server, influxdb_server, producer):
    write_points(influxdb_server, job["name"], T0, 2)
    cases = [
        (dict(sasl_password="wrong-password"), "authentication failed"),
        (dict(bootstrap_servers=["127.0.0.1:1"], connect_timeout=3), "cannot reach the Kafka cluster"),
        (dict(url="https://127.0.0.1:1"), "cannot reach InfluxDB"),
        (dict(topic="no-such-topic"), "no-such-topic"),
        (dict(token="not-a-token"), "token not accepted"),
        (dict(bucket="no-such-bucket"), "no-such-bucket"),
        (dict(start="yesterday"), "start"),
        (dict(batch_size=0), "batch_size"),
        (dict(stop_lag="ten"), "stop_lag"),
        (dict(kafka_client="librdkafka"), "kafka_client"),
    ]
    for override, text in cases:
        result = run_module("influx_to_kafka", dict(job["args"], **override))
        assert result.get("failed"), override
        assert text in result["msg"], (override, result["msg"])
        assert "wrong-password" not in str(result) and producer["password"] not in str(result)
        assert not job["checkpoint"].exists() or read_checkpoint(job["checkpoint"])["delivered_total"] == 0, override
    assert read_topic(kafka_server, job["name"]) == []


def test_producer_without_write_permission_is_denied_and_checkpoint_stays(job, kafka_server, influxdb_server):
    write_points(influxdb_server, job["name"], T0, 2)
    password = scram_user(kafka_server, "nobody")
    result = run_module("influx_to_kafka", dict(job["args"], sasl_username="nobody", sasl_password=password))
    assert result.get("failed")
    assert "authoriz" in result["msg"].lower() or "cannot be described" in result["msg"], result["msg"]
    state = read_checkpoint(job["checkpoint"])
    assert state is None or state["delivered_total"] == 0
    assert read_topic(kafka_server, job["name"]) == []


def test_a_checkpoint_of_another_topic_is_refused(job, kafka_server, influxdb_server):
    write_points(influxdb_server, job["name"], T0, 1)
    assert run_module("influx_to_kafka", job["args"])["messages"] == 4
    other = f"itk-{secrets.token_hex(4)}"
    create_topic(kafka_server, other, 1)
    result = run_module("influx_to_kafka", dict(job["args"], topic=other))
    assert result.get("failed") and "belongs to" in result["msg"]


def test_a_second_concurrent_run_is_refused(job, kafka_server, influxdb_server):
    import fcntl
    import os

    job["checkpoint"].parent.mkdir(parents=True)
    fd = os.open(str(job["checkpoint"]) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = run_module("influx_to_kafka", job["args"])
    finally:
        os.close(fd)
    assert result.get("failed") and "another run" in result["msg"]
