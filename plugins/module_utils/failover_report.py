# Copyright: Isobar contributors
# Apache-2.0
"""The broker failover drill's report, verdicts and timeline (playbooks/broker-failover.yml).

Pure functions of what the drill measured (marks, traffic summaries and per-phase analyses, cluster views,
elections, SCRAM probes), so that every figure and check can be unit tested without a cluster. The action plugin
isobar.pipeline.failover_drill_report calls them on the controller; Jinja only passes the inputs in and prints.
"""
from __future__ import annotations

import datetime
import json

CLOCK_NOTE = (
    "Durations from marks (stop, leaders moved, full ISR) are taken on the controller, polling the cluster every "
    "{delay} s plus the time a kafka_cluster_info call takes: upper bounds. Ack waits and the unavailability "
    "window come from the traffic host's own send/ack timestamps."
)

# Size of the timeline picture (inches at DPI): tests check the PNG's dimensions against these.
TIMELINE_SIZE_IN = (12.0, 8.0)
TIMELINE_DPI = 100
# Marks drawn as vertical lines, with their labels (the marks the drill records while a broker is down).
TIMELINE_MARKS = {
    "stop_begin": "stop",
    "leaders_moved": "leaders moved",
    "start_begin": "restart",
    "full_isr": "full ISR",
    "election_done": "election",
}


def _span(marks: dict, end: str, begin: str):
    """Seconds between two marks, rounded like the drill always did (None when one is missing)."""
    if end in marks and begin in marks:
        return round(marks[end] - marks[begin], 1)
    return None


def _get(mapping, *keys, default=None):
    """mapping[k1][k2]... or default when a level is missing (Jinja's `a.b.c | default(x)`)."""
    value = mapping
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def _text(value) -> str:
    """A value inside a sentence, as Ansible renders it: None is empty (the drill's reports always read so)."""
    return "" if value is None else str(value)


def _counts(counter: dict | None) -> str:
    """'KindA x3, KindB x1', or 'none'."""
    return ", ".join(f"{kind} x{count}" for kind, count in (counter or {}).items()) or "none"


def two_down_verdict(broker: str, second_broker: str, summary: dict, phases: dict) -> str:
    """One sentence on the two-brokers-down phase: refused sends, and whether anything acknowledged was lost."""
    if not summary:
        return "not measured (the drill stopped earlier)."
    down = phases.get("two_down", {}) if isinstance(phases, dict) else {}
    lost = summary.get("acked_missing_from_topic", 1) == 0 and summary.get("consumer_caught_up", False)
    read_back = summary.get("acked", 0) - summary.get("acked_missing_from_topic", 0)
    return (
        f"With {broker} and {second_broker} down (min.insync.replicas 2), {down.get('failed', '?')} of "
        f"{down.get('sent', '?')} acks=all sends got errors ({_counts(down.get('errors'))}; broker errors retried "
        f"before: {_counts(summary.get('broker_errors_retried'))}). {summary.get('acked', '?')} messages of the run "
        f"were acknowledged and {read_back} of them were read back: "
        + ("no silent loss." if lost else "ACKNOWLEDGED MESSAGES ARE MISSING.")
    )


