"""roles/pipeline/files/pipeline_exporter.py against the real local Kafka (SASL_SSL, SCRAM, ACLs) and InfluxDB 2 (HTTPS), served
over HTTPS with client certificates, scraped like Prometheus does.

- consumer-group lag per partition equals what Kafka's own ConsumerGroupCommand (kafka-consumer-groups.sh
  --describe) reports for the same group, read in the same second, and follows new messages;
- the producer's lag behind InfluxDB follows the real influx_to_kafka checkpoint (partial run, full run, new points);
- the certificate expiry of an endpoint is the notAfter of the certificate it presents;
- plain HTTP, no client certificate and a certificate of another CA are refused;
- a source that cannot be reached is reported down while the others still answer.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import run_module
from fixtures.server_process import free_port, make_pki
from fixtures.pipeline_helpers import create_topic, grant, influx_token, scram_user, write_points

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "roles" / "pipeline" / "files" / "pipeline_exporter.py"
# As on the hosts (PYTHONPATH = the live directory, laid out as the collection): its kafka_net_fix import resolves.
RUN_ENV = dict(os.environ, PYTHONPATH=str(ROOT / "collections"))
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
pytestmark = pytest.mark.slow


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def series(metrics, name, **labels):
    return {dict(k[1]).get("partition", ""): v for k, v in metrics.items()
            if k[0] == name and all(dict(k[1]).get(a) == b for a, b in labels.items())}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The exporter's certificate (server + client auth, the same CA signs Prometheus' client certificate) and a
    certificate of another CA."""
    d = tmp_path_factory.mktemp("exporter-pki")
    ca, cert, key = make_pki("Isobar exporter test CA", "isobar-test-exporter", client_auth=True)
    (d / "ca.crt").write_bytes(ca)
    (d / "exporter.crt").write_bytes(cert)
    (d / "exporter.key").write_bytes(key)
    _, other_cert, other_key = make_pki("Another CA", "intruder", client_auth=True)
    (d / "other.crt").write_bytes(other_cert)
    (d / "other.key").write_bytes(other_key)
    for f in d.iterdir():
        f.chmod(0o600)
    return d


@pytest.fixture(scope="module")
def setup(kafka_server, influxdb_server, pki, tmp_path_factory):
    """A 4-partition topic with keyed messages, a group that committed part of them, a least-privilege monitor
    principal (DESCRIBE on the group and the topic only), a measurement with points, and the exporter running."""
    from kafka import KafkaProducer

    topic, group = f"exp-{secrets.token_hex(3)}", f"exp-group-{secrets.token_hex(3)}"
    measurement = f"exp-{secrets.token_hex(3)}"
    create_topic(kafka_server, topic, 4)
    producer = KafkaProducer(**kafka_server.kafka_python_config(), acks="all")
    for i in range(200):
        producer.send(topic, key=f"station-{i % 7}".encode(), value=b"{}")
    producer.flush()
    producer.close()
    password = scram_user(kafka_server, "monitor")
    grant(kafka_server, "monitor", [("GROUP", group, "DESCRIBE"), ("TOPIC", topic, "DESCRIBE")])
    write_points(influxdb_server, measurement, T0, 30)  # 4 stations x 30 s
    work = tmp_path_factory.mktemp("exporter")
    checkpoint = work / "producer" / "checkpoint.json"
    port = free_port()
    config = {
        "listen_address": "127.0.0.1", "port": port,
        "tls_cert": str(pki / "exporter.crt"), "tls_key": str(pki / "exporter.key"),
        "tls_client_ca": str(pki / "ca.crt"),
        "kafka": {"bootstrap_servers": [kafka_server.bootstrap], "username": "monitor", "password": password,
                  "cafile": kafka_server.ca_file, "groups": [group]},
        "influxdb": {"url": influxdb_server.url, "token": influx_token(influxdb_server, "read"),
                     "org": influxdb_server.org, "bucket": influxdb_server.bucket, "measurement": measurement,
                     "cafile": influxdb_server.ca_path},
        "producer_checkpoint": str(checkpoint),
        "tls_endpoints": [kafka_server.bootstrap], "tls_endpoints_cafile": kafka_server.ca_file,
    }
    config_file = work / "exporter.json"
    config_file.write_text(json.dumps(config))
    config_file.chmod(0o600)
    log = open(work / "exporter.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, str(TOOL), "--config", str(config_file)], stdout=log,
                            stderr=subprocess.STDOUT, env=RUN_ENV)
    url = f"https://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core machine starts Python slowly
        while True:  # listening? (a first scrape reads Kafka and InfluxDB: not a readiness probe)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, (work / "exporter.log").read_text()
                assert time.monotonic() < deadline, "the exporter did not listen within 120 s"
                time.sleep(0.3)
        yield {"topic": topic, "group": group, "measurement": measurement, "url": url, "config": config,
               "checkpoint": checkpoint, "work": work}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def scrape(setup, pki):
    answer = requests.get(setup["url"], verify=str(pki / "ca.crt"), timeout=60,
                          cert=(str(pki / "exporter.crt"), str(pki / "exporter.key")))
    answer.raise_for_status()
    return parse_metrics(answer.text)


