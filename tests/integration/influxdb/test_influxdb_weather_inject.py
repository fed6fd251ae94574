"""weather_inject against a real influxd: counts, idempotence, check mode, heat spike, bad input."""
from __future__ import annotations

import uuid

import pytest

from conftest import run_module

WINDOW = {"start": "2026-11-27T00:00:00Z", "stop": "2026-11-27T02:00:00Z", "interval": "1m", "stations": 4}


def _count(server, bucket, field="temperature", start="2026-11-26T00:00:00Z", stop="2026-11-29T00:00:00Z"):
    with server.client() as client:
        tables = client.query_api().query(
            f'from(bucket: "{bucket}") |> range(start: {start}, stop: {stop}) '
            f'|> filter(fn: (r) => r._measurement == "weather" and r._field == "{field}") |> group() |> count()')
    return sum(r.get_value() for t in tables for r in t.records)


def _values(server, bucket):
    with server.client() as client:
        tables = client.query_api().query(
            f'from(bucket: "{bucket}") |> range(start: 2026-11-26T00:00:00Z, stop: 2026-11-29T00:00:00Z) '
            f'|> filter(fn: (r) => r._measurement == "weather")')
    return {(r.values["station"], r.get_time().isoformat(), r.get_field()): r.get_value() for t in tables for r in t.records}


@pytest.fixture
def bucket(influxdb_server):
    name = f"inject-{uuid.uuid4().hex[:6]}"
    assert run_module("influxdb_bucket", influxdb_server.module_args(name=name))["changed"]
    yield name
    run_module("influxdb_bucket", influxdb_server.module_args(name=name, state="absent"))


def test_inject_writes_the_window_once(influxdb_server, bucket):
    args = influxdb_server.module_args(bucket=bucket, batch_size=100, **WINDOW)
    predicted = run_module("weather_inject", args, check=True, diff=True)
    assert predicted["changed"] and predicted["points_written"] == 4 * 120 and predicted["batches"] == 0
    assert _count(influxdb_server, bucket) == 0

    first = run_module("weather_inject", args)
    assert first["changed"] and first["points_expected"] == 480 and first["points_written"] == 480, first
    assert first["batches"] == 5 and first["rate"] > 0
    assert first["window"]["first"] == "2026-11-27T00:00:00Z" and first["window"]["last"] == "2026-11-27T01:59:00Z"
    assert _count(influxdb_server, bucket) == 480
    stored = _values(influxdb_server, bucket)
    assert len(stored) == 480 * 4

    second = run_module("weather_inject", args)
    assert second["changed"] is False and second["points_written"] == 0 and second["points_present"] == 480, second
    assert _count(influxdb_server, bucket) == 480 and _values(influxdb_server, bucket) == stored

    # an overlapping window agrees on the overlap and writes only what is new
    later = run_module("weather_inject", dict(args, start="2026-11-27T01:00:00Z", stop="2026-11-27T03:00:00Z"))
    assert later["points_present"] == 4 * 60 and later["points_written"] == 4 * 60
    assert _count(influxdb_server, bucket) == 4 * 180


def test_a_large_window_is_checked_back_within_a_short_timeout(influxdb_server, bucket):
    """The re-run of a day of 100 stations (144,000 points, 576,000 values) reads the window back within a 10 s
    request timeout: the query is one the storage engine serves itself. Before (contains() filters, then group and
    map over every row) the same read took about 30 s and the re-run failed with "timed out"."""
    args = influxdb_server.module_args(bucket=bucket, stations=100, start="2026-11-27T00:00:00Z",
                                       stop="2026-11-28T00:00:00Z", interval="1m", timeout=10)
    assert run_module("weather_inject", args)["points_written"] == 144_000
    again = run_module("weather_inject", args)
    assert again.get("failed") is not True, again.get("msg")
    assert again["changed"] is False and again["points_present"] == 144_000 and again["points_written"] == 0
    # one changed value among them is still found and written again, alone
    spiked = run_module("weather_inject", dict(args, heat_spike={"temperature": 44.0, "points": 1}))
    assert spiked["changed"] and spiked["points_written"] == 1 and spiked["points_present"] == 143_999, spiked


