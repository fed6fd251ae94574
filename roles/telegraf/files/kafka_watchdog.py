#!/usr/bin/python3
"""Restart Telegraf when its Kafka output hangs (run by telegraf-watchdog.timer, as root).

Sarama, the Kafka client inside Telegraf, can block a write for good after a broker restart
(IBM/sarama#2377; seen in the lab during rolling restarts): the agent then logs nothing, sends nothing
and keeps buffering. A failing write (Kafka down) is different: the error counters move.

Telegraf writes its own internal_write statistics to a JSON lines file (an outputs.file the role adds).
Each run reads the newest sample of the watched output and compares it with the previous run's:
metrics waiting in the buffer while neither metrics_written nor errors moved is a stall; a stall lasting
--stall-seconds restarts the service. Standard library only.

    kafka_watchdog.py --stats /var/lib/telegraf/internal_write.json --state /var/lib/telegraf-watchdog/state.json
"""
import argparse
import json
import os
import subprocess
import sys
import time


def newest_sample(path, output, max_bytes=262144):
    """The latest internal_write record of the output in the JSON lines file, or None."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            metric = json.loads(line)
        except ValueError:
            continue
        if metric.get("name") == "internal_write" and (metric.get("tags") or {}).get("output") == output:
            fields = metric.get("fields") or {}
            return {"time": metric.get("timestamp", 0), "written": fields.get("metrics_written", 0),
                    "errors": fields.get("errors", 0) + fields.get("write_errors", 0),
                    "buffered": fields.get("buffer_size", 0)}
    return None


def decide(previous, sample, now, stall_seconds, stale_seconds):
    """(action, new state): action is "ok", "wait" or "restart"."""
    if sample is None:
        return "ok", None
    if now - sample["time"] > stale_seconds:
        # No fresh statistics although the service runs: the agent itself is stuck.
        since = (previous or {}).get("stalled_since") or now
        state = dict(sample, stalled_since=since)
        return ("restart" if now - since >= stall_seconds else "wait"), state
    moved = (previous is None or sample["written"] != previous.get("written")
             or sample["errors"] != previous.get("errors") or sample["time"] < previous.get("time", 0))
    if moved or sample["buffered"] == 0:
        return "ok", dict(sample, stalled_since=None)
    since = previous.get("stalled_since") or previous.get("time") or now
    state = dict(sample, stalled_since=since)
    return ("restart" if now - since >= stall_seconds else "wait"), state


def restart(service, grace_seconds, run=subprocess.run, sleep=time.sleep):
    """Stop the hung agent at once, then start it.

    A plain `systemctl restart` waits the unit's TimeoutStopSec: the agent stops its inputs, then waits for an
    output that will never finish its flush. That wait is only more metrics not collected. SIGTERM first so the
    other outputs (InfluxDB) flush what they hold, SIGKILL after grace_seconds, start again.
    """
    run(["systemctl", "kill", "--signal=SIGTERM", service], check=False)
    for dummy in range(max(grace_seconds, 0) * 4):
        if run(["systemctl", "is-active", "--quiet", service], check=False).returncode != 0:
            break
        sleep(0.25)
    else:
        run(["systemctl", "kill", "--signal=SIGKILL", service], check=False)
    run(["systemctl", "restart", service], check=True)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--output", default="kafka")
    # The role's telegraf_kafka_watchdog_stall_seconds: run by hand, the script behaves like the timer's.
    parser.add_argument("--stall-seconds", type=int, default=60)
    parser.add_argument("--stale-seconds", type=int, default=120)
    parser.add_argument("--service", default="telegraf")
    parser.add_argument("--stop-grace-seconds", type=int, default=5)
    return parser


def main():
    args = build_parser().parse_args()

    try:
        with open(args.state, encoding="utf-8") as handle:
            previous = json.load(handle)
    except (OSError, ValueError):
        previous = None
    active = subprocess.run(["systemctl", "is-active", "--quiet", args.service], check=False).returncode == 0
    if not active:
        previous = None  # stopped on purpose or restarting: start over
    sample = newest_sample(args.stats, args.output) if active else None
    action, state = decide(previous, sample, time.time(), args.stall_seconds, args.stale_seconds)
    if action == "restart":
        print(f"outputs.{args.output} wrote nothing and reported no error for {int(time.time() - state['stalled_since'])} s "
              f"with {state['buffered']} metrics buffered: restarting {args.service}", flush=True)
        restart(args.service, args.stop_grace_seconds)
        state = None
    elif action == "wait":
        print(f"outputs.{args.output} stalled for {int(time.time() - state['stalled_since'])} s", flush=True)
    if state is None:
        try:
            os.unlink(args.state)
        except FileNotFoundError:
            pass
    else:
        tmp = args.state + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        os.replace(tmp, args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