def figures(drill: dict, state: dict, finished: str | None = None) -> dict:
    """The report's figures (everything but the checks) from the drill's settings and what it recorded."""
    marks, summaries, phases = state.get("marks") or {}, state.get("summaries") or {}, state.get("phases") or {}
    snapshots, elections = state.get("snapshots") or {}, state.get("elections") or {}
    m1, s1, p1 = marks.get("one_down", {}), summaries.get("one_down", {}), phases.get("one_down", {})
    m2, s2, p2 = marks.get("two_down", {}), summaries.get("two_down", {}), phases.get("two_down", {})
    error = state.get("error") or ""
    one = {
        "stop_took_s": _span(m1, "stop_done", "stop_begin"),
        "all_partitions_led_after_s": _span(m1, "leaders_moved", "stop_begin"),
        "unavailability_window_s": _get(p1, "one_down", "window_s"),
        "unavailability": {
            "stall_threshold_s": float(drill["stall_threshold"]),
            "stalled_sends": _get(p1, "one_down", "stalled_sends"),
            "stalled_partitions": _get(p1, "one_down", "stalled_partitions"),
            "max_ack_wait_s": _get(p1, "one_down", "max_ack_wait_s"),
            "baseline_p99_ack_wait_s": _get(p1, "baseline", "p99_ack_wait_s"),
            "recovery_max_ack_wait_s": _get(p1, "recovery", "max_ack_wait_s"),
        },
        "down_for_s": _span(m1, "start_begin", "stop_begin"),
        "under_replicated_partitions": {
            "after_failover": _get(snapshots, "one_down", "under_replicated"),
            "before_restart": _get(snapshots, "one_down_end", "under_replicated"),
            "of_partitions": _get(snapshots, "one_down", "partitions"),
        },
        "time_to_full_isr_s": _span(m1, "full_isr", "start_begin"),
        "leader_election": elections.get("one_down"),
        "leaders_per_broker": {
            "before": _get(snapshots, "before", "leaders_per_broker"),
            "during": _get(snapshots, "one_down", "leaders_per_broker"),
            "after_restart": _get(snapshots, "one_down_restarted", "leaders_per_broker"),
            "after_election": _get(snapshots, "after_election_one_down", "leaders_per_broker"),
        },
        "controller": {
            "before": _get(snapshots, "before", "controller_id"),
            "during": _get(snapshots, "one_down", "controller_id"),
            "after": _get(snapshots, "after_election_one_down", "controller_id"),
        },
        "messages": s1 or None,
        "phases": p1 or None,
        "marks": m1,
    }
    if drill["two_down"]:
        first_error_at = _get(p2, "two_down", "first_error_at")
        two = {
            "enabled": True,
            "brokers": [drill["broker"], drill["second_broker"]],
            "held_down_s": _span(m2, "start_begin", "stop_begin"),
            "producer_delivery_timeout_s": float(drill["two_down_delivery_timeout"]),
            "cluster_while_down": snapshots.get("two_down"),
            "sent_while_down": _get(p2, "two_down", "sent"),
            "acked_while_down": _get(p2, "two_down", "acked"),
            "failed_while_down": _get(p2, "two_down", "failed"),
            "errors_while_down": _get(p2, "two_down", "errors"),
            "broker_errors_retried": s2.get("broker_errors_retried"),
            "first_error_after_s": round(first_error_at - m2["stop_begin"], 1) if first_error_at else None,
            "acked_missing": s2.get("acked_missing_from_topic"),
            "failed_but_written": s2.get("failed_but_written"),
            # Longest time from a send to its ack or error (kafka-python holds sends back, past their delivery
            # timeout, while it cannot get a new producer id from a cluster without a KRaft quorum).
            "longest_send_wait_s": s2.get("longest_send_wait_s"),
            "time_to_full_isr_s": _span(m2, "full_isr", "start_begin"),
            "leader_election": elections.get("two_down"),
            "verdict": two_down_verdict(drill["broker"], drill["second_broker"], s2, p2),
            "messages": s2 or None,
            "phases": p2 or None,
            "marks": m2,
        }
    else:
        two = {"enabled": False}
    return {
        "drill": "broker-failover",
        "started": drill["started"],
        "finished": finished or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "broker": drill["broker"],
        "node_id": int(drill["node_id"]),
        "mode": drill["mode"],
        "host_stop_timeout_s": int(drill["host_stop_timeout"]) if drill["mode"] == "host" else None,
        "driver": drill["driver"],
        "traffic_host": drill["traffic_host"],
        "topic": drill["topic"],
        "partitions": int(drill["partitions"]),
        "rate_per_s": float(drill["rate"]),
        "error": error if error else None,
        "clock_note": CLOCK_NOTE.format(delay=drill["poll_delay"]),
        "one_broker_down": one,
        "two_brokers_down": two,
        "scram_logins_after_restarts": state.get("scram_checks") or {},
        "final": snapshots.get("final"),
        "cleanup_problems": state.get("cleanup_problems") or [],
    }


