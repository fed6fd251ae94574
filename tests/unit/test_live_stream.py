"""The gap check of the live-pipeline lab test (tests/lab/default/test_live.py) on hand-made message streams."""
from __future__ import annotations

import pytest
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_live import inject_stations
from fixtures.live_stream import missing_ticks

SECOND = 10**9
SETTINGS = {"stations": 5, "interval": "1s"}


def stream(stations, start, stop, step=SECOND, skip=()):
    return [{"station": s, "time_ns": t} for t in range(start, stop + step, step) for s in stations if t not in skip]


def service_stations(settings):
    return set(inject_stations(settings))


def test_service_stations_follow_the_settings():
    assert service_stations(SETTINGS) == {f"station-0{i}" for i in range(1, 6)}
    assert service_stations({"stations": 2, "station_prefix": "lab-"}) == {"lab-01", "lab-02"}


def test_a_sparse_station_of_another_writer_is_not_a_gap():
    # The CI failure of 2026-12-04: the alert test's spike station (one point every 5 s) sat in the
    # window, and the check counted its 4 absent seconds per step as ticks lost across the SIGKILL.
    start = 1796361905 * SECOND
    values = stream(service_stations(SETTINGS), start, start + 20 * SECOND)
    values += stream(["verify-spike-1d14-02"], start, start + 20 * SECOND, step=5 * SECOND)
    assert missing_ticks(values, service_stations(SETTINGS), SECOND) == {}


def test_a_tick_lost_by_one_station_is_reported():
    start = 100 * SECOND
    stations = service_stations(SETTINGS)
    values = stream(stations - {"station-03"}, start, start + 10 * SECOND)
    values += stream(["station-03"], start, start + 10 * SECOND, skip={start + 4 * SECOND, start + 5 * SECOND})
    assert missing_ticks(values, stations, SECOND) == {"station-03": 2}


def test_a_station_that_sent_nothing_fails_loudly():
    values = stream(["station-01"], 0, 5 * SECOND)
    with pytest.raises(AssertionError, match="no message at all from"):
        missing_ticks(values, {"station-01", "station-02"}, SECOND)
