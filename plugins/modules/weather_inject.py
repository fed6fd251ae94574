#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Write deterministic simulated weather into InfluxDB 2; idempotent over a time window."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: weather_inject
short_description: Write deterministic simulated weather for N stations over a time window into InfluxDB 2
description:
  - Simulates weather stations (temperature in C, relative humidity in %, pressure in hPa, wind speed in m/s) and
    writes one point per station every O(interval) from O(start) to O(stop) into O(bucket), in batches.
  - Values are a pure function of O(seed), the station and the timestamp (a daily temperature cycle plus hashed
    noise), so the same window always gives the same points, and overlapping windows agree where they overlap.
  - Idempotent. The module first reads the window back and compares every expected point (all four fields) with
    what is stored; only missing or different points are written. A re-run over the same window writes nothing
    and reports C(changed=false). So the token needs read as well as write permission on O(bucket).
  - Timestamps are whole multiples of O(interval). Relative times (C(now), C(-1h), C(+2m)) are resolved against the
    current time rounded down to O(now_granularity), so re-runs within the same period address the same window.
  - O(heat_spike) replaces the temperature of the last points of the window by a hot value, for alert demos.
  - Point schema is measurement O(measurement), tag C(station) (C(<station_prefix>01) ...), float fields
    C(temperature), C(humidity), C(pressure), C(wind_speed), precision seconds.
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
options:
  token:
    description: API token with read and write permission on O(bucket). Env C(INFLUX_TOKEN).
    required: true
  bucket:
    description: Bucket written to.
    type: str
    required: true
  measurement:
    description: Measurement name of the points.
    type: str
    default: weather
  stations:
    description: Number of simulated stations.
    type: int
    default: 5
  station_prefix:
    description: Station tag values are this prefix followed by a two-digit number.
    type: str
    default: station-
  start:
    description: Start of the window (included) - RFC 3339 (C(2026-01-01T00:00:00Z)), C(now), or C(-<duration>)/C(+<duration>) from now.
    type: str
    default: -1h
  stop:
    description: End of the window (excluded), same forms as O(start).
    type: str
    default: now
  interval:
    description: Time between two points of a station (duration, whole seconds).
    type: str
    default: 1m
  now_granularity:
    description: Relative times are resolved against now rounded down to this duration (default O(interval)).
    type: str
  seed:
    description: Seed of the simulation; another seed gives other (equally deterministic) weather.
    type: int
    default: 42
  batch_size:
    description: Points per write request.
    type: int
    default: 5000
  max_points:
    description: Refuse windows that would hold more points than this (guards against a typo in O(start)).
    type: int
    default: 1000000
  heat_spike:
    description: Make the last points of the window hot (for the alert demo); omitted = no spike.
    type: dict
    suboptions:
      temperature:
        description: Temperature (C) of the spike points.
        type: float
        default: 45.0
      points:
        description: How many of the last timestamps of the window are hot.
        type: int
        default: 6
      stations:
        description: Stations (tag values) with the spike; omitted = the first station.
        type: list
        elements: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: The last day of weather for 5 stations, one point a minute (a re-run within the hour writes nothing)
  weather_inject:
    url: "{{ influxdb_url }}"
    token: "{{ influxdb_client_tokens.inject }}"
    ca_path: /etc/isobar/pki/ca.crt
    org: myorg
    bucket: weather
    stations: 5
    start: -24h
    stop: now
    interval: 1m
    now_granularity: 1h
  no_log: true

- name: A heat spike in the coming minute, for a check that runs every 10s
  weather_inject:
    url: "{{ influxdb_url }}"
    token: "{{ influxdb_client_tokens.inject }}"
    ca_path: /etc/isobar/pki/ca.crt
    org: myorg
    bucket: weather
    start: -1m
    stop: +1m
    interval: 5s
    heat_spike: {temperature: 42.0, points: 12, stations: [station-01]}
"""

RETURN = r"""
points_expected:
  description: Points (one per station and timestamp, four fields each) the window holds.
  returned: always
  type: int
points_present:
  description: Expected points already stored with identical values before the run.
  returned: always
  type: int
points_written:
  description: Points written by this run (would be written, in check mode).
  returned: always
  type: int
batches:
  description: Write requests made.
  returned: always
  type: int
rate:
  description: Points written per second of write requests (points_written / duration; 0 when nothing was written).
  returned: always
  type: float
duration:
  description: Seconds spent in the write requests (their sum; the next batch is simulated while each one runs).
  returned: always
  type: float
window:
  description: First and last timestamp of the window (RFC 3339), the interval and the station names.
  returned: always
  type: dict
spike_points:
  description: Points carrying the heat spike.
  returned: always
  type: int
