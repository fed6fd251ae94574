# Copyright: Isobar contributors
# Apache-2.0
"""The live pipeline: the producer and inject services (isobar-producer.service, isobar-inject.service).

    python -m ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_live producer --config FILE
    python -m ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_live inject --config FILE

producer: the influx_to_kafka run (pipeline_publish: journaled batches, crash recovery, exactly once) again every
``poll_interval`` seconds, its clients kept open, holding the checkpoint's lock for as long as it runs (a one-shot
influx_to_kafka on the same checkpoint is refused and told why). A failed poll (InfluxDB or Kafka away, a token
revoked) is logged, recorded in the status file, and retried with a growing pause; the next successful poll
completes the batch in flight exactly like the next module run would.

inject: N simulated stations, one point each every ``interval`` (whole seconds) at the current tick, values
from weather_simulation (a pure function of seed, station and time): a restart re-writes the same points.

Settings and secrets come from a JSON file (mode 0600/0640, never the command line). The status file (JSON)
says what the service did last: cursor, lag, last error, counters.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time

from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import InfluxDBApi, InfluxDBError, parse_duration
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import describe_exception
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_senders import CLIENTS, DEFAULT_CLIENT
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_checkpoint import CheckpointBusy, CheckpointStore
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_producer import PipelineError, ns_to_rfc3339
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_publish import Run, execute, summary, validate
from ansible_collections.isobar.pipeline.plugins.module_utils.weather_simulation import _station_profile, line, simulate

LOG = logging.getLogger("isobar-live")
PRODUCER_HOLDER = "the isobar-producer service (systemctl stop isobar-producer before a one-shot run)"
EXIT_CONFIG = 2  # bad settings: systemd must not restart in a loop (RestartPreventExitStatus=2)
STATUS_EVERY = 1.0  # seconds between two status writes when nothing else happened

# Settings of each service: name -> (type, default; None = required). Types are checked before anything runs.
_CONNECTION = {
    "url": (str, None), "token": (str, None), "org": (str, None), "ca_path": (str, ""),
    "validate_certs": (bool, True), "timeout": (int, 30), "bucket": (str, None), "status_path": (str, None),
}
PRODUCER_SETTINGS = dict(_CONNECTION, **{
    "measurement": (str, "weather"), "key_tag": (str, "station"), "topic": (str, None),
    "checkpoint_path": (str, None), "start": (str, "1970-01-01T00:00:00Z"),
    # InfluxDB stores each field of a point as its own series: a poll racing a write can see half a point.
    # Points younger than stop_lag are left for the next poll, so it must exceed the writers' delay.
    "stop_lag": (str, "250ms"),
    "batch_size": (int, 5000), "compression": (str, "none"), "kafka_client": (str, DEFAULT_CLIENT),
    "bootstrap_servers": (list, None), "sasl_username": (str, None), "sasl_password": (str, None),
    "sasl_mechanism": (str, "SCRAM-SHA-512"), "ssl_cafile": (str, None), "ssl_check_hostname": (bool, True),
    "api_version": (str, "4.0"), "connect_timeout": (int, 20), "request_timeout": (int, 30),
    "poll_interval": (float, 0.1), "max_backoff": (float, 30.0),
})
INJECT_SETTINGS = dict(_CONNECTION, **{
    "measurement": (str, "weather"), "stations": (int, 5), "station_prefix": (str, "station-"),
    "interval": (str, "1s"), "seed": (int, 42), "max_backoff": (float, 30.0),
})
POLL_RANGE = (0.05, 60.0)


class ConfigError(Exception):
    """The settings file is unusable; the message lists every problem."""


class ServiceFailure(Exception):
    """What a module would have reported with fail_json."""


class ServiceModule:
    """The part of AnsibleModule that pipeline_publish and the shared clients use; fail_json raises."""

    check_mode = False
    _diff = False

    def __init__(self, params):
        self.params = params

    def fail_json(self, msg, **_ignored):
        raise ServiceFailure(msg)

    def warn(self, msg):
        LOG.warning("%s", msg)


def load_settings(path, spec):
    """The settings file as a dict of typed values with defaults; raises ConfigError listing every problem."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc}") from None
    problems = []
    if st.st_mode & 0o027:
        problems.append(f"{path} is mode {st.st_mode & 0o777:04o}: it holds secrets, make it 0600 or 0640")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    unknown = sorted(set(raw) - set(spec))
    if unknown:
        problems.append(f"unknown settings {unknown}")
    settings = {}
    for name, (kind, default) in spec.items():
        value = raw.get(name, default)
        if value is None:
            problems.append(f"{name} is required")
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{name} must be {kind.__name__}, got {type(value).__name__}")
            continue
        settings[name] = value
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return settings


