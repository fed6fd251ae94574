"""The live pipeline on the lab (role isobar.pipeline.pipeline): isobar-inject writes simulated stations every second,
isobar-producer publishes them to Kafka continuously. New messages keep arriving over time, each point once, and a
SIGKILL of the producer mid-stream loses and doubles nothing. Where the services are off (inventory), the tests check
that neither runs.
"""
from __future__ import annotations

import collections
import json
import tempfile
import time
from pathlib import Path

import pytest
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import parse_duration
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_live import inject_stations
from fixtures.live_stream import missing_ticks
from fixtures.prerequisites import require_module

kafka = require_module("kafka", "kafka-python is needed on the machine running the verify tests")


@pytest.fixture(scope="module")
def live(inventory_vars, lab_host):
    groups = inventory_vars("localhost", "groups")["groups"]
    producer_host = groups["pipeline"][0]
    facts = inventory_vars(producer_host, "pipeline_producer_service_enabled", "pipeline_inject_service_enabled",
                           "kafka_bootstrap_servers", "kafka_scram_passwords", "kafka_consumer_user",
                           "kafka_weather_topic", "kafka_ca_file", "kafka_producer_user", "influxdb_client_tokens")
    facts["on"] = bool(facts["pipeline_producer_service_enabled"] and facts["pipeline_inject_service_enabled"])
    host = lab_host(producer_host)
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(host.file(facts["kafka_ca_file"]).content_string)
    facts.update(ca_file=handle.name, host=host)
    yield facts
    Path(handle.name).unlink(missing_ok=True)


def off_as_configured(live):
    """Where the services are off (the default outside the lab) neither runs nor starts at boot."""
    host = live["host"]
    for name in ("isobar-producer", "isobar-inject"):
        # is-enabled exits 4 (not-found) where the role never installed the unit: that is "off" too
        enabled = host.run("systemctl is-enabled %s", name)
        assert enabled.stdout.strip() in ("disabled", "masked", "not-found", ""), f"{name} starts at boot: {enabled.stdout}"
        active = host.run("systemctl is-active %s", name)
        assert active.stdout.strip() in ("inactive", "failed", "unknown"), f"{name} runs although it is off: {active.stdout}"


def consumer(live):
    from kafka import KafkaConsumer

    user = live["kafka_consumer_user"]
    return KafkaConsumer(
        bootstrap_servers=live["kafka_bootstrap_servers"].split(","), security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user, sasl_plain_password=live["kafka_scram_passwords"][user],
        ssl_cafile=live["ca_file"], api_version=(4, 0), group_id=None, enable_auto_commit=False)


def end_offsets(live):
    from kafka import TopicPartition

    client = consumer(live)
    try:
        topic = live["kafka_weather_topic"]
        tps = [TopicPartition(topic, p) for p in sorted(client.partitions_for_topic(topic))]
        return {tp.partition: offset for tp, offset in client.end_offsets(tps).items()}
    finally:
        client.close()


def read_since(live, offsets, timeout=120):
    """The messages of the weather topic after ``offsets`` up to the current end: [(partition, key, value)]."""
    from kafka import TopicPartition

    client = consumer(live)
    try:
        topic = live["kafka_weather_topic"]
        tps = [TopicPartition(topic, p) for p in sorted(offsets)]
        client.assign(tps)
        for tp in tps:
            client.seek(tp, offsets[tp.partition])
        ends = client.end_offsets(tps)
        records, deadline = [], time.monotonic() + timeout
        while any(client.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "reading the weather topic took too long"
            for batch in client.poll(timeout_ms=1000).values():
                records.extend((r.partition, r.key.decode(), json.loads(r.value), r.timestamp) for r in batch)
        return records
    finally:
        client.close()


def status(live):
    with live["host"].sudo():
        return json.loads(live["host"].file("/var/lib/isobar/producer/status.json").content_string)


def test_services_run_as_their_own_users_with_private_settings(live):
    if not live["on"]:
        return off_as_configured(live)
    host = live["host"]
    for name, user in (("isobar-producer", "isobar-producer"), ("isobar-inject", "isobar-inject")):
        service = host.service(name)
        assert service.is_running and service.is_enabled, name
        with host.sudo():
            settings = host.file(f"/etc/isobar/{name.split('-')[1]}.json")
            assert settings.user == "root" and settings.group == user and settings.mode == 0o640
            main_pid = host.check_output(f"systemctl show --property MainPID --value {name}")
            assert host.check_output(f"ps -o user= -p {main_pid}").strip() == user
            command = host.check_output(f"cat /proc/{main_pid}/cmdline | tr '\\0' ' '")
        assert live["kafka_scram_passwords"][live["kafka_producer_user"]] not in command
        assert live["influxdb_client_tokens"]["producer"] not in command
    assert status(live)["state"] == "running"


def test_new_messages_keep_arriving_each_point_once(live):
    if not live["on"]:
        return off_as_configured(live)
    before = end_offsets(live)
    time.sleep(15)
    records = read_since(live, before)
    now_ms = time.time() * 1000
    stations = {value["station"] for _, _, value, _ in records}
    ticks = {value["time_ns"] for _, _, value, _ in records}
    print(f"{len(records)} new messages in 15 s from {len(stations)} stations over {len(ticks)} ticks")
    assert len(ticks) >= 10, f"only {len(ticks)} ticks arrived in 15 s: the live pipeline does not flow"
    ids = collections.Counter(value["id"] for _, _, value, _ in records)
    assert not [i for i, n in ids.items() if n > 1], "a point arrived twice"
    # delay from the point's time (the inject service writes at that time) to the broker's record timestamp
    delays = sorted(ts - value["time_ns"] / 1e6 for _, _, value, ts in records)
    p50, p99 = delays[len(delays) // 2] / 1000, delays[int(len(delays) * 0.99)] / 1000
    print(f"point time -> Kafka: p50 {p50:.3f} s, p99 {p99:.3f} s")
    assert p99 < 5, f"p99 {p99:.3f} s"
    assert now_ms - max(value["time_ns"] / 1e6 for _, _, value, _ in records) < 10_000
    state = status(live)
    assert state["state"] == "running" and state["lag_seconds"] < 5, state


def test_sigkill_mid_stream_loses_and_doubles_nothing(live):
    if not live["on"]:
        return off_as_configured(live)
    host = live["host"]
    before = end_offsets(live)
    time.sleep(3)
    with host.sudo():
        host.check_output("systemctl kill --signal=KILL isobar-producer")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # Restart=on-failure brings it back
        time.sleep(1)
        with host.sudo():
            if host.service("isobar-producer").is_running and status(live).get("state") == "running":
                break
    else:
        raise AssertionError(f"isobar-producer did not come back after SIGKILL: {status(live)}")
    time.sleep(8)
    records = read_since(live, before)
    ids = collections.Counter(value["id"] for _, _, value, _ in records)
    assert not [i for i, n in ids.items() if n > 1], "a point arrived twice across the SIGKILL"
    # no gap: every station of the inject service has every tick between the first and the last complete one
    with host.sudo():
        settings = json.loads(host.file("/etc/isobar/inject.json").content_string)
    step = parse_duration(settings["interval"], "interval")
    gaps = missing_ticks((value for _, _, value, _ in records), set(inject_stations(settings)), step)
    assert not gaps, f"ticks missing across the SIGKILL: {gaps}"
    ticks = {value["time_ns"] for _, _, value, _ in records}
    print(f"{len(records)} messages across the SIGKILL, distinct {len(ids)}, ticks {len(ticks)}")