"""

import csv
import datetime
import fractions
import io
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import (
    NOTHING_CHANGED, InfluxDBApi, InfluxDBError, influxdb_argument_spec, parse_duration)
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_producer import rfc3339_to_ns
from ansible_collections.isobar.pipeline.plugins.module_utils.weather_simulation import (  # noqa: F401 (FIELDS: tests)
    FIELDS, _station_profile, line, simulate)
from ansible_collections.isobar.pipeline.plugins.module_utils.write_ahead import PartialWrite, write_ahead


def resolve_time(text, now, what):
    """RFC 3339, 'now', or +/-duration relative to now -> epoch seconds. Raises ValueError."""
    text = str(text).strip()
    if text == "now":
        return now
    if text[:1] in "+-":
        return now + (1 if text[0] == "+" else -1) * parse_duration(text[1:], what) // 10**9
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {text!r} is not RFC 3339 (2026-01-01T00:00:00Z), 'now' or -/+<duration>") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what} {text!r} has no time zone (add Z or +00:00)")
    return int(parsed.timestamp())


def rfc3339(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_window(params, now):
    """(timestamps, stations, spike set) of the window; raises ValueError on bad input."""
    interval = parse_duration(params["interval"], "interval")
    if interval < 10**9 or interval % 10**9:
        raise ValueError(f"interval {params['interval']!r} must be whole seconds, at least 1s")
    interval //= 10**9
    granularity = parse_duration(params["now_granularity"], "now_granularity") // 10**9 if params["now_granularity"] else interval
    if granularity < 1:
        raise ValueError("now_granularity must be at least 1s")
    now = now - now % granularity
    start = resolve_time(params["start"], now, "start")
    stop = resolve_time(params["stop"], now, "stop")
    if stop <= start:
        raise ValueError(f"the window is empty: stop ({rfc3339(stop)}) is not after start ({rfc3339(start)})")
    first = -(-start // interval) * interval  # first multiple of interval >= start
    stamps = list(range(first, stop, interval))
    if params["stations"] < 1:
        raise ValueError("stations must be at least 1")
    stations = [f"{params['station_prefix']}{i:02d}" for i in range(1, params["stations"] + 1)]
    if not stamps:
        raise ValueError(f"no multiple of {params['interval']} falls between {rfc3339(start)} and {rfc3339(stop)}")
    if len(stamps) * len(stations) > params["max_points"]:
        raise ValueError(f"the window holds {len(stamps) * len(stations)} points, more than max_points "
                         f"({params['max_points']})")
    spike = set()
    if params["heat_spike"] is not None:
        spike_stations = params["heat_spike"]["stations"] or stations[:1]
        unknown = sorted(set(spike_stations) - set(stations))
        if unknown:
            raise ValueError(f"heat_spike.stations {unknown} are not simulated stations ({stations[0]} .. {stations[-1]})")
        if params["heat_spike"]["points"] < 1:
            raise ValueError("heat_spike.points must be at least 1")
        spike = {(s, ts) for s in spike_stations for ts in stamps[-params["heat_spike"]["points"]:]}
    return stamps, stations, spike, interval


def flux_string(value):
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def any_of(column, values):
    """A Flux predicate ``r.column == v1 or r.column == v2 ...``: unlike contains(), InfluxDB pushes it down to
    storage (contains() made it read and filter every row itself: about 30 s instead of 1 s for 144,000 points)."""
    return " or ".join(f"r.{column} == {flux_string(v)}" for v in values)


def window_query(params, stamps, stations):
    """The stored points of the window, as raw rows the storage engine can serve directly (no map, no group)."""
    return (f"from(bucket: {flux_string(params['bucket'])})\n"
            f"  |> range(start: {stamps[0]}, stop: {stamps[-1] + 1})\n"
            f"  |> filter(fn: (r) => r._measurement == {flux_string(params['measurement'])})\n"
            f"  |> filter(fn: (r) => {any_of('_field', FIELDS)})\n"
            f"  |> filter(fn: (r) => {any_of('station', stations)})\n"
            f"  |> keep(columns: [\"_time\", \"_value\", \"_field\", \"station\"])")


def parse_window(text):
    """{(station, epoch seconds): {field: value}} of the query's CSV (one header per table, blank lines between)."""
    stored = {}
    seconds = {}  # a window has few distinct times: parse each once
    header = None
    for row in csv.reader(io.StringIO(text)):
        if not row or not any(row):
            header = None
            continue
        if header is None:
            header = {name: i for i, name in enumerate(row)}
            continue
        stamp = row[header["_time"]]
        ts = seconds.get(stamp)
        if ts is None:
            # InfluxDB answers in nanoseconds (datetime would cut them to microseconds); an exact fraction keeps a
            # point a nanosecond off the second apart from the one on it (a float would round onto it).
            ns = rfc3339_to_ns(stamp)
            ts = seconds[stamp] = ns // 10**9 if ns % 10**9 == 0 else fractions.Fraction(ns, 10**9)
        stored.setdefault((row[header["station"]], ts), {})[row[header["_field"]]] = float(row[header["_value"]])
    return stored


def read_window(api, params, stamps, stations):
    """Points stored in the window: {(station, ts): {field: value}}."""
    resp = api.request("POST", "/api/v2/query", {"org": params["org"]}, raw=True,
                       body={"query": window_query(params, stamps, stations), "type": "flux",
                             "dialect": {"header": True, "annotations": []}},
                       headers={"Accept": "application/csv"})
    return parse_window(resp.data if isinstance(resp.data, str) else resp.data.decode())