def check_producer_settings(settings):
    """Service-only checks (the rest is influx_to_kafka's own validation). Returns a list of problems."""
    problems = []
    low, high = POLL_RANGE
    if not low <= settings["poll_interval"] <= high:
        problems.append(f"poll_interval must be between {low} and {high} seconds, got {settings['poll_interval']}")
    if not 1 <= settings["max_backoff"] <= 3600:
        problems.append(f"max_backoff must be between 1 and 3600 seconds, got {settings['max_backoff']}")
    if settings["kafka_client"] not in CLIENTS:
        problems.append(f"kafka_client must be one of {', '.join(CLIENTS)}, got {settings['kafka_client']!r}")
    if settings["compression"] not in ("none", "gzip"):
        problems.append(f"compression must be none or gzip, got {settings['compression']!r}")
    if settings["sasl_mechanism"] not in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        problems.append(f"sasl_mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512, got {settings['sasl_mechanism']!r}")
    return problems


def check_inject_settings(settings):
    """Returns (interval in whole seconds, list of problems)."""
    problems, interval = [], 0
    try:
        interval_ns = parse_duration(settings["interval"], "interval")
        if interval_ns < 10**9 or interval_ns % 10**9:
            problems.append(f"interval {settings['interval']!r} must be whole seconds, at least 1s")
        interval = interval_ns // 10**9
    except ValueError as exc:
        problems.append(str(exc))
    if not 1 <= settings["stations"] <= 10000:
        problems.append(f"stations must be between 1 and 10000, got {settings['stations']}")
    if any(c in settings["station_prefix"] + settings["measurement"] for c in " ,=\"\\\n"):
        problems.append("measurement and station_prefix must not contain spaces, commas, '=', quotes or backslashes")
    if not settings["url"].startswith("https://") and settings["validate_certs"]:
        problems.append(f"url {settings['url']!r} must use https://")
    if not 1 <= settings["max_backoff"] <= 3600:
        problems.append(f"max_backoff must be between 1 and 3600 seconds, got {settings['max_backoff']}")
    return interval, problems