def consumer_groups_describe(kafka_server, group, tmp_path):
    """LAG per partition as Kafka's own ConsumerGroupCommand prints it (what kafka-consumer-groups.sh runs)."""
    props = tmp_path / "admin.properties"
    props.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{kafka_server.admin_user}" password="{kafka_server.admin_password}";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={kafka_server.ca_file}\n")
    props.chmod(0o600)
    proc = subprocess.Popen(
        ["java", "-Xmx256m", f"-Dlog4j2.configurationFile={kafka_server.home}/config/tools-log4j2.yaml", "-cp",
         f"{kafka_server.home}/libs/*", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
         "--bootstrap-server", kafka_server.bootstrap, "--command-config", str(props), "--describe", "--group", group,
         "--timeout", "60000"],  # its 5 s default is too short on a loaded 2-core machine
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, answered_at = [], None
    for line in proc.stdout:  # it prints its table right after reading the offsets: note when
        if line.strip() and answered_at is None:
            answered_at = time.time()
        lines.append(line)
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, stderr[-2000:]
    out = subprocess.CompletedProcess(proc.args, 0, "".join(lines), stderr)
    lags = {}
    for line in out.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[0] == group and cols[2].isdigit():
            lags[cols[2]] = {"current": int(cols[3]), "end": int(cols[4]), "lag": int(cols[5])}
    assert lags, out.stdout
    return lags, answered_at


def commit(kafka_server, topic, group, offsets):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(**kafka_server.kafka_python_config(), group_id=group, enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
    finally:
        consumer.close()


def test_consumer_lag_equals_kafka_consumer_groups_in_the_same_second(setup, pki, kafka_server, tmp_path):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    probe = KafkaConsumer(**kafka_server.kafka_python_config(), group_id=None)
    ends = {tp.partition: o for tp, o in probe.end_offsets([TopicPartition(setup["topic"], p) for p in range(4)]).items()}
    probe.close()
    wanted = {p: end // 3 for p, end in ends.items()}  # the group read a third of each partition
    commit(kafka_server, setup["topic"], setup["group"], wanted)
    results = {}

    def tool():
        try:
            results["tool"], results["answered_at"] = consumer_groups_describe(kafka_server, setup["group"], tmp_path)
        except BaseException as exc:  # noqa: BLE001 - shown by the test below
            results["error"] = exc

    # The tool reads the offsets at the end of its run (its JVM start takes seconds here), then prints: scrape
    # back to back all along, and compare with the scrapes that were reading within a second of its answer.
    thread = threading.Thread(target=tool)
    thread.start()
    scrapes = []
    while thread.is_alive() or not scrapes:
        started = time.time()
        metrics = scrape(setup, pki)
        scrapes.append((started, time.time(), metrics))
        time.sleep(0.1)
    thread.join()
    if "error" in results:
        raise results["error"]
    tool_lags, answered = results["tool"], results["answered_at"]
    near = [(start, end, m) for start, end, m in scrapes if start - 1 <= answered <= end + 1]
    assert near, f"no scrape within 1 s of the tool's answer: {[(s - answered, e - answered) for s, e, _ in scrapes]}"
    for _, _, metrics in near:
        lag = series(metrics, "isobar_kafka_consumergroup_lag", group=setup["group"], topic=setup["topic"])
        assert lag == {p: float(v["lag"]) for p, v in tool_lags.items()}, (lag, tool_lags)
    committed = series(metrics, "isobar_kafka_consumergroup_committed_offset", group=setup["group"])
    end = series(metrics, "isobar_kafka_partition_end_offset", topic=setup["topic"])
    assert committed == {str(p): float(o) for p, o in wanted.items()}
    assert end == {p: float(v["end"]) for p, v in tool_lags.items()}
    assert sum(end.values()) == 200 and sum(lag.values()) == 200 - sum(wanted.values())
    print(f"lag per partition {lag} == ConsumerGroupCommand's; {len(near)} scrape(s) read within 1 s of its answer "
          f"(offsets {[(round(s - answered, 2), round(e - answered, 2)) for s, e, _ in near]} s)")

    producer = KafkaProducer(**kafka_server.kafka_python_config(), acks="all")
    for i in range(40):
        producer.send(setup["topic"], key=f"station-{i % 7}".encode(), value=b"{}")
    producer.flush()
    producer.close()
    after = series(scrape(setup, pki), "isobar_kafka_consumergroup_lag", group=setup["group"])
    assert sum(after.values()) == sum(lag.values()) + 40
    assert all(after[p] >= lag[p] for p in lag)


def test_producer_lag_follows_the_influx_to_kafka_checkpoint(setup, pki, kafka_server, influxdb_server):
    producer_args = {
        "url": influxdb_server.url, "token": setup["config"]["influxdb"]["token"], "org": influxdb_server.org,
        "ca_path": influxdb_server.ca_path, "bucket": influxdb_server.bucket, "measurement": setup["measurement"],
        "key_tag": "station", "topic": setup["topic"] + "-p", "checkpoint_path": str(setup["checkpoint"]),
        "batch_size": 20, "bootstrap_servers": [kafka_server.bootstrap], "sasl_username": kafka_server.admin_user,
        "sasl_password": kafka_server.admin_password, "ssl_cafile": kafka_server.ca_file,
        "api_version": ".".join(kafka_server.version.split(".")[:2]),
    }
    create_topic(kafka_server, producer_args["topic"], 2)
    before = scrape(setup, pki)
    assert before[("isobar_exporter_source_up", frozenset({("source", "influxdb")}))] == 1
    assert before[("isobar_producer_newest_point_timestamp_seconds", frozenset())] == (T0 + 29 * 10**9) / 1e9
    assert ("isobar_producer_lag_seconds", frozenset()) not in before, "no checkpoint yet: no lag is made up"

    partial = run_module("influx_to_kafka", dict(producer_args, max_messages=40))  # 4 stations x the first 10 s
    assert not partial.get("failed"), partial.get("msg")
    metrics = scrape(setup, pki)
    assert metrics[("isobar_producer_checkpoint_timestamp_seconds", frozenset())] == (T0 + 9 * 10**9) / 1e9
    assert metrics[("isobar_producer_lag_seconds", frozenset())] == 20.0
    assert metrics[("isobar_producer_batch_in_flight", frozenset())] == 0

    full = run_module("influx_to_kafka", producer_args)
    assert not full.get("failed") and full["messages"] == 80, full.get("msg")
    assert scrape(setup, pki)[("isobar_producer_lag_seconds", frozenset())] == 0.0

    write_points(influxdb_server, setup["measurement"], T0 + 30 * 10**9, 15)
    assert scrape(setup, pki)[("isobar_producer_lag_seconds", frozenset())] == 15.0


def test_certificate_expiry_is_what_the_endpoint_presents(setup, pki, kafka_server):
    from cryptography import x509

    keystore = (Path(kafka_server.ca_file).parent / "keystore.pem").read_bytes()
    node_cert = x509.load_pem_x509_certificates(keystore)[0]
    metrics = scrape(setup, pki)
    expiry = {dict(k[1])["subject"]: v for k, v in metrics.items()
              if k[0] == "isobar_tls_certificate_expiry_timestamp_seconds"}
    assert expiry == {node_cert.subject.rfc4514_string().split("=", 1)[1]: node_cert.not_valid_after_utc.timestamp()}


def test_plain_http_and_unauthenticated_clients_are_refused(setup, pki):
    with pytest.raises(requests.ConnectionError):
        requests.get(setup["url"].replace("https://", "http://"), timeout=10)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(setup["url"], verify=str(pki / "ca.crt"), timeout=10)  # no client certificate
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(setup["url"], verify=str(pki / "ca.crt"), timeout=10,
                     cert=(str(pki / "other.crt"), str(pki / "other.key")))  # a certificate of another CA


def test_an_unreachable_source_is_reported_down_and_the_others_still_answer(setup, tmp_path):
    config = dict(setup["config"], port=0)
    config["kafka"] = dict(config["kafka"], bootstrap_servers=[f"127.0.0.1:{free_port()}"])  # closed port
    config["tls_endpoints"] = [f"127.0.0.1:{free_port()}"]
    path = tmp_path / "exporter.json"
    path.write_text(json.dumps(config))
    started = time.monotonic()
    out = subprocess.run([sys.executable, str(TOOL), "--config", str(path), "--once"], capture_output=True, text=True,
                         timeout=120, env=RUN_ENV)
    assert out.returncode == 0, out.stderr
    metrics = parse_metrics(out.stdout)
    up = {dict(k[1])["source"]: v for k, v in metrics.items() if k[0] == "isobar_exporter_source_up"}
    assert up == {"kafka": 0, "checkpoint": 1, "influxdb": 1, f"tls:{config['tls_endpoints'][0]}": 0}, up
    assert not any(k[0].startswith("isobar_kafka_") for k in metrics)
    assert ("isobar_producer_newest_point_timestamp_seconds", frozenset()) in metrics
    assert time.monotonic() - started < 60


def test_bad_settings_are_refused_before_anything_starts(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"port": 99999, "tls_cert": "/x.crt",
                                "influxdb": {"url": "http://127.0.0.1:1", "token": "t", "org": "o", "bucket": "b"}}))
    out = subprocess.run([sys.executable, str(TOOL), "--config", str(path)], capture_output=True, text=True, timeout=60,
                         env=RUN_ENV)
    assert out.returncode == 2
    for expected in ("port must be an integer", "tls_cert and tls_key go together", "influxdb.measurement is missing",
                     "influxdb.url must be https://"):
        assert expected in out.stderr, out.stderr
    assert re.search(r"bad settings .*bad\.json", out.stderr)
