"""The live producer (isobar-producer.service's program, pipeline_live producer) against a real InfluxDB 2 and a
real Kafka (TLS + SCRAM + ACLs): it delivers points as they are written, exactly once across SIGKILL and
restarts, says what it does in its status file, and holds its checkpoint so a one-shot module run is refused.

The program runs exactly as systemd starts it on the producer host: its own process, settings and secrets in a
0600 JSON file, the collection's module_utils on PYTHONPATH.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_module
from fixtures.pipeline_helpers import (  # noqa: F401 - producer, read_token and stream are fixtures
    ROOT, producer, read_checkpoint, read_token, read_topic, stream, write_points)
from test_influx_to_kafka import assert_exactly_once

pytestmark = pytest.mark.slow
LIVE = "ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_live"


@pytest.fixture
def service(kafka_server, influxdb_server, producer, read_token, tmp_path, stream):
    """A fresh measurement and topic, the settings file of a producer service on them, and a starter."""
    name = stream("live")
    settings = {
        "url": influxdb_server.url, "token": read_token, "org": influxdb_server.org, "ca_path": influxdb_server.ca_path,
        "bucket": influxdb_server.bucket, "measurement": name, "key_tag": "station", "topic": name,
        "checkpoint_path": str(tmp_path / "state" / "checkpoint.json"), "status_path": str(tmp_path / "status.json"),
        # InfluxDB stores each field of a point as its own series and a reader may see a write half done: the
        # producer only reads points older than stop_lag, which must exceed the writer's delay (point time -> stored).
        "batch_size": 100, "poll_interval": 0.1, "max_backoff": 2, "stop_lag": "500ms",
        "bootstrap_servers": [kafka_server.bootstrap], "sasl_username": producer["user"],
        "sasl_password": producer["password"], "ssl_cafile": kafka_server.ca_file,
        "api_version": ".".join(kafka_server.version.split(".")[:2]),
    }
    procs = []

    class Service:
        def __init__(self):
            self.name, self.settings, self.tmp = name, settings, tmp_path
            self.checkpoint = Path(settings["checkpoint_path"])
            self.status_path = Path(settings["status_path"])

        def start(self, **override):
            config = tmp_path / "producer.json"
            config.write_text(json.dumps(dict(settings, **override)))
            config.chmod(0o600)
            env = dict(os.environ, PYTHONPATH=str(ROOT / "collections"))
            proc = subprocess.Popen([sys.executable, "-m", LIVE, "producer", "--config", str(config)], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(proc)
            return proc

        def status(self):
            try:
                return json.loads(self.status_path.read_text())
            except (FileNotFoundError, ValueError):
                return {}

        def module_args(self):
            args = {k: v for k, v in settings.items() if k not in ("status_path", "poll_interval", "max_backoff")}
            return args

    yield Service()
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def delivered(service):
    state = read_checkpoint(service.checkpoint)
    return state["delivered_total"] if state else 0


def test_service_delivers_new_points_as_they_are_written_and_holds_its_checkpoint(service, kafka_server, influxdb_server):
    proc = service.start()
    wait_for(lambda: service.status().get("state") == "running", 60, "the service to run")
    written = {}
    latencies = []
    for round_no in range(5):  # new points keep arriving: each round is delivered without anyone running Ansible
        t0 = time.time_ns() - 2 * 10**8  # a live writer: points stamped about when they are written
        written.update(write_points(influxdb_server, service.name, t0, 3, step_ns=5 * 10**7))  # 4 stations x 3
        wrote = time.monotonic()
        wait_for(lambda: delivered(service) == len(written), 30, f"round {round_no} to be delivered")
        latencies.append(time.monotonic() - wrote)
        time.sleep(0.3)
    print(f"write -> checkpointed delivery, per round (s): {[round(x, 3) for x in latencies]}")
    assert max(latencies) < 5, latencies
    assert_exactly_once(read_topic(kafka_server, service.name), written, service.name)

    status = service.status()
    assert status["service"] == "isobar-producer" and status["pid"] == proc.pid
    assert status["checkpoint"]["delivered_total"] == len(written) and status["checkpoint"]["pending"] == 0
    assert status["messages_since_start"] == len(written) and status["lag_seconds"] < 5 and status["last_error"] is None

    # A one-shot run on the service's checkpoint is refused, says who holds it, and sends nothing.
    refused = run_module("influx_to_kafka", service.module_args())
    assert refused.get("failed"), refused
    assert "isobar-producer service" in refused["msg"] and "systemctl stop isobar-producer" in refused["msg"], refused["msg"]
    assert "Nothing was sent" in refused["msg"]
    assert len(read_topic(kafka_server, service.name)) == len(written)

    # systemctl stop (SIGTERM): a clean stop, then the module may run on the checkpoint and finds nothing new.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.communicate()[0]
    assert service.status()["state"] == "stopped"
    after = run_module("influx_to_kafka", service.module_args())
    assert not after.get("failed") and after["changed"] is False, after


def test_sigkill_mid_stream_then_restart_delivers_each_point_once(service, kafka_server, influxdb_server):
    # A backlog in batches of 100 so that kills land while a batch is in flight, then live points on top.
    written = write_points(influxdb_server, service.name, time.time_ns() - 3600 * 10**9, 600, step_ns=10**9)
    kills = []
    for _ in range(6):
        proc = service.start()
        start = delivered(service)
        state = wait_for(lambda: (lambda s: s if s and s["pending"] and s["delivered_total"] > start else None)(
            read_checkpoint(service.checkpoint)) or (delivered(service) == len(written) and {"done": 1}), 60,
            "a batch in flight")
        if "done" in state:
            break
        os.kill(proc.pid, signal.SIGKILL)  # systemctl kill -s KILL isobar-producer
        proc.communicate(timeout=30)
        state = read_checkpoint(service.checkpoint)
        kills.append((state["delivered_total"], len(state["pending"]["messages"]) if state["pending"] else 0))
        if len(kills) >= 3 and any(k[1] for k in kills):
            break
    print(f"kills (checkpointed, in flight): {kills}")
    assert len(kills) >= 2 and any(k[1] for k in kills), f"no kill landed mid-batch: {kills}"

    proc = service.start()
    more = write_points(influxdb_server, service.name, time.time_ns() - 2 * 10**8, 5, step_ns=5 * 10**7)
    written.update(more)
    wait_for(lambda: delivered(service) == len(written), 120, "everything to be delivered after the restart")
    records = read_topic(kafka_server, service.name)
    assert len(records) == len(written)
    assert_exactly_once(records, written, service.name)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def other_ca_pem():
    """A CA certificate the brokers' certificates do not chain to."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "isobar test: another CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def replace_file(path, data):
    """Like the CA renewal's copy: a new file moved over the old one."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_a_replaced_ca_file_is_read_again_between_polls(service, kafka_server, influxdb_server):
    """librdkafka loads its CA file when the producer is created: the service reopens its clients when the file
    changes. Replaced by a CA the brokers do not chain to, the next poll fails on TLS (so the file was read again);
    replaced by the right one again, it goes on, every point once."""
    ca_copy = service.tmp / "ca-copy.crt"
    right_ca = Path(kafka_server.ca_file).read_bytes()
    ca_copy.write_bytes(right_ca)
    proc = service.start(ssl_cafile=str(ca_copy))
    written = write_points(influxdb_server, service.name, time.time_ns() - 2 * 10**8, 3, step_ns=5 * 10**7)
    wait_for(lambda: delivered(service) == len(written), 60, "the first points")

    replace_file(ca_copy, other_ca_pem())
    status = wait_for(lambda: (lambda s: s if s.get("last_error") else None)(service.status()), 60, "a TLS error")
    assert "TLS verification" in status["last_error"] or "certificate" in status["last_error"], status
    more = write_points(influxdb_server, service.name, time.time_ns() - 2 * 10**8, 3, step_ns=5 * 10**7)
    written.update(more)
    replace_file(ca_copy, right_ca)
    wait_for(lambda: delivered(service) == len(written), 90, "the points written while the CA was wrong")
    assert_exactly_once(read_topic(kafka_server, service.name), written, service.name)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0 and output.count("the CA file changed") == 2, output[-3000:]


def test_an_unreachable_influxdb_is_reported_in_the_status_and_retried(service, kafka_server, influxdb_server):
    proc = service.start(url="https://127.0.0.1:1")
    status = wait_for(lambda: (lambda s: s if s.get("last_error") else None)(service.status()), 60, "an error")
    assert status["state"] == "error" and "cannot reach InfluxDB" in status["last_error"], status
    assert proc.poll() is None, "the service gave up instead of retrying"
    wait_for(lambda: service.status().get("errors", 0) >= 2, 30, "a retry")
    assert service.settings["sasl_password"] not in service.status_path.read_text()
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0 and "cannot reach InfluxDB" in output
    assert service.settings["sasl_password"] not in output and service.settings["token"] not in output


@pytest.mark.parametrize("override, mode, text", [
    (dict(poll_interval=0), 0o600, "poll_interval must be between"),
    (dict(poll_interval="fast"), 0o600, "poll_interval must be float"),
    (dict(batch_size=0), 0o600, "batch_size"),
    (dict(stop_lag="ten"), 0o600, "stop_lag"),
    (dict(topic=None), 0o600, "topic is required"),
    ({}, 0o644, "make it 0600 or 0640"),
])
def test_bad_settings_stop_the_service_with_a_clear_error_and_send_nothing(service, kafka_server, override, mode, text):
    config = service.tmp / "bad.json"
    config.write_text(json.dumps({k: v for k, v in dict(service.settings, **override).items() if v is not None}))
    config.chmod(mode)
    proc = subprocess.run([sys.executable, "-m", LIVE, "producer", "--config", str(config)], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT / "collections")))
    assert proc.returncode == 2, proc.stderr
    assert text in proc.stderr and "Nothing was sent" in proc.stderr, proc.stderr
    assert service.settings["sasl_password"] not in proc.stderr
    assert not service.checkpoint.exists()
    assert read_topic(kafka_server, service.name) == []
