"""The telegraf role's Kafka output watchdog: when does it restart the agent."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("kafka_watchdog", ROOT / "roles" / "telegraf" / "files" / "kafka_watchdog.py")
wd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wd)

STALL, STALE = 180, 120


def sample(t, written, errors=0, buffered=50):
    return {"time": t, "written": written, "errors": errors, "buffered": buffered}


def test_progress_or_an_empty_buffer_is_healthy():
    assert wd.decide(None, sample(1000, 10), 1005, STALL, STALE)[0] == "ok"
    assert wd.decide(sample(1000, 10), sample(1060, 20), 1065, STALL, STALE)[0] == "ok"
    assert wd.decide(sample(1000, 10), sample(1060, 10, buffered=0), 1065, STALL, STALE)[0] == "ok"


def test_failing_writes_are_not_a_stall():
    # Kafka down: nothing written, but the error counter moves: Telegraf is retrying, leave it alone.
    assert wd.decide(sample(1000, 10, errors=3), sample(1060, 10, errors=9), 1065, STALL, STALE)[0] == "ok"


def test_a_silent_stall_restarts_after_the_grace_period():
    state = None
    action, state = wd.decide(state, sample(1000, 10), 1005, STALL, STALE)
    for now in (1065, 1125):
        action, state = wd.decide(state, sample(now - 5, 10), now, STALL, STALE)
        assert action == "wait", now
        assert state["stalled_since"] == 1000  # the last sample that still showed progress
    action, state = wd.decide(state, sample(1180, 10), 1185, STALL, STALE)
    assert action == "restart"


def test_stale_statistics_count_as_a_stall():
    action, state = wd.decide(sample(1000, 10), sample(1000, 10), 1200, STALL, STALE)
    assert action == "wait"
    action, _ = wd.decide(state, sample(1000, 10), 1200 + STALL, STALL, STALE)
    assert action == "restart"


def test_a_restarted_agent_resets_the_counters_without_a_false_alarm():
    assert wd.decide(sample(1000, 500, buffered=10), sample(1060, 0, buffered=10), 1065, STALL, STALE)[0] == "ok"


def test_newest_sample_reads_the_last_kafka_record(tmp_path):
    stats = tmp_path / "internal_write.json"
    lines = [
        {"name": "internal_write", "tags": {"output": "kafka"}, "timestamp": 10,
         "fields": {"metrics_written": 1, "errors": 0, "write_errors": 0, "buffer_size": 0}},
        {"name": "internal_write", "tags": {"output": "influxdb_v2"}, "timestamp": 20,
         "fields": {"metrics_written": 9, "errors": 0, "buffer_size": 0}},
        {"name": "internal_write", "tags": {"output": "kafka"}, "timestamp": 20,
         "fields": {"metrics_written": 7, "errors": 1, "write_errors": 2, "buffer_size": 3}},
    ]
    stats.write_text("\n".join(json.dumps(line) for line in lines) + "\n{broken\n")
    assert wd.newest_sample(str(stats), "kafka") == {"time": 20, "written": 7, "errors": 3, "buffered": 3}
    assert wd.newest_sample(str(tmp_path / "missing"), "kafka") is None


class FakeSystemctl:
    """Records the systemctl calls; the service stays active for `active_polls` is-active calls."""

    def __init__(self, active_polls):
        self.calls, self.active_polls = [], active_polls

    def __call__(self, argv, check=False):
        self.calls.append(" ".join(argv[1:]))
        code = 0
        if argv[1] == "is-active":
            code = 0 if self.active_polls > 0 else 3
            self.active_polls -= 1
        return type("Done", (), {"returncode": code})()


def test_a_hung_agent_is_killed_after_the_grace_instead_of_the_units_stop_timeout():
    systemctl = FakeSystemctl(active_polls=1000)
    wd.restart("telegraf", 5, run=systemctl, sleep=lambda s: None)
    assert systemctl.calls[0] == "kill --signal=SIGTERM telegraf"
    assert systemctl.calls.count("is-active --quiet telegraf") == 20  # 5 s in quarter seconds
    assert systemctl.calls[-2:] == ["kill --signal=SIGKILL telegraf", "restart telegraf"]


def test_an_agent_that_stops_on_sigterm_is_not_killed():
    systemctl = FakeSystemctl(active_polls=2)
    wd.restart("telegraf", 5, run=systemctl, sleep=lambda s: None)
    assert "kill --signal=SIGKILL telegraf" not in systemctl.calls
    assert systemctl.calls[-1] == "restart telegraf"


def test_the_scripts_default_stall_is_the_roles():
    import yaml

    defaults = yaml.safe_load((ROOT / "roles" / "telegraf" / "defaults" / "main.yml").read_text())
    args = wd.build_parser().parse_args(["--stats", "s.json", "--state", "state.json"])
    assert args.stall_seconds == defaults["telegraf_kafka_watchdog_stall_seconds"]