class PendingLines:
    """The line protocol of the window's points that are missing or differ from what is stored, simulated batch by
    batch as they are asked for (the writes of the earlier batches run meanwhile); ``count`` is how many so far."""

    def __init__(self, params, stamps, stations, spike, stored):
        self.params, self.stamps, self.stations, self.spike, self.stored = params, stamps, stations, spike, stored
        self.count = 0

    def batches(self, size):
        params, stored, batch = self.params, self.stored, []
        for station in self.stations:
            profile = _station_profile(params["seed"], station)
            for ts in self.stamps:
                values = simulate(params["seed"], station, ts, profile)
                if (station, ts) in self.spike:
                    values["temperature"] = round(params["heat_spike"]["temperature"], 2)
                if stored.get((station, ts)) != values:
                    batch.append(line(params["measurement"], station, ts, values))
                    self.count += 1
                    if len(batch) == size:
                        yield batch
                        batch = []
        if batch:
            yield batch

    def simulate_all(self):
        """Count what a run would write (check mode), making every line as a run would."""
        for batch in self.batches(len(self.stamps) * len(self.stations) or 1):
            del batch


def main():
    argument_spec = influxdb_argument_spec(token_required=True)
    argument_spec.update(
        bucket=dict(type="str", required=True),
        measurement=dict(type="str", default="weather"),
        stations=dict(type="int", default=5),
        station_prefix=dict(type="str", default="station-"),
        start=dict(type="str", default="-1h"),
        stop=dict(type="str", default="now"),
        interval=dict(type="str", default="1m"),
        now_granularity=dict(type="str"),
        seed=dict(type="int", default=42),
        batch_size=dict(type="int", default=5000),
        max_points=dict(type="int", default=1000000),
        heat_spike=dict(type="dict", options=dict(
            temperature=dict(type="float", default=45.0),
            points=dict(type="int", default=6),
            stations=dict(type="list", elements="str"),
        )),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["batch_size"] < 1:
        module.fail_json(msg=f"batch_size must be at least 1. {NOTHING_CHANGED}")
    if any(c in params["station_prefix"] + params["measurement"] for c in " ,=\"\\\n"):
        module.fail_json(msg=f"measurement and station_prefix must not contain spaces, commas, '=', quotes or "
                             f"backslashes. {NOTHING_CHANGED}")
    try:
        stamps, stations, spike, interval = plan_window(params, int(time.time()))
    except ValueError as exc:
        module.fail_json(msg=f"{exc}. {NOTHING_CHANGED}")

    api = InfluxDBApi(module)
    try:
        stored = read_window(api, params, stamps, stations)
    except InfluxDBError as exc:
        if exc.status == 404:
            module.fail_json(msg=f"cannot read the window back: {exc.message} (unknown bucket or organization, or a "
                                 f"token that cannot read it: it needs read and write on the bucket). {NOTHING_CHANGED}",
                             status=exc.status)
        api.fail("cannot read the window back (the token needs read and write on the bucket)", exc)

    window = PendingLines(params, stamps, stations, spike, stored)
    expected = len(stamps) * len(stations)
    result = dict(changed=False, points_expected=expected, points_present=expected, points_written=0, batches=0,
                  rate=0.0, duration=0.0, spike_points=len(spike),
                  window=dict(first=rfc3339(stamps[0]), last=rfc3339(stamps[-1]), interval_seconds=interval,
                              stations=stations))
    if module.check_mode:
        window.simulate_all()
        result.update(changed=window.count > 0, points_present=expected - window.count, points_written=window.count)
    else:
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.rest import ApiException

        write_api = api.client.write_api(write_options=SYNCHRONOUS)

        spent = [0.0]  # seconds inside the write requests, the simulation that overlaps them left out

        def write(batch):
            began = time.monotonic()
            write_api.write(bucket=params["bucket"], org=params["org"], record=batch, write_precision="s")
            spent[0] += time.monotonic() - began

        try:
            # The next batch is simulated while the server takes the previous one.
            written, batches = write_ahead(window.batches(params["batch_size"]), write)
        except PartialWrite as exc:
            cause = exc.cause
            if not isinstance(cause, ApiException):
                raise cause
            error = InfluxDBError(cause.status or 0, getattr(cause, "message", None) or str(cause.body or cause.reason))
            partial = f" ({exc.written} points were written before)" if exc.written else ""
            module.fail_json(msg=f"writing to bucket {params['bucket']!r} failed{partial}: {error.message}"
                                 + ("" if exc.written else f". {NOTHING_CHANGED}"), status=cause.status,
                             points_written=exc.written)
        elapsed = spent[0]
        result.update(changed=written > 0, points_present=expected - written, points_written=written, batches=batches)
        if written:
            result.update(duration=round(elapsed, 3), rate=round(written / elapsed, 1) if elapsed > 0 else float(written))
    if module._diff:
        result["diff"] = dict(before={"points_matching": result["points_present"]}, after={"points_matching": expected})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