def _check(name: str, ok, detail) -> dict:
    return {"name": name, "ok": bool(ok), "detail": detail}


def checks(drill: dict, state: dict, report: dict) -> list[dict]:
    """Every check of the drill, in the report's order; each has a name, ok and a detail for the operator."""
    summaries, phases = state.get("summaries") or {}, state.get("phases") or {}
    snapshots, elections = state.get("snapshots") or {}, state.get("elections") or {}
    scram = state.get("scram_checks") or {}
    s1, s2, p2 = summaries.get("one_down", {}), summaries.get("two_down", {}), phases.get("two_down", {})
    final = snapshots.get("final") or {}
    r1 = report["one_broker_down"]
    window = r1["unavailability_window_s"]
    result = [
        _check(
            "one_down.zero_loss",
            "acked" in s1 and s1["acked"] == s1.get("consumed") and s1.get("acked_missing_from_topic") == 0
            and s1.get("consumer_caught_up") and s1["acked"] > 0,
            f"sent {s1.get('sent', '?')}, acked {s1.get('acked', '?')}, consumed {s1.get('consumed', '?')}, "
            f"acked but not read back {s1.get('acked_missing_from_topic', '?')}",
        ),
        _check(
            "one_down.no_failed_sends",
            "failed" in s1 and s1["failed"] == 0 and s1.get("unacknowledged") == 0,
            f"failed {s1.get('failed', '?')} {s1.get('errors', {})}, unacknowledged {s1.get('unacknowledged', '?')}",
        ),
        _check(
            "one_down.window_within_bound",
            window is not None and window <= float(drill["max_window_s"]),
            f"window {_text(window)} s (bound {drill['max_window_s']} s)",
        ),
        _check(
            "one_down.all_partitions_led",
            r1["all_partitions_led_after_s"] is not None,
            f"every partition led by a running broker {_text(r1['all_partitions_led_after_s'])} s after the stop began",
        ),
        _check(
            "one_down.full_isr_restored",
            r1["time_to_full_isr_s"] is not None,
            f"{_text(r1['time_to_full_isr_s'])} s after the restart began",
        ),
        _check(
            "one_down.leadership_balanced",
            _get(elections, "one_down", "balanced", default=False)
            and _get(snapshots, "after_election_one_down", "preferred_leader_mismatches", default=1) == 0,
            f"leaders per broker after the election {_text(r1['leaders_per_broker']['after_election'])}",
        ),
    ]
    if drill["two_down"]:
        two_isr = report["two_brokers_down"]["time_to_full_isr_s"]
        result += [
            _check(
                "two_down.acks_all_refused_with_errors",
                _get(p2, "two_down", "failed", default=0) > 0,
                _get(p2, "two_down", "errors", default={}),
            ),
            _check(
                "two_down.zero_loss",
                "acked" in s2 and s2.get("acked_missing_from_topic") == 0 and s2.get("consumer_caught_up")
                and s2.get("unacknowledged") == 0,
                f"acked {s2.get('acked', '?')}, acked but not read back {s2.get('acked_missing_from_topic', '?')}, "
                f"unacknowledged {s2.get('unacknowledged', '?')}",
            ),
            _check("two_down.full_isr_restored", two_isr is not None, f"{_text(two_isr)} s after the restart began"),
        ]
    repaired = any(check.get("repaired") for check in scram.values())
    result += [
        _check(
            "restarts.brokers_accept_logins",
            len(scram) > 0
            and not any(check.get("rejecting_brokers") for check in scram.values())
            and all(check.get("rc") == 0 for check in scram.values()),
            "; ".join(f"{when}: brokers rejecting the admin {check.get('rejecting_brokers')}"
                      for when, check in scram.items())
            + ("; credentials were re-asserted" if repaired else ""),
        ),
        _check(
            "final.cluster_healthy",
            final.get("healthy", False) and len(final.get("brokers", [])) == int(drill["broker_count"])
            and final.get("under_replicated", 1) == 0 and final.get("offline", 1) == 0,
            f"brokers {final.get('brokers', [])}, under-replicated {final.get('under_replicated', '?')}, "
            f"problems {final.get('problems', [])}",
        ),
        _check(
            "final.leadership_balanced",
            final.get("preferred_leader_mismatches", 1) == 0,
            f"leaders per broker {final.get('leaders_per_broker', {})}",
        ),
    ]
    return result


