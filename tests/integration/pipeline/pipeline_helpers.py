"""Helpers of the pipeline integration tests: least-privilege Kafka users, topics, reading a topic back,
InfluxDB tokens and points. Everything talks to the real servers of tests/fixtures."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.ansible_env import collection_module

ROOT = Path(__file__).resolve().parents[3]


# -- Kafka -----------------------------------------------------------------------------------------
def create_topic(kafka_server, name, partitions=4):
    from kafka.admin import NewTopic

    admin = kafka_server.admin_client()
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = admin.describe_topics([name])[0]
            if not info.get("error_code") and len(info.get("partitions") or []) == partitions:
                return
            time.sleep(0.2)
        raise AssertionError(f"topic {name} not ready")
    finally:
        admin.close()


def scram_user(kafka_server, user):
    """Create (or reset) a SCRAM-SHA-512 user without any ACL; returns its password."""
    from kafka.admin import UserScramCredentialUpsertion

    password = secrets.token_urlsafe(16)
    admin = kafka_server.admin_client()
    try:
        errors = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(user, "SCRAM-SHA-512", password)])
        assert not any(errors.values()), errors
    finally:
        admin.close()
    return password


def grant(kafka_server, user, acls):
    """Allow exactly these operations: [(resource type, literal name, operation)], like the kafka role does for
    the pipeline's principals (e.g. ("TOPIC", "weather", "WRITE"))."""
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType

    admin = kafka_server.admin_client()
    try:
        result = admin.create_acls([
            ACL(f"User:{user}", "*", ACLOperation[operation], ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType[rtype], name))
            for rtype, name, operation in acls])
        assert not result.get("failed"), result
    finally:
        admin.close()
    time.sleep(1)  # ACLs and credentials propagate through the metadata log


def read_topic(kafka_server, topic, user=None, password=None):
    """Every record of the topic, from the beginning to the current end: dicts with partition, offset, key,
    value (parsed JSON), timestamp."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_server.kafka_python_config(user, password), group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        assert partitions, f"topic {topic} has no partitions"
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=500).values():
                for rec in batch:
                    records.append({"partition": rec.partition, "offset": rec.offset,
                                    "key": rec.key.decode() if rec.key is not None else None,
                                    "value": json.loads(rec.value), "timestamp": rec.timestamp})
            assert time.monotonic() < deadline, "reading the topic back took more than 60 s"
        return records
    finally:
        consumer.close()


# -- InfluxDB --------------------------------------------------------------------------------------
def influx_token(influxdb_server, action, bucket_id=None):
    """A token with one permission on the test bucket (read or write), like the influxdb role's client tokens."""
    status, body = influxdb_server.api("POST", "/api/v2/authorizations", body={
        "orgID": influxdb_server.org_id, "description": f"test {action} {secrets.token_hex(3)}",
        "permissions": [{"action": action, "resource": {"type": "buckets", "id": bucket_id or influxdb_server.bucket_id,
                                                         "orgID": influxdb_server.org_id}}]})
    assert status == 201, body
    return body["token"]


STATIONS = ["paris", "lyon", "marseille", "lille"]


def weather_value(station, i):
    """Deterministic values so a test can compare what arrived with what was written."""
    base = STATIONS.index(station) if station in STATIONS else len(station)
    return {"temperature": round(10 + base + (i % 17) * 0.5, 2), "humidity": float(40 + (i + base) % 50),
            "pressure": round(1000 + (i % 23) * 0.25, 2), "wind_speed": round((i * 7 % 31) / 2, 2)}


def write_points(influxdb_server, measurement, start_ns, count, step_ns=10**9, stations=STATIONS):
    """``count`` timestamps from ``start_ns``, one point per station each; returns {(station, time_ns): fields}."""
    from influxdb_client import Point, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    written, points = {}, []
    for i in range(count):
        t = start_ns + i * step_ns
        for station in stations:
            fields = weather_value(station, i)
            point = Point(measurement).tag("station", station).time(t, WritePrecision.NS)
            for name, value in fields.items():
                point = point.field(name, value)
            points.append(point)
            written[(station, t)] = fields
    with influxdb_server.client() as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        for i in range(0, len(points), 5000):
            write.write(bucket=influxdb_server.bucket, org=influxdb_server.org, record=points[i:i + 5000])
    return written


# -- running the module in a process we can kill -----------------------------------------------------
def module_command(module, args):
    """A short name is one of this collection's modules (influx_to_kafka -> isobar.pipeline.influx_to_kafka)."""
    module = collection_module(module)
    return [str(Path(sys.executable).with_name("ansible")), "localhost", "-i", "localhost,", "-c", "local",
            "-m", module, "-a", json.dumps(args), "-e", json.dumps({"ansible_python_interpreter": sys.executable})]


def module_env(extra=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json")
    env.update(extra or {})
    return env


def start_module(module, args, env=None):
    """Start ansible running the module in its own process group (so SIGKILL reaches the module too)."""
    return subprocess.Popen(module_command(module, args), cwd=ROOT, env=module_env(env), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _descendants(pid):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc):
    """SIGKILL ansible and everything under it. Ansible's worker calls setsid(), so a process-group kill would
    miss the module: walk /proc instead (stop them all first so none can react to the others dying)."""
    victims = [proc.pid] + _descendants(proc.pid)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in victims[1:]):
        assert time.monotonic() < deadline, "killed processes are still running"
        time.sleep(0.05)


def _state(pid):
    try:
        return (Path(f"/proc/{pid}") / "status").read_text().split("State:", 1)[1].split("\n", 1)[0].lower()
    except (OSError, IndexError):
        return "gone"


def read_checkpoint(path):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return None


# --- fixtures of the producer's tests (the module and the service); imported by their test files -----------------

@pytest.fixture(scope="module")
def producer(kafka_server):
    """The producer's SCRAM principal."""
    return {"user": "producer", "password": scram_user(kafka_server, "producer")}


@pytest.fixture(scope="module")
def read_token(influxdb_server):
    """An InfluxDB token that reads the test bucket."""
    return influx_token(influxdb_server, "read")


@pytest.fixture
def stream(kafka_server, producer):
    """A fresh name for the measurement and its topic (4 partitions), the producer allowed to use the topic."""
    def make(prefix):
        name = f"{prefix}-{secrets.token_hex(4)}"
        create_topic(kafka_server, name, 4)
        # READ: completing an interrupted batch reads back which of its messages arrived (issue 14.4)
        grant(kafka_server, producer["user"], [("TOPIC", name, "WRITE"), ("TOPIC", name, "READ")])
        return name
    return make
