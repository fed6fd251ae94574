"""roles/pipeline/files/weather_consumer.py against the real local Kafka (SASL_SSL, SCRAM, ACLs): aggregates, duplicates,
consumer-group resume, and clear errors for a wrong password or a missing permission."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fixtures.pipeline_helpers import create_topic, grant, scram_user

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "roles" / "pipeline" / "files" / "weather_consumer.py"


INSTALLED: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def installed_like_the_role(tmp_path_factory):
    """The program and the shared code the role's consumer entry point copies next to it (roles/pipeline/tasks/
    consumer.yml), in a directory of their own: it runs as on the hosts, with nothing of the repository around."""
    tasks = yaml.safe_load((ROOT / "roles" / "pipeline" / "tasks" / "consumer.yml").read_text())
    shared = next(t["loop"] for t in tasks if "module_utils" in str(t.get("isobar.pipeline.copy_file", {}).get("src", "")))
    lib = tmp_path_factory.mktemp("consumer-lib")
    shutil.copy(TOOL, lib / TOOL.name)
    for name in shared:
        shutil.copy(ROOT / "plugins" / "module_utils" / name, lib / name)
    INSTALLED[:] = [lib / TOOL.name]
    yield
    INSTALLED.clear()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def topic(kafka_server):
    """A topic with 3 stations x 4 points, one message published twice, and one non-weather message."""
    from kafka import KafkaProducer

    name = f"weather-consumer-{secrets.token_hex(3)}"
    create_topic(kafka_server, name, 4)
    producer = KafkaProducer(**kafka_server.kafka_python_config(), acks="all")
    messages = []
    for station, base in (("paris", 10.0), ("lyon", 20.0), ("lille", 5.0)):
        for i in range(4):
            t = 1_767_225_600 + 60 * i
            messages.append({"id": f"weather/{station}/{t}", "station": station, "time": f"2026-01-01T00:0{i}:00Z",
                             "fields": {"temperature": base + i, "humidity": 50.0, "pressure": 1000.0 + i,
                                        "wind_speed": 2.0}})
    messages.append(messages[0])  # a duplicate (same id)
    for message in messages:
        producer.send(name, key=message["station"].encode(), value=json.dumps(message).encode())
    producer.send(name, key=b"x", value=b"not json")
    producer.flush()
    producer.close()
    return name


@pytest.fixture(scope="module")
def consumer_user(kafka_server, topic):
    password = scram_user(kafka_server, "consumer")
    group = f"weather-consumers-{secrets.token_hex(3)}"
    grant(kafka_server, "consumer", [("TOPIC", topic, "READ"), ("TOPIC", topic, "DESCRIBE"), ("GROUP", group, "READ")])
    return {"password": password, "group": group}


def run_tool(kafka_server, topic, password, *args, group=None, user="consumer"):
    config = {"bootstrap_servers": [kafka_server.bootstrap], "username": user, "cafile": kafka_server.ca_file,
              "topic": topic}
    if group:
        config["group"] = group
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"weather-consumer-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["WEATHER_CONSUMER_PASSWORD"] = password
        return subprocess.run([sys.executable, str(INSTALLED[0]), "--config", str(path),
                               "--api-version", ".".join(kafka_server.version.split(".")[:2]), *args],
                              env=env, capture_output=True, text=True, timeout=120)
    finally:
        path.unlink()


def test_all_prints_per_station_aggregates_and_counts_the_duplicate(kafka_server, topic, consumer_user):
    proc = run_tool(kafka_server, topic, consumer_user["password"], "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["messages"] == 13 and report["duplicates"] == 1 and report["skipped"] == 1
    assert {name: s["count"] for name, s in report["stations"].items()} == {"paris": 4, "lyon": 4, "lille": 4}
    lyon = report["stations"]["lyon"]["fields"]["temperature"]
    assert lyon == {"min": 20.0, "mean": 21.5, "max": 23.0}
    assert report["stations"]["paris"]["first"] == "2026-01-01T00:00:00Z"

    table = run_tool(kafka_server, topic, consumer_user["password"], "--all", "--station", "lille")
    assert table.returncode == 0, table.stderr
    assert "lille" in table.stdout and "paris" not in table.stdout and "5.00/    6.50/    8.00" in table.stdout


def test_group_mode_resumes_after_the_committed_offsets(kafka_server, topic, consumer_user):
    first = run_tool(kafka_server, topic, consumer_user["password"], "--json", group=consumer_user["group"])
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["messages"] == 13
    second = run_tool(kafka_server, topic, consumer_user["password"], "--json", group=consumer_user["group"])
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["messages"] == 0


def test_wrong_password_and_missing_acl_fail_clearly(kafka_server, topic, consumer_user):
    wrong = run_tool(kafka_server, topic, "not-the-password", "--all")
    assert wrong.returncode != 0 and "SaslAuthenticationFailedError" in wrong.stderr, wrong.stderr[-500:]
    assert "not-the-password" not in wrong.stderr + wrong.stdout
    stranger = scram_user(kafka_server, "stranger")
    denied = run_tool(kafka_server, topic, stranger, "--all", user="stranger")
    assert denied.returncode != 0
    assert "may not read" in denied.stderr or "Authorization" in denied.stderr, denied.stderr[-500:]


def test_a_consumer_that_stops_receiving_is_reopened_and_reads_everything(kafka_server, topic, consumer_user,
                                                                          monkeypatch, capsys, tmp_path):
    """The first client the CLI opens is wedged the way kafka-python's wedges after a broker restart: it fetches
    nothing more (its partitions paused through its own API) while the topic holds 14 messages. The CLI reopens a
    client after --stall-seconds (default 20) and reads them all; before the guard it read none."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("weather_consumer_wedge", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    real, opened = tool.consumer_for, []

    def open_consumer(settings, group, args):
        consumer = real(settings, group, args)
        if not opened:  # the first client: wedged from its first poll on
            poll = consumer.poll

            def wedged_poll(*poll_args, **poll_kwargs):
                consumer.pause(*consumer.assignment())
                return poll(*poll_args, **poll_kwargs)
            consumer.poll = wedged_poll
        opened.append(consumer)
        return consumer

    monkeypatch.setattr(tool, "consumer_for", open_consumer)
    config = tmp_path / "consumer.json"
    config.write_text(json.dumps({"bootstrap_servers": [kafka_server.bootstrap], "username": "consumer",
                                  "cafile": kafka_server.ca_file, "topic": topic}))
    config.chmod(0o600)
    monkeypatch.setenv("WEATHER_CONSUMER_PASSWORD", consumer_user["password"])
    started = time.monotonic()
    # --follow with --idle 25: without the guard the wedged client sits out the idle time and ends with nothing
    assert tool.main(["--config", str(config), "--all", "--follow", "--idle", "25", "--json",
                      "--api-version", ".".join(kafka_server.version.split(".")[:2])]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["messages"] == 13 and report["skipped"] == 1, (report, out.err[-2000:])
    assert report["reopened"] == 1 and len(opened) == 2 and "reopening the consumer" in out.err, out.err[-2000:]
    assert time.monotonic() - started < 90