def build_report(drill: dict, state: dict, finished: str | None = None) -> dict:
    """Figures + checks + passed: the drill's JSON report."""
    report = figures(drill, state, finished)
    report["checks"] = checks(drill, state, report)
    report["passed"] = all(check["ok"] for check in report["checks"])
    return report


def summary_lines(report: dict, report_file: str) -> list[str]:
    """What the drill prints at the end (the report has everything; this is the operator's first look)."""
    one = report["one_broker_down"]
    messages = one["messages"] or {}
    leaders = one["leaders_per_broker"]
    urp = one["under_replicated_partitions"]
    two = report["two_brokers_down"]
    return [
        f"Failover drill: {report['broker']} ({report['mode']}), report {report_file}",
        f"One down: window {_text(one['unavailability_window_s'])} s (max ack wait {_text(one['unavailability']['max_ack_wait_s'])} s, "
        f"stalled partitions {_text(one['unavailability']['stalled_partitions'])}), every partition led after "
        f"{_text(one['all_partitions_led_after_s'])} s, URP while down {_text(urp['after_failover'])}/{_text(urp['of_partitions'])}, "
        f"full ISR {_text(one['time_to_full_isr_s'])} s after the restart",
        f"Messages: sent {_text(messages.get('sent', '?'))}, acked {_text(messages.get('acked', '?'))}, "
        f"consumed {_text(messages.get('consumed', '?'))}, failed {_text(messages.get('failed', '?'))}",
        f"Leaders per broker: before {_text(leaders['before'])}, during {_text(leaders['during'])}, after {_text(leaders['after_election'])}",
        f"Two down: {_text(two.get('verdict', 'not run'))}",
        "Checks: " + ", ".join(f"{check['name']}={check['ok']}" for check in report["checks"]),
    ]


# --- timeline -------------------------------------------------------------------------------------------


def load_events(path: str) -> list[dict]:
    """Events of a traffic run (JSON lines; a line cut by a crash is skipped, like tools/kafka_load.py does)."""
    events = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
    return events


def run_timeline(run: str, marks: dict, snapshots: dict, events: list[dict]) -> dict:
    """What the picture of one traffic run shows, in seconds since the run started (its run_start mark, else its
    first event): each acknowledged send (when sent, how long its ack took), each failed send (when, which error),
    the drill's marks, and the cluster views taken during the run (leaders per broker, under-replicated)."""
    outcomes = [e for e in events if e.get("e") in ("ack", "err") and "sent" in e]
    origin = marks.get("run_start", min((e["sent"] for e in outcomes), default=0.0))
    end = marks.get("run_end", max((e["t"] for e in outcomes), default=origin))
    views = []
    for name, view in sorted(snapshots.items(), key=lambda item: float(item[1].get("at") or 0)):
        at = float(view.get("at") or 0)
        if origin <= at <= end:
            views.append({
                "name": name, "t": round(at - origin, 3), "answered": bool(view.get("answered")),
                "under_replicated": view.get("under_replicated"),
                "leaders_per_broker": view.get("leaders_per_broker") or {},
            })
    return {
        "run": run,
        "origin": origin,
        "acks": [[round(e["sent"] - origin, 3), round(e["t"] - e["sent"], 3)]
                 for e in sorted(outcomes, key=lambda e: e["sent"]) if e["e"] == "ack"],
        "errors": [[round(e["sent"] - origin, 3), e.get("kind", "?")]
                   for e in sorted(outcomes, key=lambda e: e["sent"]) if e["e"] == "err"],
        "marks": {name: round(marks[name] - origin, 3) for name in TIMELINE_MARKS if name in marks},
        "cluster_views": views,
    }


