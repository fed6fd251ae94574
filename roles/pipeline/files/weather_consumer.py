#!/usr/bin/env python3
"""Read the weather topic and print per-station aggregates (the seed's "go further" consumer).

Connects as its own SCRAM principal over SASL_SSL (TLS verified with our CA). Two ways to read:

  * with the consumer group (default when the config names one): continue after the offsets the group
    committed, read up to the end of each partition as it was at start, commit, and exit. A second run
    only sees what was published since.
  * --all: every message from the beginning to the current end, without a group (commits nothing).

--follow keeps reading (until Ctrl-C or --idle seconds without a message) and prints the aggregates at the end.
A consumer that reads nothing for --stall-seconds while its partitions hold more (kafka-python's client can wedge
after a broker restart) is closed and reopened at the offsets it had reached, as tools/kafka_load.py's is.
Messages are the JSON of influx_to_kafka ({"id", "station", "time", "fields": {...}}); the id of each message
is remembered for the run, so a duplicate would be counted and reported, not aggregated twice.

Settings come from a JSON file (--config, e.g. /etc/isobar/weather-consumer.json, mode 0600):
  {"bootstrap_servers": ["host:9092", ...], "username": "consumer", "password": "...",
   "cafile": "/etc/isobar/pki/ca.crt", "topic": "weather", "group": "weather-consumers"}
Options override the file; the password may also come from the WEATHER_CONSUMER_PASSWORD environment variable.

    weather_consumer.py --config /etc/isobar/weather-consumer.json [--all] [--json] [--station S ...]
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time

try:  # shipped next to this program on the hosts
    import kafka_net_fix
except ImportError:  # in the repository: the collection's module_utils
    from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_net_fix

kafka_net_fix.apply()  # else kafka-python 3.0.12 drops a response read together with the broker closing

try:  # shipped next to this program on the hosts
    import kafka_wedge_guard
except ImportError:  # in the repository: the collection's module_utils
    from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_wedge_guard

EXIT_USAGE, EXIT_KAFKA = 2, 3
FIELDS = ("temperature", "humidity", "pressure", "wind_speed")


class Stats:
    """Count, min, mean and max of each field per station; first and last point time."""

    def __init__(self):
        self.stations = {}
        self.seen = set()
        self.messages = 0
        self.duplicates = 0
        self.skipped = 0
        self.reopened = 0

    def add(self, value):
        self.messages += 1
        ident = value.get("id")
        if ident is not None:
            if ident in self.seen:
                self.duplicates += 1
                return
            self.seen.add(ident)
        station = value.get("station")
        fields = value.get("fields") or {}
        if station is None or not isinstance(fields, dict):
            self.skipped += 1
            return
        entry = self.stations.setdefault(station, {"count": 0, "first": None, "last": None, "fields": {}})
        entry["count"] += 1
        when = value.get("time")
        if when is not None:
            entry["first"] = when if entry["first"] is None else min(entry["first"], when)
            entry["last"] = when if entry["last"] is None else max(entry["last"], when)
        for name, number in fields.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number):
                continue
            agg = entry["fields"].setdefault(name, {"n": 0, "sum": 0.0, "min": number, "max": number})
            agg["n"] += 1
            agg["sum"] += number
            agg["min"] = min(agg["min"], number)
            agg["max"] = max(agg["max"], number)

    def report(self):
        stations = {}
        for name in sorted(self.stations):
            entry = self.stations[name]
            stations[name] = {
                "count": entry["count"], "first": entry["first"], "last": entry["last"],
                "fields": {f: {"min": a["min"], "mean": round(a["sum"] / a["n"], 3), "max": a["max"]}
                           for f, a in sorted(entry["fields"].items())},
            }
        return {"messages": self.messages, "unique": self.messages - self.duplicates,
                "duplicates": self.duplicates, "skipped": self.skipped, "reopened": self.reopened,
                "stations": stations}


def print_table(report, out):
    out.write(f"{report['messages']} messages, {len(report['stations'])} stations, "
              f"{report['duplicates']} duplicates, {report['skipped']} not weather\n")
    if not report["stations"]:
        return
    width = max(8, *(len(name) for name in report["stations"])) + 2
    header = f"{'station':<{width}}{'count':>7}  " + "  ".join(f"{f + ' min/mean/max':>26}" for f in FIELDS)
    out.write(header + "\n")
    for name, entry in report["stations"].items():
        cells = []
        for field in FIELDS:
            agg = entry["fields"].get(field)
            cells.append(f"{agg['min']:>8.2f}/{agg['mean']:>8.2f}/{agg['max']:>8.2f}" if agg else f"{'-':>26}")
        out.write(f"{name:<{width}}{entry['count']:>7}  " + "  ".join(cells) + "\n")


def load_settings(args):
    settings = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                settings = json.load(handle)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"weather_consumer: cannot read {args.config}: {exc}") from None
    for key in ("bootstrap_servers", "username", "cafile", "topic", "group"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    settings["password"] = os.environ.get("WEATHER_CONSUMER_PASSWORD") or settings.get("password")
    settings.setdefault("topic", "weather")
    if isinstance(settings.get("bootstrap_servers"), str):
        settings["bootstrap_servers"] = settings["bootstrap_servers"].split(",")
    missing = [k for k in ("bootstrap_servers", "username", "password", "cafile") if not settings.get(k)]
    if missing:
        sys.stderr.write(f"weather_consumer: missing settings {missing} (config file, options or environment)\n")
        sys.exit(EXIT_USAGE)
    return settings


def consumer_for(settings, group, args):
    from kafka import KafkaConsumer

    return KafkaConsumer(
        bootstrap_servers=settings["bootstrap_servers"], security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=settings["username"],
        sasl_plain_password=settings["password"], ssl_cafile=settings["cafile"],
        api_version=tuple(int(p) for p in args.api_version.split(".")), group_id=group,
        client_id="isobar-weather-consumer", enable_auto_commit=False, auto_offset_reset="earliest",
        isolation_level="read_committed", value_deserializer=None)


class LastKafkaError(logging.Handler):
    """kafka-python logs connection and authentication failures and retries quietly: keep the last one."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.error = None

    def emit(self, record):
        for arg in record.args if isinstance(record.args, tuple) else ():
            if isinstance(arg, BaseException) and not self._telling(self.error):
                self.error = arg  # an authentication or certificate error is kept over later disconnects

    @staticmethod
    def _telling(error):
        text = f"{type(error).__name__} {error}" if error is not None else ""
        return "Authentication" in text or "certificate verify failed" in text or "CERTIFICATE_VERIFY" in text


