"""What a failover drill records (playbooks/broker-failover.yml), as plain data for the report and timeline tests.

Shaped like a real run on the lab (marks in epoch seconds, tools/kafka_load.py summaries and --analyze output,
kafka_cluster_info views as the drill keeps them), with events generated to match the marks.
"""
from __future__ import annotations

import copy

T0 = 1_764_000_000.0  # run_start of one_down

DRILL = {
    "started": "2026-12-03T06:00:00Z", "broker": "kafka2", "second_broker": "kafka3", "node_id": "2", "mode": "host",
    "host_stop_timeout": 30, "driver": "kafka1", "traffic_host": "pipeline", "topic": "isobar-drill",
    "partitions": 6, "rate": 50, "poll_delay": 1, "stall_threshold": 1.0, "two_down": True,
    "two_down_delivery_timeout": 15, "max_window_s": 60, "broker_count": 3,
}


def _view(at, leaders, urp=0, healthy=True, mismatches=0, brokers=(1, 2, 3), controller=1):
    return {"at": at, "answered": True, "leaders_per_broker": leaders, "under_replicated": urp, "offline": 0,
            "partitions": 6, "controller_id": controller, "brokers": list(brokers),
            "preferred_leader_mismatches": mismatches, "healthy": healthy, "problems": []}


BALANCED = {"1": 2, "2": 2, "3": 2}
T2 = T0 + 200.0  # run_start of two_down

STATE = {
    "marks": {
        "one_down": {"run_start": T0, "stop_begin": T0 + 10.0, "stop_done": T0 + 14.26, "leaders_moved": T0 + 16.04,
                     "start_begin": T0 + 47.5, "full_isr": T0 + 61.27, "election_done": T0 + 70.0, "run_end": T0 + 75.0},
        "two_down": {"run_start": T2, "stop_begin": T2 + 10.0, "stop_done": T2 + 15.0, "start_begin": T2 + 56.0,
                     "full_isr": T2 + 80.44, "election_done": T2 + 90.0, "run_end": T2 + 100.0},
    },
    "summaries": {
        "one_down": {"sent": 3500, "acked": 3500, "consumed": 3500, "failed": 0, "unacknowledged": 0, "errors": {},
                     "acked_missing_from_topic": 0, "consumer_caught_up": True, "consumed_duplicates": 0,
                     "producer_stuck": False, "broker_errors_retried": {}},
        "two_down": {"sent": 4600, "acked": 2500, "consumed": 2500, "failed": 2100, "unacknowledged": 0,
                     "errors": {"KafkaTimeoutError": 2100}, "acked_missing_from_topic": 0, "consumer_caught_up": True,
                     "failed_but_written": 0, "longest_send_wait_s": 21.4,
                     "broker_errors_retried": {"NotEnoughReplicasError": 12}},
    },
    "phases": {
        "one_down": {
            "baseline": {"p99_ack_wait_s": 0.012, "max_ack_wait_s": 0.02},
            "one_down": {"window_s": 5.817, "stalled_sends": 40, "stalled_partitions": [1, 4], "max_ack_wait_s": 5.9,
                         "sent": 1875, "acked": 1875, "failed": 0, "errors": {}, "first_error_at": None},
            "recovery": {"max_ack_wait_s": 0.4},
        },
        "two_down": {
            "baseline": {"p99_ack_wait_s": 0.011},
            "two_down": {"sent": 2300, "acked": 200, "failed": 2100, "errors": {"KafkaTimeoutError": 2100},
                         "first_error_at": T2 + 25.06, "window_s": 30.0},
            "recovery": {"max_ack_wait_s": 0.3},
        },
    },
    "snapshots": {
        "before": _view(T0 - 5, BALANCED),
        "one_down": _view(T0 + 16.5, {"1": 3, "3": 3}, urp=6, healthy=False, brokers=(1, 3)),
        "one_down_end": _view(T0 + 46.0, {"1": 3, "3": 3}, urp=6, healthy=False, brokers=(1, 3)),
        "one_down_restarted": _view(T0 + 62.0, {"1": 3, "3": 3}, mismatches=2),
        "after_election_one_down": _view(T0 + 69.0, BALANCED),
        "two_down": {"at": T2 + 50.0, "answered": False, "leaders_per_broker": {}, "under_replicated": 0,
                     "offline": 0, "partitions": 0, "controller_id": None, "brokers": [],
                     "preferred_leader_mismatches": 0, "healthy": False, "problems": ["no answer"]},
        "two_down_restarted": _view(T2 + 81.0, {"1": 6}, mismatches=4),
        "after_election_two_down": _view(T2 + 89.0, BALANCED),
        "final": _view(T2 + 130.0, BALANCED),
    },
    "elections": {
        "one_down": {"elected": ["isobar-drill-1", "isobar-drill-4"], "already_preferred": 4, "balanced": True,
                     "mismatches": []},
        "two_down": {"elected": ["isobar-drill-1"], "already_preferred": 5, "balanced": True, "mismatches": []},
    },
    "scram_checks": {
        "one_down_restarted": {"rc": 0, "rejecting_brokers": [], "repaired": None, "after": None, "error": None},
        "two_down_restarted": {"rc": 0, "rejecting_brokers": [], "repaired": None, "after": None, "error": None},
        "restore": {"rc": 0, "rejecting_brokers": [], "repaired": None, "after": None, "error": None},
    },
    "cleanup_problems": [],
    "error": "",
}


def drill(**changes) -> dict:
    return {**copy.deepcopy(DRILL), **changes}


def state() -> dict:
    return copy.deepcopy(STATE)


def events(run: str) -> list[dict]:
    """Events of a traffic run consistent with its marks: a send every 0.1 s on 6 partitions, acked in 10 ms, except
    while the broker is down (one_down: sends on partitions 1 and 4 wait until the leaders moved; two_down: sends
    fail with KafkaTimeoutError after the delivery timeout)."""
    marks = STATE["marks"][run]
    result, seq, t = [], 0, marks["run_start"]
    while t < marks["run_end"] - 5:
        partition = seq % 6
        if run == "one_down" and marks["stop_begin"] <= t < marks["leaders_moved"] and partition in (1, 4):
            result.append({"e": "ack", "t": round(marks["leaders_moved"] + 0.2, 4), "seq": seq, "sent": round(t, 4),
                           "p": partition})
        elif run == "two_down" and marks["stop_begin"] <= t < marks["start_begin"]:
            result.append({"e": "err", "t": round(t + 15.0, 4), "seq": seq, "sent": round(t, 4),
                           "kind": "KafkaTimeoutError"})
        else:
            result.append({"e": "ack", "t": round(t + 0.01, 4), "seq": seq, "sent": round(t, 4), "p": partition})
        result.append({"e": "read", "t": round(t + 0.05, 4), "s": [seq]})
        seq += 1
        t += 0.1
    return result
