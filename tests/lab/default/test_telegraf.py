"""Telegraf on the telegraf hosts: service, user, secrets, no listening port but its metrics endpoint's (when on:
test_telegraf_metrics.py), and metrics reaching Kafka and
InfluxDB. Addresses and secrets come from the inventory through Ansible (tests/lab/conftest.py)."""
from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import pytest
from fixtures.prerequisites import require_module

testinfra_hosts = ["ansible://telegraf"]

kafka = require_module("kafka", "kafka-python is needed on the machine running the verify tests")

SECRETS = ("kafka_scram_passwords", "influxdb_client_tokens")


@pytest.fixture(scope="module")
def facts(inventory_vars, lab_host):
    groups = inventory_vars("localhost", "groups")["groups"]
    first = groups["telegraf"][0]
    values = inventory_vars(first, "kafka_bootstrap_servers", "kafka_scram_passwords", "kafka_admin_user",
                            "kafka_telegraf_topic", "kafka_telegraf_user", "kafka_ca_file", "influxdb_client_tokens",
                            "influxdb_url", "influxdb_org", "influxdb_telegraf_bucket", "influxdb_operator_token")
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(lab_host(first).file(values["kafka_ca_file"]).content_string)
    values["ca_file"] = handle.name
    values["host"] = first
    yield values
    Path(handle.name).unlink(missing_ok=True)


def test_service_is_active_and_enabled(host):
    service = host.service("telegraf")
    assert service.is_running and service.is_enabled


def test_agent_runs_as_telegraf_without_a_shell(host):
    agents = host.process.filter(comm="telegraf")
    assert agents and all(p.user == "telegraf" for p in agents)
    assert host.user("telegraf").shell in ("/usr/sbin/nologin", "/bin/false")


def test_kafka_output_watchdog_is_scheduled_and_sees_progress(host):
    timer = host.service("telegraf-watchdog.timer")
    assert timer.is_enabled and timer.is_running
    stats = host.file("/var/lib/telegraf/internal_write.json")
    assert stats.exists and '"output":"kafka"' in stats.content_string


def test_agent_listens_nowhere_but_on_its_metrics_port(host):
    # As the agent's user: root without CAP_SYS_PTRACE (a container) cannot see another user's sockets' owners, so
    # a root `ss -p` never names telegraf and an earlier "telegraf not in ss" check could not fail.
    listing = host.check_output("runuser -u telegraf -- ss -Htlnp")
    ports = {line.split()[3].rpartition(":")[2] for line in listing.splitlines() if '"telegraf"' in line}
    config = host.file("/etc/telegraf/telegraf.conf").content_string
    metrics = re.search(r'^\[\[outputs\.prometheus_client\]\]\n\s*listen = ":(\d+)"', config, re.M)
    assert ports == ({metrics.group(1)} if metrics else set()), ports


def test_environment_file_is_private(host):
    env = host.file("/etc/telegraf/telegraf.env")
    assert env.user == "root" and env.group == "telegraf" and env.mode == 0o640


def test_no_secret_in_the_config_file(host, facts):
    conf = host.file("/etc/telegraf/telegraf.conf")
    assert conf.mode == 0o640
    content = conf.content_string
    leaked = [name for name in ("kafka", "influxdb")
              if (facts["kafka_scram_passwords"][facts["kafka_telegraf_user"]] if name == "kafka"
                  else facts["influxdb_client_tokens"].get("telegraf", "\0")) in content]
    assert not leaked, f"secrets of {leaked} are written in telegraf.conf"
    assert "${KAFKA_PASSWORD}" in content and "SCRAM-SHA-512" in content


def test_no_errors_logged_in_the_last_minute(host):
    # Output errors (auth, TLS, ACL) show up at every flush; a minute covers several intervals. Only the running
    # agent's own lines: an agent stopped by an earlier test (the pending-restart test restarts it) logs its execd
    # input's closed pipe on the way out ("read |0: file already closed"), which is not an error of the running one.
    pid = host.check_output("systemctl show --property MainPID --value telegraf").strip()
    assert pid not in ("", "0"), "telegraf is not running"
    errors = host.check_output(f"journalctl _PID={pid} --since -60s --no-pager -o cat | grep ' E! ' || true")
    assert errors == "", errors[-2000:]


def test_weather_telegraf_receives_messages_within_30s(facts):
    from kafka import KafkaConsumer, TopicPartition

    admin = facts["kafka_admin_user"]
    consumer = KafkaConsumer(
        bootstrap_servers=facts["kafka_bootstrap_servers"].split(","), security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=admin,
        sasl_plain_password=facts["kafka_scram_passwords"][admin], ssl_cafile=facts["ca_file"],
        api_version=(4, 0), group_id=None, enable_auto_commit=False)
    try:
        topic = facts["kafka_telegraf_topic"]
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for tp in partitions:
            consumer.position(tp)  # fix the start: only messages written from now on count
        started = time.monotonic()
        weather = []
        while time.monotonic() - started < 30 and not weather:
            for batch in consumer.poll(timeout_ms=1000).values():
                for record in batch:
                    metric = json.loads(record.value)
                    if metric.get("name") == "weather" and metric["tags"].get("host") == facts["host"]:
                        weather.append((record.key, metric))
        assert weather, f"no weather metric from {facts['host']} on {topic} within 30 s"
        key, metric = weather[0]
        assert key.decode() == metric["tags"]["station"]
        assert {"temperature", "humidity", "pressure", "wind_speed"} <= set(metric["fields"])
        print(f"first weather metric after {time.monotonic() - started:.1f} s: {metric}")
    finally:
        consumer.close()


def test_metrics_reach_influxdb(facts):
    """The weather points and InfluxDB's own /metrics (inputs.prometheus over TLS) land in the telegraf bucket.
    Read with the operator token: the telegraf token may only write."""
    from influxdb_client import InfluxDBClient

    query = f"""
from(bucket: "{facts['influxdb_telegraf_bucket']}")
  |> range(start: -2m)
  |> filter(fn: (r) => r.host == "{facts['host']}")
  |> filter(fn: (r) => r._measurement == "weather" or r._measurement == "prometheus")
  |> group(columns: ["_measurement"])
  |> count()
"""
    with InfluxDBClient(url=facts["influxdb_url"], token=facts["influxdb_operator_token"], org=facts["influxdb_org"],
                        ssl_ca_cert=facts["ca_file"], timeout=30_000) as client:
        counts = {}
        for table in client.query_api().query(query):
            for record in table.records:
                counts[record.get_measurement()] = counts.get(record.get_measurement(), 0) + record.get_value()
    assert counts.get("weather", 0) > 0, f"no weather points from {facts['host']} in the last 2 minutes: {counts}"
    assert counts.get("prometheus", 0) > 0, f"InfluxDB's /metrics were not scraped in the last 2 minutes: {counts}"
