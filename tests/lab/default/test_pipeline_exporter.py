"""The pipeline exporter on the producer host (role pipeline, issue 17.2): a sandboxed service of its own user, its
secrets in a 0640 file, serving over HTTPS what Prometheus scrapes as job pipeline: every source read (Kafka as the
consumer principal, InfluxDB with the producer's read-only token, the live producer's status file), the producer's lag
behind InfluxDB (small: the live producer keeps up), each TLS endpoint's certificate expiry, and, once the consumer
group has committed, its lag per partition: the group's committed offsets are Kafka's own (read with the admin client)
and the lag is the partition's end minus them."""
from __future__ import annotations

import tempfile
import time

import pytest
from fixtures import metrics_endpoint
from fixtures.metrics_endpoint import labels

testinfra_hosts = ["ansible://pipeline"]



@pytest.fixture(scope="module")
def exporter(host, inventory_vars):
    name = host.backend.get_hostname()
    facts = inventory_vars(name, "pipeline_exporter_enabled", "pipeline_exporter_port", "isobar_address", "kafka_ca_file",
                           "kafka_consumer_group", "kafka_weather_topic", "kafka_bootstrap_servers", "kafka_admin_user",
                           "kafka_scram_passwords", "groups")
    if not facts["pipeline_exporter_enabled"]:
        pytest.skip("pipeline_exporter_enabled is false in this inventory (the exporter is an inventory choice)")
    facts["url"] = f"https://{facts['isobar_address']}:{facts['pipeline_exporter_port']}/metrics"
    return facts


def scrape(host, exporter):
    return metrics_endpoint.scrape(host, exporter["url"], exporter["kafka_ca_file"])


def test_service_runs_sandboxed_as_its_own_user_with_its_secrets_0640(host, exporter):
    service = host.service("isobar-pipeline-exporter")
    assert service.is_running and service.is_enabled
    config = host.file("/etc/isobar/pipeline-exporter.json")
    assert (config.user, config.group, config.mode) == ("root", "isobar-exporter", 0o640)
    unit = host.file("/etc/systemd/system/isobar-pipeline-exporter.service").content_string
    assert "User=isobar-exporter" in unit and "ProtectSystem=strict" in unit and "CapabilityBoundingSet=\n" in unit
    # It reads the producer's 0644 status file by name; the checkpoint directory cannot be listed, the checkpoint read.
    state = host.file("/var/lib/isobar/producer")
    assert state.mode == 0o711
    assert host.file("/var/lib/isobar/producer/weather.checkpoint.json").mode == 0o600
    assert host.run("runuser -u isobar-exporter -- cat /var/lib/isobar/producer/weather.checkpoint.json").rc != 0
    assert host.run("runuser -u isobar-exporter -- cat /var/lib/isobar/producer/status.json").rc == 0


def test_every_source_is_read_and_the_producer_keeps_up(host, exporter):
    values = scrape(host, exporter)
    up = {labels(k)["source"]: v for k, v in values.items() if k.startswith("isobar_exporter_source_up")}
    assert up.get("kafka") == 1 and up.get("influxdb") == 1 and up.get("checkpoint") == 1, up
    tls = {k: v for k, v in up.items() if k.startswith("tls:")}
    assert len(tls) == len(exporter["groups"]["kafka_brokers"]) + len(exporter["groups"]["influxdb"]) and all(
        v == 1 for v in tls.values()), tls
    lag = values.get("isobar_producer_lag_seconds")
    assert lag is not None and lag < 60, f"producer lag {lag} s (the live producer polls every 0.1 s)"
    expiry = [v for k, v in values.items() if k.startswith("isobar_tls_certificate_expiry_timestamp_seconds")]
    assert len(expiry) == len(tls) and min(expiry) > time.time() + 30 * 86400, expiry


def test_consumer_group_lag_is_the_end_minus_what_kafka_holds_as_committed(host, exporter):
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    # A consumer of the group reads and commits, as the pipeline's consumers do.
    assert host.run("weather-consumer --json").rc == 0
    group, topic = exporter["kafka_consumer_group"], exporter["kafka_weather_topic"]
    ca = host.file(exporter["kafka_ca_file"]).content_string
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as cafile:
        cafile.write(ca)
        cafile.flush()
        common = dict(bootstrap_servers=exporter["kafka_bootstrap_servers"].split(","), security_protocol="SASL_SSL",
                      sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=exporter["kafka_admin_user"],
                      sasl_plain_password=exporter["kafka_scram_passwords"][exporter["kafka_admin_user"]],
                      ssl_cafile=cafile.name, api_version=(4, 0))
        admin = KafkaAdminClient(**common)
        consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, **common)
        try:
            committed = {tp.partition: meta.offset for tp, meta in admin.list_group_offsets([group])[group].items()
                         if tp.topic == topic}
            partitions = [TopicPartition(topic, p) for p in sorted(committed)]
            ends_before = consumer.end_offsets(partitions)
            values = scrape(host, exporter)
            ends_after = consumer.end_offsets(partitions)
        finally:
            admin.close()
            consumer.close()
    assert committed, f"the group {group} committed nothing on {topic}"
    rows = {int(labels(k)["partition"]): v for k, v in values.items()
            if k.startswith("isobar_kafka_consumergroup_committed_offset") and labels(k)["group"] == group}
    lags = {int(labels(k)["partition"]): v for k, v in values.items()
            if k.startswith("isobar_kafka_consumergroup_lag{") and labels(k)["group"] == group}
    assert rows == {p: float(o) for p, o in committed.items()}, (rows, committed)
    for tp in partitions:
        # The live producer keeps writing: the end the exporter saw lies between the two reads around its scrape.
        low, high = ends_before[tp] - committed[tp.partition], ends_after[tp] - committed[tp.partition]
        assert low <= lags[tp.partition] <= high, (tp.partition, low, lags[tp.partition], high)
