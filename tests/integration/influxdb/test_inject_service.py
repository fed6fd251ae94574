"""The live inject (isobar-inject.service's program, pipeline_live inject) against a real influxd: N stations one
point each per interval, values identical to weather_inject's for the same (station, second), and a restart
(SIGKILL included) re-writes the same points instead of adding others."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from ansible_collections.isobar.pipeline.plugins.module_utils.weather_simulation import simulate
from conftest import ROOT, run_module

pytestmark = pytest.mark.slow
LIVE = "ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_live"


@pytest.fixture
def bucket(influxdb_server):
    name = f"live-inject-{uuid.uuid4().hex[:6]}"
    assert run_module("influxdb_bucket", influxdb_server.module_args(name=name))["changed"]
    yield name
    run_module("influxdb_bucket", influxdb_server.module_args(name=name, state="absent"))


def start(influxdb_server, bucket, tmp_path, **override):
    settings = dict(dict(url=influxdb_server.url, token=influxdb_server.token, org=influxdb_server.org,
                         ca_path=influxdb_server.ca_path, bucket=bucket, stations=3, interval="1s", seed=42,
                         status_path=str(tmp_path / "inject-status.json")), **override)
    config = tmp_path / "inject.json"
    config.write_text(json.dumps(settings))
    config.chmod(0o600)
    return subprocess.Popen([sys.executable, "-m", LIVE, "inject", "--config", str(config)],
                            env=dict(os.environ, PYTHONPATH=str(ROOT / "collections")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stored(server, bucket):
    """{(station, second): {field: value}} of the bucket's weather points, and the number of stored field values."""
    with server.client() as client:
        tables = client.query_api().query(
            f'from(bucket: "{bucket}") |> range(start: -1h, stop: 1h) |> filter(fn: (r) => r._measurement == "weather")')
    points, values = {}, 0
    for table in tables:
        for r in table.records:
            points.setdefault((r.values["station"], int(r.get_time().timestamp())), {})[r.get_field()] = r.get_value()
            values += 1
    return points, values


def wait_status(tmp_path, predicate, timeout=60):
    path = tmp_path / "inject-status.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            status = {}
        if predicate(status):
            return status
        time.sleep(0.1)
    raise AssertionError(f"status never matched: {status}")


def test_writes_each_tick_for_every_station_and_a_restart_rewrites_the_same_points(influxdb_server, bucket, tmp_path):
    proc = start(influxdb_server, bucket, tmp_path)
    wait_status(tmp_path, lambda s: s.get("points_since_start", 0) >= 12)  # 4 ticks x 3 stations
    os.kill(proc.pid, signal.SIGKILL)  # systemctl kill -s KILL isobar-inject: restarts at the current tick
    proc.communicate(timeout=30)
    first, _ = stored(influxdb_server, bucket)
    ticks = sorted({ts for _, ts in first})
    assert len(ticks) >= 4 and ticks == list(range(ticks[0], ticks[-1] + 1)), ticks  # one tick per second, no gap
    assert len(first) == 3 * len(ticks)

    (tmp_path / "inject-status.json").unlink()
    proc = start(influxdb_server, bucket, tmp_path)
    wait_status(tmp_path, lambda s: s.get("points_since_start", 0) >= 6)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.communicate()[0]
    points, values = stored(influxdb_server, bucket)
    # the restart wrote its current tick again (maybe one already written), never a second point for one
    assert values == 4 * len(points)
    for (station, ts), fields in points.items():
        assert fields == simulate(42, station, ts), (station, ts)  # the module's values: deterministic
    assert {s for s, _ in points} == {"station-01", "station-02", "station-03"}

    status = json.loads((tmp_path / "inject-status.json").read_text())
    assert status["service"] == "isobar-inject" and status["state"] == "stopped" and status["points_since_start"] >= 6
    assert status["last_error"] is None

    # weather_inject over the same window finds every point already there
    window = run_module("weather_inject", influxdb_server.module_args(
        bucket=bucket, stations=3, start=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(ts for _, ts in points))),
        stop=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ticks[-1] + 1)), interval="1s"))
    assert window["points_written"] == 0 and window["points_present"] == 3 * len(ticks), window


def test_an_unreachable_influxdb_is_reported_and_retried(influxdb_server, bucket, tmp_path):
    proc = start(influxdb_server, bucket, tmp_path, url="https://127.0.0.1:1", max_backoff=1)
    status_path = Path(tmp_path / "inject-status.json")
    deadline = time.monotonic() + 30
    status = {}
    while time.monotonic() < deadline and status.get("errors", 0) < 2:
        time.sleep(0.2)
        status = json.loads(status_path.read_text()) if status_path.exists() else {}
    assert status.get("errors", 0) >= 2 and status["state"] == "error", status
    assert "127.0.0.1:1" in status["last_error"] or "refused" in status["last_error"].lower(), status
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0 and influxdb_server.token not in output


def test_bad_settings_stop_with_a_clear_error(influxdb_server, bucket, tmp_path):
    proc = start(influxdb_server, bucket, tmp_path, interval="500ms")
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 2 and "interval '500ms' must be whole seconds" in output, output
    assert stored(influxdb_server, bucket) == ({}, 0)
