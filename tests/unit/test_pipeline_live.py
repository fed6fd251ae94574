"""The live services' settings checks, status file and the checkpoint lock's holder (no server)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from ansible_collections.isobar.pipeline.plugins.module_utils import pipeline_checkpoint as cp
from ansible_collections.isobar.pipeline.plugins.module_utils import pipeline_live as live

PRODUCER = {"url": "https://influxdb1:8086", "token": "t0ken", "org": "isobar", "bucket": "weather", "topic": "weather",
            "checkpoint_path": "/var/lib/isobar/producer/weather.checkpoint.json", "status_path": "/tmp/s.json",
            "bootstrap_servers": ["kafka1:9093"], "sasl_username": "producer", "sasl_password": "pw-Zq81x",
            "ssl_cafile": "/etc/isobar/pki/ca.crt"}


def write(tmp_path, data, mode=0o600):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data))
    path.chmod(mode)
    return str(path)


def test_settings_get_defaults_and_types(tmp_path):
    settings = live.load_settings(write(tmp_path, dict(PRODUCER, poll_interval=1)), live.PRODUCER_SETTINGS)
    assert settings["poll_interval"] == 1.0 and settings["batch_size"] == 5000 and settings["stop_lag"] == "250ms"
    assert settings["kafka_client"] == "confluent-kafka"
    assert live.check_producer_settings(settings) == []


@pytest.mark.parametrize("change, mode, text", [
    (dict(poll_interval=0), 0o600, "poll_interval must be between 0.05 and 60.0"),
    (dict(poll_interval=3600), 0o600, "poll_interval must be between"),
    (dict(max_backoff=0), 0o600, "max_backoff"),
    (dict(compression="zstd"), 0o600, "compression"),
    (dict(kafka_client="librdkafka"), 0o600, "kafka_client must be one of confluent-kafka, kafka-python"),
])
def test_producer_service_checks(tmp_path, change, mode, text):
    settings = live.load_settings(write(tmp_path, dict(PRODUCER, **change), mode), live.PRODUCER_SETTINGS)
    assert any(text in problem for problem in live.check_producer_settings(settings))


@pytest.mark.parametrize("data, mode, text", [
    (dict(PRODUCER, poll_interval="fast"), 0o600, "poll_interval must be float"),
    (dict(PRODUCER, batch_size=True), 0o600, "batch_size must be int"),
    ({k: v for k, v in PRODUCER.items() if k != "topic"}, 0o600, "topic is required"),
    (dict(PRODUCER, topics="weather"), 0o600, "unknown settings ['topics']"),
    (PRODUCER, 0o644, "make it 0600 or 0640"),
    (PRODUCER, 0o660, "make it 0600 or 0640"),
])
def test_bad_settings_files_are_refused_with_every_problem(tmp_path, data, mode, text):
    with pytest.raises(live.ConfigError, match=r".*") as info:
        live.load_settings(write(tmp_path, data, mode), live.PRODUCER_SETTINGS)
    assert text in str(info.value)
    assert "pw-Zq81x" not in str(info.value)


def test_a_group_readable_settings_file_is_accepted(tmp_path):
    live.load_settings(write(tmp_path, PRODUCER, 0o640), live.PRODUCER_SETTINGS)


def test_inject_checks():
    base = {"url": "https://influxdb1:8086", "validate_certs": True, "stations": 5, "station_prefix": "station-",
            "measurement": "weather", "interval": "2s", "max_backoff": 30.0}
    assert live.check_inject_settings(base) == (2, [])
    for change, text in [(dict(interval="500ms"), "whole seconds"), (dict(interval="1x"), "not a duration"),
                         (dict(stations=0), "stations"), (dict(station_prefix="a b"), "spaces"),
                         (dict(url="http://influxdb1:8086"), "https://")]:
        _, problems = live.check_inject_settings(dict(base, **change))
        assert any(text in p for p in problems), (change, problems)


def test_status_file_is_replaced_whole_and_readable(tmp_path):
    status = live.StatusFile(str(tmp_path / "status.json"), "isobar-producer")
    status.update(force=True, state="running", lag_seconds=0.3)
    status.update(lag_seconds=0.4)  # within STATUS_EVERY: kept in memory, not written
    data = json.loads((tmp_path / "status.json").read_text())
    assert data["state"] == "running" and data["lag_seconds"] == 0.3 and data["pid"] == os.getpid()
    status.error("cannot reach InfluxDB")
    data = json.loads((tmp_path / "status.json").read_text())
    assert data["state"] == "error" and data["last_error"] == "cannot reach InfluxDB" and data["errors"] == 1
    assert data["lag_seconds"] == 0.4
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_a_refused_run_names_the_lock_holder(tmp_path):
    path = str(tmp_path / "cp.json")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        f"sys.path[:0] = {sys.path!r}\n"
        "from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_checkpoint import CheckpointStore\n"
        f"with CheckpointStore({path!r}).locked(holder='the isobar-producer service'):\n"
        "    print('held', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(cp.CheckpointBusy, match=rf"held by the isobar-producer service \(pid {holder.pid}\)"):
            with cp.CheckpointStore(path).locked():
                pass
    finally:
        holder.kill()
        holder.wait()
    with cp.CheckpointStore(path).locked():  # released by the kernel when the holder died
        pass


def test_file_identity_tells_a_replaced_file_apart(tmp_path):
    path = tmp_path / "ca.crt"
    path.write_text("old CA\n")
    before = live.file_identity(str(path), str(tmp_path / "missing"))
    assert before[1] is None and live.file_identity(str(path), str(tmp_path / "missing")) == before
    new = tmp_path / ".ca.crt.new"
    new.write_text("new CA\n")  # same size, another inode: what a copy-and-rename leaves
    os.replace(new, path)
    assert live.file_identity(str(path), str(tmp_path / "missing")) != before
