"""make bench's live-service rows (bench/bench.py latency_summary): the service's and the reference's latency are
taken over the same points from the same t_ack, a point one path never delivered counts as lost on that path only and
is left out of its percentiles, and the duplicates each consumer saw are reported. The run itself (the live service,
InfluxDB and Kafka) is bench/scripts/latency_run.py in make bench."""
from __future__ import annotations

import json

import pytest
from fixtures.operations import load_program

bench = load_program("bench/bench.py", "bench_latency")

S = 1_000_000_000


def point(n, ours_s, ref_s):
    t_ack = n * S + 2_000_000
    return {"id": f"weather/bench-01/{n * S}", "t_point": n * S, "t_ack": t_ack, "t_ref_acked": t_ack + 1,
            "t_recv": None if ours_s is None else t_ack + int(ours_s * S),
            "t_ref_recv": None if ref_s is None else t_ack + int(ref_s * S)}


def run(points, duplicates=0):
    return {"points": points, "settings": {"stations": 1, "duration": 100.0, "drain": 30.0},
            "consumers": {"service": {"duplicates": duplicates, "unmatched_records": 0, "error": None},
                          "reference": {"duplicates": 0, "unmatched_records": 0, "error": "KafkaError: gone"}},
            "loadavg_start": [1.0, 1.0, 1.0], "loadavg_end": [2.0, 2.0, 2.0]}


def test_both_paths_are_measured_on_the_same_points_from_the_same_ack():
    points = [point(n, 0.3 + n / 1000, 0.01) for n in range(100)]
    summary = bench.Bench.latency_summary(run(points))
    assert summary["points_written"] == 100
    assert summary["lost"] == summary["reference_lost"] == 0
    assert abs(summary["service"]["p50_s"] - 0.35) < 0.002
    assert abs(summary["service"]["max_s"] - 0.399) < 0.001
    assert abs(summary["reference"]["p99_s"] - 0.01) < 0.001
    assert abs(summary["influxdb_write_ack_s"]["p50"] - 0.002) < 1e-9


def test_a_point_not_delivered_is_lost_on_its_path_only_and_left_out_of_the_percentiles():
    points = [point(0, None, 0.02), point(1, 0.4, None), point(2, 0.5, 0.03)]
    summary = bench.Bench.latency_summary(run(points, duplicates=2))
    assert (summary["lost"], summary["reference_lost"]) == (1, 1)
    assert summary["service"]["max_s"] == 0.5 and summary["reference"]["max_s"] == 0.03
    assert summary["duplicates"] == 2
    assert summary["consumer_errors"] == {"reference": "KafkaError: gone"}


class RecordedBench(bench.Bench):
    """A Bench whose latency playbook leaves a recorded run (points, catch-up, ProducerPerformance's output)."""

    def __init__(self, tmp_path, run_record):  # pylint: disable=super-init-not-called
        import argparse
        self.args = argparse.Namespace(latency_duration=100, catchup_points=run_record["catchup"]["points"])
        self.rows, self.details, self.work = [], {}, tmp_path
        self.run_record = run_record

    def record_sizes(self):
        return 10.0, 279.0

    def playbook(self, playbook, name, extra=None, *, report=False, env=None, inventory=None):
        assert extra["bench_record_size"] == 289 and extra["bench_catchup_points"] == self.args.catchup_points
        (self.work / "latency.json").write_text(json.dumps(self.run_record))
        (self.work / "catchup_reference.json").write_text(json.dumps({"stdout": (
            "50000 records sent, 10000.0 records/sec (2.76 MB/sec), 1517.15 ms avg latency, 2920.00 ms max latency, "
            "1471 ms 50th, 2686 ms 95th, 2875 ms 99th, 2914 ms 99.9th.")}))


def test_the_rows_of_a_recorded_run(tmp_path):
    record = run([point(n, 0.3, 0.01) for n in range(100)])
    record["catchup"] = {"points": 50000, "received": 50000, "complete": True, "stations": 50, "started": 0,
                         "first_recv": 2 * S, "last_recv": 12 * S, "rate_from_start": 50000 / 12,
                         "rate_first_to_last": 49999 / 10}
    recorded = RecordedBench(tmp_path, record)
    recorded.bench_latency()
    rows = {row["key"]: row for row in recorded.rows}
    assert rows["latency_p99"]["ours"] == 0.3 and rows["latency_p99"]["reference"] == 0.01
    assert rows["catchup"]["ours"] == round(50000 / 12, 1) and rows["catchup"]["reference"] == 10000.0
    assert abs(rows["catchup"]["ratio"] - 50000 / 12 / 10000) < 0.001


def test_an_incomplete_catch_up_is_an_error_not_a_row(tmp_path):
    record = run([point(n, 0.3, 0.01) for n in range(10)])
    record["catchup"] = {"points": 50000, "received": 49000, "complete": False}
    record["settings"]["catchup_timeout"] = 300.0
    recorded = RecordedBench(tmp_path, record)
    with pytest.raises(bench.StepFailed, match="49000 of 50000"):
        recorded.bench_latency()
    assert "catchup" not in {row["key"] for row in recorded.rows}