class StatusFile:
    """A small JSON file replaced atomically (readers never see half of it); not fsynced, it is only a report."""

    def __init__(self, path, service):
        self.path = path
        self.data = {"service": service, "pid": os.getpid(), "started": ns_to_rfc3339(time.time_ns()),
                     "state": "starting", "last_error": None, "last_error_time": None, "errors": 0}
        self.written = 0.0

    def update(self, force=False, **values):
        self.data.update(values)
        now = time.monotonic()
        if not force and now - self.written < STATUS_EVERY:
            return
        self.data["updated"] = ns_to_rfc3339(time.time_ns())
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".status-", dir=directory)
        try:
            os.fchmod(fd, 0o644)  # no secret in it: monitoring may read it
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.data, handle, sort_keys=True, indent=1)
                handle.write("\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            LOG.warning("cannot write the status file %s: %s", self.path, exc)
            try:
                os.unlink(tmp)
            except OSError:
                pass
        self.written = now

    def error(self, text):
        self.data["errors"] += 1
        self.update(force=True, state="error", last_error=text, last_error_time=ns_to_rfc3339(time.time_ns()))


def _stopper():
    """An event set by SIGTERM/SIGINT (systemctl stop): the loop ends after the current poll."""
    stop = threading.Event()

    def handler(signum, _frame):
        LOG.info("signal %d: stopping after the current step", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _describe(exc, params):
    if isinstance(exc, (ServiceFailure, PipelineError, ValueError)):
        return str(exc)
    if isinstance(exc, InfluxDBError):
        return exc.message
    return describe_exception(exc, params, params.get("sasl_username"))


# -- producer ------------------------------------------------------------------------------------------------
def run_producer(settings, stop=None):
    """The producer service's loop; returns the exit code."""
    stop = stop or _stopper()
    problems = check_producer_settings(settings)
    if problems:
        raise ConfigError("; ".join(problems))
    params = dict(settings, max_messages=0)
    module = ServiceModule(params)
    try:
        start_ns, lag_ns = validate(module)  # the module's own checks of the same options
    except ServiceFailure as exc:
        raise ConfigError(str(exc)) from None
    source = {"org": params["org"], "bucket": params["bucket"], "measurement": params["measurement"],
              "key_tag": params["key_tag"], "topic": params["topic"]}
    store = CheckpointStore(params["checkpoint_path"])
    os.makedirs(store.directory, mode=0o700, exist_ok=True)
    status = StatusFile(params["status_path"], "isobar-producer")
    status.update(force=True, poll_interval=params["poll_interval"], topic=params["topic"], stop_lag=params["stop_lag"])
    while not stop.is_set():
        try:
            with store.locked(holder=PRODUCER_HOLDER):
                LOG.info("holding %s.lock; polling every %.3f s", store.path, params["poll_interval"])
                _produce(params, module, store, source, start_ns, lag_ns, status, stop)
                return 0
        except CheckpointBusy as exc:
            # A one-shot run (a backfill) is publishing from our checkpoint: wait for it to finish.
            if status.data["last_error"] != str(exc):
                LOG.warning("%s; waiting", exc)
            status.update(force=True, state="waiting for the checkpoint lock", last_error=str(exc))
            stop.wait(max(1.0, params["poll_interval"]))
    return 0


def file_identity(*paths):
    """What tells a replaced or rewritten file apart (inode, size, mtime) for each path; None for a missing one."""
    identity = []
    for path in paths:
        try:
            st = os.stat(path)
            identity.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            identity.append(None)
    return tuple(identity)


def _produce(params, module, store, source, start_ns, lag_ns, status, stop):
    run = Run(module)
    pause = params["poll_interval"]
    total = 0
    # librdkafka loads its CA file when the producer is created (kafka-python at each connection): when the CA
    # renewal replaces the file, the clients are reopened between two polls (no batch in flight), not after a failure.
    ca_files = [path for path in (params["ssl_cafile"], params["ca_path"]) if path]
    trusted = file_identity(*ca_files)
    try:
        while not stop.is_set():
            began = time.monotonic()
            current = file_identity(*ca_files)
            if current != trusted:
                trusted = current
                LOG.info("the CA file changed: reconnecting to Kafka and InfluxDB with it")
                run.close()
            run.restart_clock()
            stop_ns = time.time_ns() - lag_ns
            try:
                result = execute(run, store, source, start_ns, stop_ns)
            except Exception as exc:  # InfluxDB/Kafka away, token revoked, ...: report, pause, retry
                text = _describe(exc, params)
                total += run.counts["messages"]
                LOG.error("poll failed (%d messages confirmed before): %s; retrying in %.1f s",
                          run.counts["messages"], text, pause)
                status.error(text)
                status.update(force=True, messages_since_start=total)
                run.close()  # fresh clients next time (a new token or password is read at restart only)
                stop.wait(pause)
                pause = min(params["max_backoff"], max(1.0, pause * 2))
                continue
            pause = params["poll_interval"]
            total += result["messages"]
            if result["messages"]:
                LOG.info("%d messages (%d resent of an interrupted batch), cursor %s", result["messages"],
                         result["recovered"], result["checkpoint"]["time"])
            state = store.load()
            cursor = (state or {}).get("cursor")
            now_ns = time.time_ns()
            status.update(force=bool(result["messages"]) or status.data["state"] != "running",
                          state="running", checkpoint=summary(state), messages_since_start=total,
                          caught_up_to=ns_to_rfc3339(stop_ns),
                          # everything InfluxDB held up to caught_up_to has been delivered: the lag is its age
                          lag_seconds=round((now_ns - stop_ns) / 1e9, 3),
                          cursor_age_seconds=round((now_ns - cursor["time_ns"]) / 1e9, 3) if cursor else None,
                          last_poll_seconds=round(time.monotonic() - began, 3))
            stop.wait(max(0.0, params["poll_interval"] - (time.monotonic() - began)))
    finally:
        run.close()
        status.update(force=True, state="stopped", messages_since_start=total)


# -- inject --------------------------------------------------------------------------------------------------
def inject_stations(settings):
    """The stations the inject service writes, from its settings (a settings file's raw object too: the lab tests
    read /etc/isobar/inject.json, where the role leaves station_prefix at its default)."""
    prefix = settings.get("station_prefix", INJECT_SETTINGS["station_prefix"][1])
    return [f"{prefix}{i:02d}" for i in range(1, settings["stations"] + 1)]


def run_inject(settings, stop=None):
    """The inject service's loop; returns the exit code."""
    stop = stop or _stopper()
    interval, problems = check_inject_settings(settings)
    if problems:
        raise ConfigError("; ".join(problems))
    module = ServiceModule(dict(settings))
    stations = inject_stations(settings)
    profiles = {s: _station_profile(settings["seed"], s) for s in stations}
    status = StatusFile(settings["status_path"], "isobar-inject")
    status.update(force=True, stations=len(stations), interval_seconds=interval)
    api = write = None
    pause = float(interval)
    tick = int(time.time()) // interval * interval  # the current tick first: a restart re-writes it, identically
    total = 0
    try:
        while not stop.is_set():
            try:
                if api is None:
                    from influxdb_client.client.write_api import SYNCHRONOUS

                    api = InfluxDBApi(module)
                    write = api.client.write_api(write_options=SYNCHRONOUS)
                lines = [line(settings["measurement"], s, tick, simulate(settings["seed"], s, tick, profiles[s]))
                         for s in stations]
                write.write(bucket=settings["bucket"], org=settings["org"], record=lines, write_precision="s")
            except Exception as exc:
                text = _describe(exc, settings) if not hasattr(exc, "status") else f"HTTP {exc.status}: {exc}"
                LOG.error("writing tick %s failed: %s; retrying in %.1f s", ns_to_rfc3339(tick * 10**9), text, pause)
                status.error(text[:500])
                if api is not None:
                    api.close()
                api = write = None
                stop.wait(pause)
                pause = min(settings["max_backoff"], pause * 2)
                # after a long outage go on from the current tick (the gap is not back-filled)
                tick = max(tick, int(time.time()) // interval * interval)
                continue
            pause = float(interval)
            total += len(lines)
            status.update(state="running", last_tick=ns_to_rfc3339(tick * 10**9), points_since_start=total,
                          write_delay_seconds=round(time.time() - tick, 3))
            tick += interval
            stop.wait(max(0.0, tick - time.time()))
    finally:
        if api is not None:
            api.close()
        status.update(force=True, state="stopped", points_since_start=total)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("service", choices=["producer", "inject"])
    parser.add_argument("--config", required=True, help="JSON settings file (mode 0600/0640: it holds secrets)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    try:
        if args.service == "producer":
            return run_producer(load_settings(args.config, PRODUCER_SETTINGS))
        return run_inject(load_settings(args.config, INJECT_SETTINGS))
    except ConfigError as exc:
        LOG.error("%s. Nothing was sent.", exc)
        return EXIT_CONFIG


if __name__ == "__main__":  # the service's entry point (systemd reads its exit status)
    raise SystemExit(main())
