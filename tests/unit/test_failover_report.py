"""The failover drill's report, checks and timeline (plugins/module_utils/failover_report.py).

The report was computed in Jinja (playbooks/tasks/broker-failover/report.yml, before the drill became the role
failover); the expectations below are what that Jinja produced for the same inputs (checked side by side:
identical JSON for a passing drill, one without its second phase, and one that stopped early).
"""
from __future__ import annotations

import importlib.util
import json
import struct
import zlib
from pathlib import Path

import pytest

from ansible_collections.isobar.pipeline.plugins.action import failover_drill_report as action
from ansible_collections.isobar.pipeline.plugins.module_utils import failover_report as fr


def _load_fixture():
    """The drill inputs next to this file, by path: plain pytest and ansible-test units import test modules under
    different names, so a bare `import failover_drill_fixture` works under one only."""
    spec = importlib.util.spec_from_file_location("failover_drill_fixture", Path(__file__).with_name("failover_drill_fixture.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fx = _load_fixture()


def _checks(report):
    return {check["name"]: check for check in report["checks"]}


def _png_size(path):
    """Width and height from the PNG signature and IHDR chunk (CRC verified): a valid PNG or an assertion."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16:16 + length]
    (crc,) = struct.unpack(">I", data[16 + length:20 + length])
    assert zlib.crc32(kind + body) == crc, "IHDR CRC"
    assert data.endswith(b"IEND\xaeB`\x82"), "truncated PNG"
    return struct.unpack(">II", body[:8])


# --- figures ---------------------------------------------------------------------------------------------


def test_a_passing_drill_passes_every_check_with_its_figures():
    report = fr.build_report(fx.drill(), fx.state(), finished="2026-12-03T06:10:00Z")
    assert report["passed"] is True
    assert all(check["ok"] is True for check in report["checks"])
    one = report["one_broker_down"]
    # Spans of the marks, rounded to 0.1 s like the drill always reported them.
    assert one["stop_took_s"] == 4.3 and one["all_partitions_led_after_s"] == 6.0
    assert one["down_for_s"] == 37.5 and one["time_to_full_isr_s"] == 13.8
    assert one["unavailability_window_s"] == 5.817 and one["unavailability"]["stalled_partitions"] == [1, 4]
    assert one["unavailability"]["baseline_p99_ack_wait_s"] == 0.012
    assert one["under_replicated_partitions"] == {"after_failover": 6, "before_restart": 6, "of_partitions": 6}
    assert one["leaders_per_broker"]["during"] == {"1": 3, "3": 3}
    assert one["controller"] == {"before": 1, "during": 1, "after": 1}
    assert report["node_id"] == 2 and isinstance(report["rate_per_s"], float) and report["host_stop_timeout_s"] == 30
    assert report["error"] is None and report["finished"] == "2026-12-03T06:10:00Z"
    assert "every 1 s plus the time a kafka_cluster_info call takes" in report["clock_note"]
    two = report["two_brokers_down"]
    assert two["enabled"] and two["brokers"] == ["kafka2", "kafka3"] and two["held_down_s"] == 46.0
    assert two["first_error_after_s"] == 15.1 and two["time_to_full_isr_s"] == 24.4
    assert two["verdict"] == (
        "With kafka2 and kafka3 down (min.insync.replicas 2), 2100 of 2300 acks=all sends got errors "
        "(KafkaTimeoutError x2100; broker errors retried before: NotEnoughReplicasError x12). 2500 messages of the "
        "run were acknowledged and 2500 of them were read back: no silent loss."
    )


def test_service_mode_has_no_host_stop_timeout_and_one_phase_has_no_second_section():
    report = fr.build_report(fx.drill(mode="service", two_down=False), fx.state())
    assert report["host_stop_timeout_s"] is None
    assert report["two_brokers_down"] == {"enabled": False}
    assert not any(name.startswith("two_down.") for name in _checks(report))
    assert list(_checks(report))[-3:] == ["restarts.brokers_accept_logins", "final.cluster_healthy",
                                          "final.leadership_balanced"]


def test_a_drill_that_stopped_early_reports_nulls_and_fails_the_checks_it_could_not_make():
    state = fx.state()
    state.update(summaries={}, phases={}, marks={"one_down": {"run_start": fx.T0, "stop_begin": fx.T0 + 10}},
                 error="One down | Stop the broker: kafka2: boom")
    report = fr.build_report(fx.drill(), state)
    checks = _checks(report)
    assert report["passed"] is False and report["error"] == "One down | Stop the broker: kafka2: boom"
    one = report["one_broker_down"]
    assert one["stop_took_s"] is None and one["messages"] is None and one["phases"] is None
    assert checks["one_down.zero_loss"] == {
        "name": "one_down.zero_loss", "ok": False,
        "detail": "sent ?, acked ?, consumed ?, acked but not read back ?"}
    # None inside a sentence reads as nothing, as the Jinja report rendered it.
    assert checks["one_down.window_within_bound"]["detail"] == "window  s (bound 60 s)"
    assert checks["one_down.full_isr_restored"]["detail"] == " s after the restart began"
    assert not checks["two_down.acks_all_refused_with_errors"]["ok"]
    assert checks["two_down.acks_all_refused_with_errors"]["detail"] == {}
    assert report["two_brokers_down"]["verdict"] == "not measured (the drill stopped earlier)."
    assert report["two_brokers_down"]["first_error_after_s"] is None


def test_the_window_bound_decides_the_window_check():
    state = fx.state()
    state["phases"]["one_down"]["one_down"]["window_s"] = 61.2
    checks = _checks(fr.build_report(fx.drill(), state))
    assert checks["one_down.window_within_bound"] == {
        "name": "one_down.window_within_bound", "ok": False, "detail": "window 61.2 s (bound 60 s)"}
    state["phases"]["one_down"]["one_down"]["window_s"] = 60.0
    assert _checks(fr.build_report(fx.drill(), state))["one_down.window_within_bound"]["ok"]


def test_lost_acknowledged_messages_fail_zero_loss_and_say_so():
    state = fx.state()
    state["summaries"]["one_down"].update(acked_missing_from_topic=3, consumed=3497)
    state["summaries"]["two_down"]["acked_missing_from_topic"] = 2
    report = fr.build_report(fx.drill(), state)
    checks = _checks(report)
    assert not checks["one_down.zero_loss"]["ok"]
    assert checks["one_down.zero_loss"]["detail"] == "sent 3500, acked 3500, consumed 3497, acked but not read back 3"
    assert not checks["two_down.zero_loss"]["ok"]
    assert report["two_brokers_down"]["verdict"].endswith(
        "2500 messages of the run were acknowledged and 2498 of them were read back: ACKNOWLEDGED MESSAGES ARE MISSING.")


def test_failed_sends_with_one_broker_down_fail_the_drill():
    state = fx.state()
    state["summaries"]["one_down"].update(failed=2, errors={"KafkaTimeoutError": 2})
    checks = _checks(fr.build_report(fx.drill(), state))
    assert checks["one_down.no_failed_sends"] == {
        "name": "one_down.no_failed_sends", "ok": False,
        "detail": "failed 2 {'KafkaTimeoutError': 2}, unacknowledged 0"}


def test_two_down_without_errors_means_acks_all_was_not_refused():
    state = fx.state()
    state["phases"]["two_down"]["two_down"].update(failed=0, errors={})
    checks = _checks(fr.build_report(fx.drill(), state))
    assert not checks["two_down.acks_all_refused_with_errors"]["ok"]


def test_a_broker_rejecting_logins_fails_the_restart_check_and_a_repair_is_named():
    state = fx.state()
    state["scram_checks"]["one_down_restarted"].update(rejecting_brokers=[2], repaired=["admin"])
    check = _checks(fr.build_report(fx.drill(), state))["restarts.brokers_accept_logins"]
    assert not check["ok"]
    assert check["detail"] == (
        "one_down_restarted: brokers rejecting the admin [2]; two_down_restarted: brokers rejecting the admin []; "
        "restore: brokers rejecting the admin []; credentials were re-asserted")
    state = fx.state()
    state["scram_checks"] = {}
    assert not _checks(fr.build_report(fx.drill(), state))["restarts.brokers_accept_logins"]["ok"]
    state["scram_checks"] = {"restore": {"rc": 1, "rejecting_brokers": None}}
    check = _checks(fr.build_report(fx.drill(), state))["restarts.brokers_accept_logins"]
    assert not check["ok"] and check["detail"] == "restore: brokers rejecting the admin None"


def test_the_final_view_must_have_every_broker_nothing_under_replicated_and_preferred_leaders():
    state = fx.state()
    assert _checks(fr.build_report(fx.drill(broker_count=4), state))["final.cluster_healthy"]["ok"] is False
    state["snapshots"]["final"].update(under_replicated=1, preferred_leader_mismatches=2)
    checks = _checks(fr.build_report(fx.drill(), state))
    assert not checks["final.cluster_healthy"]["ok"] and not checks["final.leadership_balanced"]["ok"]
    assert checks["final.cluster_healthy"]["detail"] == "brokers [1, 2, 3], under-replicated 1, problems []"
    del state["snapshots"]["final"]
    checks = _checks(fr.build_report(fx.drill(), state))
    assert checks["final.cluster_healthy"]["detail"] == "brokers [], under-replicated ?, problems []"
    assert not checks["final.leadership_balanced"]["ok"]


def test_an_unbalanced_election_fails_the_leadership_check():
    state = fx.state()
    state["elections"]["one_down"]["balanced"] = False
    assert not _checks(fr.build_report(fx.drill(), state))["one_down.leadership_balanced"]["ok"]
    state = fx.state()
    state["snapshots"]["after_election_one_down"]["preferred_leader_mismatches"] = 1
    assert not _checks(fr.build_report(fx.drill(), state))["one_down.leadership_balanced"]["ok"]


def test_summary_lines_name_the_window_the_verdict_and_every_check():
    report = fr.build_report(fx.drill(), fx.state())
    lines = fr.summary_lines(report, "/tmp/r.json")
    assert lines[0] == "Failover drill: kafka2 (host), report /tmp/r.json"
    assert lines[1].startswith("One down: window 5.817 s (max ack wait 5.9 s, stalled partitions [1, 4])")
    assert lines[2] == "Messages: sent 3500, acked 3500, consumed 3500, failed 0"
    assert lines[4] == "Two down: " + report["two_brokers_down"]["verdict"]
    assert lines[5].count("=True") == len(report["checks"]) == 12


# --- timeline ------------------------------------------------------------------------------------------


def test_the_timeline_holds_every_send_and_mark_of_each_run():
    events = {run: fx.events(run) for run in ("one_down", "two_down")}
    report = fr.build_report(fx.drill(), fx.state())
    data = fr.timeline(report, events, fx.STATE["snapshots"])
    runs = {run["run"]: run for run in data["runs"]}
    for name, run in runs.items():
        acked = [e for e in events[name] if e["e"] == "ack"]
        failed = [e for e in events[name] if e["e"] == "err"]
        assert len(run["acks"]) == len(acked) and len(run["errors"]) == len(failed)
        # Times are relative to the run's start: the first send at 0, the waits as the events say.
        assert run["acks"][0] == [0.0, 0.01]
        assert max(wait for _, wait in run["acks"]) == pytest.approx(
            max(e["t"] - e["sent"] for e in acked), abs=0.001)
    assert runs["one_down"]["marks"] == {"stop_begin": 10.0, "leaders_moved": 16.04, "start_begin": 47.5,
                                         "full_isr": 61.27, "election_done": 70.0}
    assert not runs["one_down"]["errors"]
    assert {kind for _, kind in runs["two_down"]["errors"]} == {"KafkaTimeoutError"}
    assert all(10.0 <= at <= 56.0 for at, _ in runs["two_down"]["errors"])  # only while both were down
    # Cluster views taken during each run, in time order ("before" precedes the traffic, "final" follows it).
    assert [view["name"] for view in runs["one_down"]["cluster_views"]] == [
        "one_down", "one_down_end", "one_down_restarted", "after_election_one_down"]
    assert runs["one_down"]["cluster_views"][0] == {
        "name": "one_down", "t": 16.5, "answered": True, "under_replicated": 6, "leaders_per_broker": {"1": 3, "3": 3}}
    assert data["size_px"] == [1200, 800]


def test_the_timeline_png_is_a_valid_picture_of_the_expected_size_that_shows_the_failures(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is in requirements.txt; the drill draws its timeline with it")
    import numpy
    from PIL import Image

    events = {run: fx.events(run) for run in ("one_down", "two_down")}
    data = fr.timeline(fr.build_report(fx.drill(), fx.state()), events, fx.STATE["snapshots"])
    path = tmp_path / "timeline.png"
    fr.render_timeline(data, str(path))
    assert _png_size(path) == (1200, 800)

    def red(picture):
        """Pure-ish red pixels: only the failed sends are drawn red."""
        pixels = numpy.asarray(Image.open(picture).convert("RGB")).astype(int)
        return int(((pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)).sum())

    assert red(path) > 100
    # Without the failed sends the picture has no red: the marks drawn are the events' own.
    for run in data["runs"]:
        run["errors"] = []
    clean = tmp_path / "clean.png"
    fr.render_timeline(data, str(clean))
    assert _png_size(clean) == (1200, 800) and red(clean) == 0


def test_a_report_without_events_still_gets_a_picture(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is in requirements.txt")
    data = fr.timeline(fr.build_report(fx.drill(), fx.state()), {})
    assert data["runs"] == []
    fr.render_timeline(data, str(tmp_path / "empty.png"))
    assert _png_size(tmp_path / "empty.png") == (1200, 800)


# --- the action plugin's files ------------------------------------------------------------------------


def test_side_files_sit_next_to_the_report():
    paths = action.side_files("/r/failover-report.json")
    assert paths["events"]["two_down"] == "/r/failover-report.two_down.events.jsonl"
    assert paths["timeline_png"] == "/r/failover-report.timeline.png"


def test_write_is_atomic_and_reports_no_change_for_the_same_content(tmp_path):
    target = tmp_path / "sub" / "report.json"
    assert action._write(str(target), b"{}\n") is True
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert action._write(str(target), b"{}\n") is False
    assert action._write(str(target), b"{\"a\": 1}\n") is True
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]
