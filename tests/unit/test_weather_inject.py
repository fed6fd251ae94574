"""weather_inject's simulation and window planning, without a server."""
from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path

import pytest
from ansible_collections.isobar.pipeline.plugins.modules import weather_inject as wi

NOW = 1_795_000_000  # a fixed "now" (2026-11-18T...)
BASE = {"interval": "1m", "now_granularity": None, "start": "-1h", "stop": "now", "stations": 3,
        "station_prefix": "station-", "max_points": 1_000_000, "heat_spike": None}


def test_simulation_is_a_pure_function_of_seed_station_and_time():
    a = [wi.simulate(42, "station-01", NOW + 60 * i) for i in range(100)]
    assert a == [wi.simulate(42, "station-01", NOW + 60 * i) for i in range(100)]
    assert a != [wi.simulate(43, "station-01", NOW + 60 * i) for i in range(100)]
    assert a != [wi.simulate(42, "station-02", NOW + 60 * i) for i in range(100)]
    assert set(a[0]) == {"temperature", "humidity", "pressure", "wind_speed"}


def test_the_fast_noise_and_line_give_the_values_already_stored():
    """simulate() draws its four noises at once and line() writes its fields directly (speed): the numbers and the text
    must stay those of the definitions below, or every window written before would be written again, and the live
    inject service would disagree with the module."""
    from ansible_collections.isobar.pipeline.plugins.module_utils import weather_simulation as ws

    def by_definition(seed, station, ts):
        base = ws._station_profile(seed, station)
        day = 2 * math.pi * ((ts % 86400) - 15 * 3600) / 86400
        temperature = base["temperature"] + 7.0 * math.cos(day) + 1.2 * ws._noise(seed, station, ts, "temperature")
        humidity = (base["humidity"] - 2.0 * (temperature - base["temperature"])
                    + 4.0 * ws._noise(seed, station, ts, "humidity"))
        pressure = (base["pressure"] + 4.0 * math.sin(2 * math.pi * ts / (3 * 86400))
                    + 0.6 * ws._noise(seed, station, ts, "pressure"))
        wind = base["wind_speed"] * (1 + 0.5 * ws._noise(seed, station, ts, "wind_speed"))
        return {"temperature": round(temperature, 2), "humidity": round(min(100.0, max(5.0, humidity)), 1),
                "pressure": round(pressure, 1), "wind_speed": round(max(0.0, wind), 2)}

    rng = random.Random(7)
    for _point in range(3000):
        seed, station, ts = rng.randrange(1000), f"station-{rng.randrange(1, 500):03d}", rng.randrange(2 * 10**9)
        values = ws.simulate(seed, station, ts)
        assert values == by_definition(seed, station, ts), (seed, station, ts)
        fields = ",".join(f"{name}={float(values[name])!r}" for name in ws.FIELDS)
        assert ws.line("weather", station, ts, values) == f"weather,station={station} {fields} {ts}"
    assert ws.line("w", "s", 1, {"temperature": 20, "humidity": 50.5, "pressure": 1e3, "wind_speed": 0.1}) == (
        "w,station=s temperature=20.0,humidity=50.5,pressure=1000.0,wind_speed=0.1 1")


def test_simulation_has_a_daily_cycle_and_sane_ranges():
    day = [wi.simulate(1, "station-01", 86400 * 20000 + h * 3600) for h in range(24)]
    temps = [p["temperature"] for p in day]
    assert temps.index(max(temps)) in range(12, 18)  # afternoon
    assert temps.index(min(temps)) in list(range(0, 6)) + list(range(22, 24))
    for p in (wi.simulate(s, f"station-{n:02d}", NOW + i * 977) for s in range(5) for n in range(1, 6) for i in range(200)):
        assert -10 < p["temperature"] < 35 and 5 <= p["humidity"] <= 100
        assert 995 < p["pressure"] < 1030 and 0 <= p["wind_speed"] < 15


