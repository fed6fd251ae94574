"""roles/pipeline/files/pipeline_exporter.py's pure parts: lag arithmetic, the producer's lag from its checkpoint, settings checks,
certificate expiry (no server; the exporter against real Kafka/InfluxDB is in tests/integration/pipeline)."""
from __future__ import annotations

import datetime
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000_000_000


@pytest.fixture(scope="module")
def exporter():
    spec = importlib.util.spec_from_file_location("pipeline_exporter", ROOT / "roles" / "pipeline" / "files" / "pipeline_exporter.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_group_lag_is_end_minus_committed_like_kafka_consumer_groups(exporter):
    committed = {("g", "weather", 0): 10, ("g", "weather", 1): -1, ("g", "weather", 2): 50, ("h", "other", 0): 3}
    ends = {("weather", 0): 25, ("weather", 1): 7, ("weather", 2): 40}
    rows = exporter.group_lags(committed, ends)
    # no commit yet (-1): no lag (the tool prints "-"); committed beyond the end: negative, as the tool reports;
    # a partition whose end offset was not read: left out
    assert rows == [("g", "weather", 0, 10, 25, 15), ("g", "weather", 2, 50, 40, -10)]


def test_producer_lag_is_data_time_not_yet_published(exporter):
    state = {"cursor": {"time_ns": T0 + 9 * 10**9, "key": "paris"}, "pending": None}
    assert exporter.producer_lag(state, T0 + 29 * 10**9) == (T0 / 1e9 + 9, T0 / 1e9 + 29, 20.0, 0)
    caught_up = exporter.producer_lag(state, T0 + 9 * 10**9)
    assert caught_up[2] == 0.0
    in_flight = exporter.producer_lag(dict(state, pending={"messages": []}), T0 + 9 * 10**9)
    assert in_flight[3] == 1
    # empty measurement: nothing to publish
    assert exporter.producer_lag(state, None)[2] == 0.0
    # no checkpoint yet: no lag is made up
    assert exporter.producer_lag(None, T0)[2] is None
    assert exporter.producer_lag({"cursor": None}, T0)[2] is None


def test_settings_are_checked_up_front(exporter):
    assert exporter.validate_config({"tls_endpoints": ["kafka1:9092"], "tls_endpoints_cafile": "/ca.crt"}) == []
    errors = exporter.validate_config({"port": "x", "tls_key": "k", "tls_client_ca": "ca",
                                       "kafka": {"bootstrap_servers": ["k:9092"], "groups": "g"},
                                       "influxdb": {"url": "http://i:8086", "token": "t", "org": "o", "bucket": "b",
                                                    "measurement": "m"},
                                       "tls_endpoints": ["nohost"]})
    text = "; ".join(errors)
    for expected in ("port must be", "tls_cert and tls_key go together", "tls_client_ca needs", "kafka.username",
                     "kafka.password", "kafka.cafile", "kafka.groups must be a list", "influxdb.url must be https",
                     "'nohost' is not host:port", "tls_endpoints needs tls_endpoints_cafile"):
        assert expected in text, text
    assert exporter.validate_config({}) == ["nothing to export: set kafka, influxdb/producer_checkpoint or tls_endpoints"]
    assert exporter.validate_config([]) == ["the settings must be a JSON object"]


def test_certificate_not_after_from_getpeercert(exporter):
    # the shape ssl.SSLSocket.getpeercert() returns for a verified peer
    cert = {"subject": ((("organizationName", "Isobar"),), (("commonName", "kafka1"),)),
            "notAfter": "Mar  1 12:00:00 2027 GMT"}
    expected = datetime.datetime(2027, 3, 1, 12, 0, tzinfo=datetime.timezone.utc).timestamp()
    assert exporter.certificate_not_after(cert) == (expected, "kafka1")
    assert exporter.certificate_not_after({"notAfter": "Mar  1 12:00:00 2027 GMT"}) == (expected, "")


def test_rfc3339_to_ns_reads_what_the_producer_writes(exporter):
    ns = 1796402327_123456789
    import time as _time

    text = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"
    assert exporter.rfc3339_to_ns(text) == ns
    assert exporter.rfc3339_to_ns("2026-12-04T16:00:00Z") == exporter.rfc3339_to_ns("2026-12-04T16:00:00.000000000Z")
    for bad in ("2026-12-04T16:00:00", "2026-12-04T16:00:00.12a4Z", None):
        with pytest.raises((ValueError, TypeError)):
            exporter.rfc3339_to_ns(bad)


def test_the_live_producers_status_gives_the_same_lag_as_its_checkpoint(exporter, tmp_path):
    """producer_status: the status file's checkpoint summary (time, pending count) is the checkpoint the lag needs."""
    status = {"state": "running", "checkpoint": {"time": "2026-12-04T16:00:00.500000000Z", "key": "s1",
                                                 "delivered_total": 10, "pending": 0}}
    path = tmp_path / "status.json"
    path.write_text(json.dumps(status))
    state = exporter.read_status_checkpoint(str(path))
    newest = exporter.rfc3339_to_ns("2026-12-04T16:00:03.500000000Z")
    assert exporter.producer_lag(state, newest)[2:] == (3.0, 0)
    status["checkpoint"]["pending"] = 4
    assert exporter.producer_lag(exporter.checkpoint_from_status(status), newest)[3] == 1
    assert exporter.checkpoint_from_status({"state": "starting", "checkpoint": {"time": None}}) is None
    assert exporter.read_status_checkpoint(str(tmp_path / "missing.json")) is None


def test_checkpoint_and_status_are_exclusive(exporter):
    errors = exporter.validate_config({"producer_checkpoint": "/a", "producer_status": "/b",
                                       "influxdb": {"url": "https://i:8086", "token": "t", "org": "o", "bucket": "b",
                                                    "measurement": "m"}})
    assert errors == ["producer_checkpoint and producer_status are two ways to read one thing: set one"]