def test_values_are_plausible_and_seeded(influxdb_server, bucket):
    args = influxdb_server.module_args(bucket=bucket, **WINDOW)
    run_module("weather_inject", args)
    stored = _values(influxdb_server, bucket)
    by_field = {}
    for (_, _, field), value in stored.items():
        by_field.setdefault(field, []).append(value)
    assert set(by_field) == {"temperature", "humidity", "pressure", "wind_speed"}
    assert -20 < min(by_field["temperature"]) and max(by_field["temperature"]) < 35
    assert 5 <= min(by_field["humidity"]) and max(by_field["humidity"]) <= 100
    assert 990 < min(by_field["pressure"]) and max(by_field["pressure"]) < 1035
    assert min(by_field["wind_speed"]) >= 0
    other_seed = run_module("weather_inject", dict(args, seed=7), check=True)
    assert other_seed["changed"] and other_seed["points_written"] == 480  # other weather, every point differs


def test_heat_spike(influxdb_server, bucket):
    args = influxdb_server.module_args(bucket=bucket, **WINDOW)
    run_module("weather_inject", args)
    spiked = dict(args, heat_spike={"temperature": 42.5, "points": 3, "stations": ["station-02"]})
    result = run_module("weather_inject", spiked)
    assert result["changed"] and result["spike_points"] == 3 and result["points_written"] == 3, result
    with influxdb_server.client() as client:
        tables = client.query_api().query(
            f'from(bucket: "{bucket}") |> range(start: 2026-11-27T00:00:00Z, stop: 2026-11-27T02:00:00Z) '
            f'|> filter(fn: (r) => r._field == "temperature" and r._value > 35.0)')
    hot = sorted((r.values["station"], r.get_time().strftime("%H:%M"), r.get_value()) for t in tables for r in t.records)
    assert hot == [("station-02", "01:57", 42.5), ("station-02", "01:58", 42.5), ("station-02", "01:59", 42.5)]
    assert run_module("weather_inject", spiked)["changed"] is False
    assert _count(influxdb_server, bucket) == 480
    calm = run_module("weather_inject", args)  # without the spike: the normal values come back
    assert calm["changed"] and calm["points_written"] == 3


@pytest.mark.parametrize("extra, words", [
    ({"bucket": "no-such-bucket"}, "no-such-bucket"),
    ({"org": "no-such-org"}, "no-such-org"),
    ({"token": "not-a-token"}, "token is not accepted"),
    ({"start": "yesterday"}, "is not RFC 3339"),
    ({"start": "2026-11-27T00:00:00"}, "no time zone"),
    ({"stop": "2026-11-26T00:00:00Z"}, "window is empty"),
    ({"interval": "1500ms"}, "whole seconds"),
    ({"max_points": 100}, "more than max_points"),
    ({"heat_spike": {"stations": ["nowhere"]}}, "not simulated stations"),
    ({"measurement": "bad name"}, "must not contain"),
])
def test_bad_input_writes_nothing(influxdb_server, bucket, extra, words):
    args = influxdb_server.module_args(bucket=bucket, **WINDOW)
    args.update(extra)
    result = run_module("weather_inject", args)
    assert result.get("failed") and words in result["msg"] and "Nothing was changed" in result["msg"], result
    assert _count(influxdb_server, bucket) == 0


def test_write_only_token_is_refused_before_writing(influxdb_server, bucket):
    writer = run_module("influxdb_authorization", influxdb_server.module_args(
        description=f"write-only {bucket}", permissions=[{"action": "write", "type": "buckets", "name": bucket}]))
    result = run_module("weather_inject", influxdb_server.module_args(bucket=bucket, token=writer["token"], **WINDOW))
    assert result.get("failed") and "needs read and write" in result["msg"], result
    assert _count(influxdb_server, bucket) == 0