def timeline(report: dict, events_by_run: dict[str, list[dict]], snapshots: dict | None = None) -> dict:
    """The timeline of every traffic run of the report whose events are known (one_down, then two_down)."""
    snapshots = snapshots or {}
    runs = []
    for run, section in (("one_down", "one_broker_down"), ("two_down", "two_brokers_down")):
        if run in events_by_run:
            marks = report.get(section, {}).get("marks") or {}
            runs.append(run_timeline(run, marks, snapshots, events_by_run[run]))
    return {
        "broker": report.get("broker"), "mode": report.get("mode"), "passed": report.get("passed"),
        "size_px": [int(TIMELINE_SIZE_IN[0] * TIMELINE_DPI), int(TIMELINE_SIZE_IN[1] * TIMELINE_DPI)],
        "runs": runs,
    }


def render_timeline(data: dict, path: str) -> None:
    """Draw the timeline as a PNG of data['size_px']: per run, the ack wait of every send over time (failed sends
    in red at the top) with the drill's marks, and under it the leaders per broker and the under-replicated
    partitions of each cluster view. Needs matplotlib (requirements.txt), imported here only."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    runs = data["runs"] or [{"run": "no traffic run", "acks": [], "errors": [], "marks": {}, "cluster_views": []}]
    figure, axes = pyplot.subplots(2, len(runs), figsize=TIMELINE_SIZE_IN, dpi=TIMELINE_DPI, squeeze=False,
                                   sharex="col")
    try:
        for column, run in enumerate(runs):
            waits, cluster = axes[0][column], axes[1][column]
            if run["acks"]:
                waits.scatter([a[0] for a in run["acks"]], [a[1] for a in run["acks"]], s=4, color="tab:blue",
                              label=f"acked ({len(run['acks'])})")
            top = max([a[1] for a in run["acks"]] + [1.0])
            if run["errors"]:
                waits.scatter([e[0] for e in run["errors"]], [top * 1.05] * len(run["errors"]), s=12, marker="x",
                              color="red", label=f"failed ({len(run['errors'])})")
            for axis in (waits, cluster):
                for name, at in run["marks"].items():
                    axis.axvline(at, color="grey", linestyle="--", linewidth=0.8)
                    if axis is waits:
                        axis.annotate(TIMELINE_MARKS[name], (at, 1.0), xycoords=("data", "axes fraction"),
                                      rotation=90, va="top", ha="right", fontsize=7)
            waits.set_title(f"{run['run']}: ack wait per send ({data.get('broker')}, {data.get('mode')})")
            waits.set_ylabel("ack wait (s)")
            if run["acks"] or run["errors"]:
                waits.legend(loc="center right", fontsize=7)
            # A view the cluster did not answer (no quorum) has no figures to draw.
            views = [view for view in run["cluster_views"] if view["answered"]]
            brokers = sorted({b for view in views for b in view["leaders_per_broker"]}, key=str)
            times = [view["t"] for view in views]
            for broker in brokers:
                cluster.step(times, [view["leaders_per_broker"].get(broker, 0) for view in views],
                             where="post", marker="o", label=f"leaders on broker {broker}")
            if times:
                cluster.step(times, [view["under_replicated"] or 0 for view in views], where="post",
                             marker="s", color="black", linestyle=":", label="under-replicated partitions")
                cluster.legend(loc="best", fontsize=7)
            cluster.set_xlabel("seconds since the traffic started")
            cluster.set_ylabel("partitions")
        figure.tight_layout()
        figure.savefig(path, format="png", dpi=TIMELINE_DPI, metadata={"Software": None})
    finally:
        pyplot.close(figure)
