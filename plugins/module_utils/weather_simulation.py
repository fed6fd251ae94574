# Copyright: Isobar contributors
# Apache-2.0
"""The simulated weather: values that are a pure function of (seed, station, timestamp), and their line protocol.

Shared by the weather_inject module (a window, idempotent) and the live inject service (pipeline_live: one
timestamp per interval), so both write the same value for the same station and second, and a restarted
service re-writes identical points instead of new ones.
"""

from __future__ import annotations

import hashlib
import math
import struct

FIELDS = ("temperature", "humidity", "pressure", "wind_speed")
_FIELD_SUFFIXES = tuple(f"|{field}".encode() for field in FIELDS)
_blake2b = hashlib.blake2b
_from_bytes = int.from_bytes


def _noise(seed, station, ts, field):
    """Deterministic uniform noise in [-1, 1) from (seed, station, timestamp, field)."""
    digest = hashlib.blake2b(f"{seed}|{station}|{ts}|{field}".encode(), digest_size=8).digest()
    return struct.unpack(">Q", digest)[0] / 2**63 - 1.0


def _noises(seed, station, ts):
    """_noise of each of FIELDS at ts, the same numbers made faster (a window simulates 4 per point: most of an
    inject's time outside its writes)."""
    head = f"{seed}|{station}|{ts}".encode()
    temperature, humidity, pressure, wind_speed = _FIELD_SUFFIXES
    return (_from_bytes(_blake2b(head + temperature, digest_size=8).digest(), "big") / 2**63 - 1.0,
            _from_bytes(_blake2b(head + humidity, digest_size=8).digest(), "big") / 2**63 - 1.0,
            _from_bytes(_blake2b(head + pressure, digest_size=8).digest(), "big") / 2**63 - 1.0,
            _from_bytes(_blake2b(head + wind_speed, digest_size=8).digest(), "big") / 2**63 - 1.0)


def _station_profile(seed, station):
    def pick(field, low, high):
        return low + (high - low) * (_noise(seed, station, -1, field) + 1) / 2

    return {"temperature": pick("temperature", 4.0, 20.0), "humidity": pick("humidity", 45.0, 80.0),
            "pressure": pick("pressure", 1005.0, 1022.0), "wind_speed": pick("wind_speed", 1.0, 7.0)}


def simulate(seed, station, ts, profile=None):
    """One point's fields: a daily cycle (warmest at 15:00 UTC) plus noise, rounded like a real sensor."""
    base = profile or _station_profile(seed, station)
    noise_temperature, noise_humidity, noise_pressure, noise_wind = _noises(seed, station, ts)
    day = 2 * math.pi * ((ts % 86400) - 15 * 3600) / 86400
    temperature = base["temperature"] + 7.0 * math.cos(day) + 1.2 * noise_temperature
    humidity = base["humidity"] - 2.0 * (temperature - base["temperature"]) + 4.0 * noise_humidity
    pressure = base["pressure"] + 4.0 * math.sin(2 * math.pi * ts / (3 * 86400)) + 0.6 * noise_pressure
    wind = base["wind_speed"] * (1 + 0.5 * noise_wind)
    return {"temperature": round(temperature, 2), "humidity": round(min(100.0, max(5.0, humidity)), 1),
            "pressure": round(pressure, 1), "wind_speed": round(max(0.0, wind), 2)}


def line(measurement, station, ts, values):
    """The point in line protocol, fields in FIELDS' order, floats as repr() writes them (exact round trip)."""
    return (f"{measurement},station={station} temperature={float(values['temperature'])!r},"
            f"humidity={float(values['humidity'])!r},pressure={float(values['pressure'])!r},"
            f"wind_speed={float(values['wind_speed'])!r} {ts}")
