"""make bench's live-service rows (bench/bench.py latency_summary): the service's and the reference's latency are
taken over the same points from the same t_ack, a point one path never delivered counts as lost on that path only and
is left out of its percentiles, and the duplicates each consumer saw are reported. The run itself (the live service,
InfluxDB and Kafka) is bench/scripts/latency_run.py in make bench."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_latency", ROOT / "bench" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

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