class ConnectTimeout(Exception):
    pass


def _alarm(*_):
    raise ConnectTimeout()


def consume(settings, args, stats):
    from kafka import TopicPartition

    group = None if args.all else settings.get("group")
    watch = LastKafkaError()
    logging.getLogger("kafka").addHandler(watch)
    consumer = consumer_for(settings, group, args)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        topic = settings["topic"]
        # A refused password or certificate makes kafka-python retry forever: bound the first metadata request.
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(args.connect_timeout)
        try:
            partitions = consumer.partitions_for_topic(topic)
        except ConnectTimeout:
            last = f" (last error: {type(watch.error).__name__}: {watch.error})" if watch.error else ""
            raise SystemExit(f"weather_consumer: no answer from Kafka at {','.join(settings['bootstrap_servers'])} "
                             f"within {args.connect_timeout} s as {settings['username']}{last}") from None
        finally:
            signal.alarm(0)
        if not partitions:
            raise SystemExit(f"weather_consumer: topic {topic!r} does not exist or {settings['username']} may not read it")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        # assign(), not subscribe(): no rebalancing for a one-shot read. With a group, positions start at the
        # group's committed offsets (or the beginning for a new group); without, at the beginning.
        consumer.assign(tps)
        if not group:
            consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        last_message = time.monotonic()
        guard = kafka_wedge_guard.WedgeGuard(args.stall_seconds)
        while not stop["now"]:
            if not args.follow and all(consumer.position(tp) >= ends[tp] for tp in tps):
                break
            if args.follow and args.idle and time.monotonic() - last_message > args.idle:
                break
            if args.max_messages and stats.messages >= args.max_messages:
                break
            polled = consumer.poll(timeout_ms=1000)
            for records in polled.values():
                for record in records:
                    last_message = time.monotonic()
                    try:
                        value = json.loads(record.value)
                    except (ValueError, TypeError):
                        stats.skipped += 1
                        continue
                    if args.station and value.get("station") not in args.station:
                        continue
                    stats.add(value)
            if group and polled:
                consumer.commit()
            if polled:
                guard.progressed()
                continue
            positions = {tp: consumer.position(tp) for tp in tps}
            why = guard.check(tps, positions, lambda: consumer.end_offsets(tps))
            if why:  # wedged: a new client, at the offsets reached (the group's committed ones)
                sys.stderr.write(f"weather_consumer: reopening the consumer ({why}) at "
                                 f"{ {tp.partition: positions[tp] for tp in tps} }\n")
                kafka_wedge_guard.close_bounded(consumer)
                consumer = consumer_for(settings, group, args)
                consumer.assign(tps)
                for tp in tps:
                    consumer.seek(tp, positions[tp])
                stats.reopened += 1
        if group:
            consumer.commit()
    except KeyboardInterrupt:
        pass
    finally:
        kafka_wedge_guard.close_bounded(consumer)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--config", help="JSON settings file (0600)")
    parser.add_argument("--bootstrap-servers", dest="bootstrap_servers", help="host:port,host:port")
    parser.add_argument("--username")
    parser.add_argument("--cafile")
    parser.add_argument("--topic")
    parser.add_argument("--group", help="consumer group (committed offsets)")
    parser.add_argument("--all", action="store_true", help="read everything from the beginning, no group, no commit")
    parser.add_argument("--follow", action="store_true", help="keep reading until Ctrl-C or --idle seconds of silence")
    parser.add_argument("--idle", type=float, default=0, help="with --follow: stop after this many quiet seconds")
    parser.add_argument("--max-messages", type=int, default=0)
    parser.add_argument("--station", action="append", help="only this station (repeatable)")
    parser.add_argument("--api-version", default="4.0", help="Kafka protocol version (explicit on KRaft)")
    parser.add_argument("--connect-timeout", type=int, default=20, help="seconds to wait for Kafka's first answer")
    parser.add_argument("--stall-seconds", type=float, default=20,
                        help="reopen the consumer after this many seconds without a message while behind the end")
    parser.add_argument("--json", action="store_true", help="print the aggregates as JSON")
    args = parser.parse_args(argv)
    settings = load_settings(args)
    stats = Stats()
    try:
        consume(settings, args, stats)
    except SystemExit:
        raise
    except Exception as exc:  # kafka-python errors: authentication, TLS, authorization, timeouts
        sys.stderr.write(f"weather_consumer: {type(exc).__name__}: {exc}\n")
        return EXIT_KAFKA
    report = stats.report()
    if args.json:
        json.dump(report, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print_table(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