def test_window_is_aligned_and_holds_window_over_interval_points():
    stamps, stations, spike, interval = wi.plan_window(dict(BASE), NOW)
    assert interval == 60 and len(stamps) == 60 and all(t % 60 == 0 for t in stamps)
    assert stations == ["station-01", "station-02", "station-03"] and spike == set()
    # the same window within the same granularity period, a moved one after it
    assert wi.plan_window(dict(BASE), NOW - NOW % 60 + 59)[0] == wi.plan_window(dict(BASE), NOW - NOW % 60)[0]
    hourly = dict(BASE, now_granularity="1h")
    assert wi.plan_window(hourly, NOW)[0] == wi.plan_window(hourly, NOW - NOW % 3600 + 3599)[0]
    assert wi.plan_window(hourly, NOW)[0] != wi.plan_window(hourly, NOW - NOW % 3600 + 3600)[0]


def test_absolute_window_and_heat_spike():
    params = dict(BASE, start="2026-11-27T00:00:30Z", stop="2026-11-27T00:10:00Z",
                  heat_spike={"temperature": 45.0, "points": 2, "stations": None})
    stamps, stations, spike, _ = wi.plan_window(params, NOW)
    assert wi.rfc3339(stamps[0]) == "2026-11-27T00:01:00Z" and wi.rfc3339(stamps[-1]) == "2026-11-27T00:09:00Z"
    assert spike == {("station-01", stamps[-1]), ("station-01", stamps[-2])}


@pytest.mark.parametrize("change, words", [
    ({"interval": "0s"}, "at least 1s"), ({"interval": "90"}, "needs a unit"), ({"start": "now", "stop": "-1h"}, "empty"),
    ({"start": "2026-13-01T00:00:00Z"}, "RFC 3339"), ({"stations": 0}, "at least 1"), ({"max_points": 10}, "max_points"),
    ({"heat_spike": {"temperature": 40.0, "points": 0, "stations": None}}, "at least 1"),
])
def test_bad_windows_are_refused(change, words):
    with pytest.raises(ValueError, match=words):
        wi.plan_window(dict(BASE, **change), NOW)


def test_line_protocol_round_trips_floats():
    values = wi.simulate(42, "station-01", NOW)
    text = wi.line("weather", "station-01", NOW, values)
    fields = dict(kv.split("=") for kv in text.split(" ")[1].split(","))
    assert {k: float(v) for k, v in fields.items()} == values and text.endswith(f" {NOW}")


def test_window_query_filters_with_or_so_storage_serves_it_and_keeps_only_what_is_compared():
    params = {"bucket": "weather", "measurement": "weather"}
    query = wi.window_query(params, [60, 120], ["station-01", 'odd"name'])
    assert "contains(" not in query and "map(" not in query and "group(" not in query
    assert 'r.station == "station-01" or r.station == "odd\\"name"' in query
    assert "range(start: 60, stop: 121)" in query


def test_parse_window_reads_every_table_and_each_time_once():
    text = ("\r\n".join([",result,table,_field,_time,_value,station",
                         ",_result,0,humidity,2026-11-27T00:00:00Z,55.5,station-01",
                         ",_result,0,humidity,2026-11-27T00:01:00Z,56,station-01",
                         "",
                         ",result,table,_time,_value,_field,station",
                         ",_result,1,2026-11-27T00:00:00Z,20.25,temperature,station-01",
                         ",_result,1,2026-11-27T00:00:00.5Z,1.0,temperature,station-02",
                         ",_result,1,2026-11-27T00:00:00.000000001Z,2.0,temperature,station-03"]) + "\r\n")
    stored = wi.parse_window(text)
    assert stored[("station-01", 1795737600)] == {"humidity": 55.5, "temperature": 20.25}
    assert stored[("station-01", 1795737660)] == {"humidity": 56.0}
    # a point between whole seconds is not taken for the one on the second
    assert ("station-02", 1795737600) not in stored and ("station-02", 1795737600.5) in stored
    # nor one a nanosecond after it (InfluxDB's precision)
    assert ("station-03", 1795737600) not in stored
