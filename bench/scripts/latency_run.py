#!/usr/bin/env python3
"""The live producer service against a plain streaming loop: end-to-end latency, then backlog catch-up.

Runs as root on the producer host (isobar-producer.service running), every part on the same clock (time.time_ns):

streaming (--duration seconds)
  writer     every --interval seconds, one InfluxDB write request of --stations points (measurement weather, tag
             station, point time = the clock just before the request) with the inject token; t_ack = the clock when
             InfluxDB answered (HTTP 204). Right after, the reference: the same points as messages sent with
             kafka-python (acks=all, idempotent) to the reference topic and flushed, in the same loop - the plain
             streaming program "write to InfluxDB, then send to Kafka" a pipeline without a poller would be.
  service    isobar-producer.service polls InfluxDB and publishes the points to the weather topic (nothing to do
             here: it runs).
  consumers  one kafka-python consumer per topic, assigned to every partition from its end; t_recv = the clock when
             poll() handed over the record, matched to its point by the message id (measurement/station/time_ns).
  latency    ours = t_recv(weather topic) - t_ack, reference = t_recv(reference topic) - t_ack, point by point.

catch-up (--catchup-points messages)
  The service is stopped, --catchup-points points (--catchup-stations stations, times after the stop) are written,
  the service is started again: catch-up = from `systemctl start` to the last of them delivered, and from the first
  delivered to the last. The playbook then runs Kafka's ProducerPerformance with as many records of the same size.

Writes one JSON file (--out): every point's times (null = never received), the catch-up's, load averages.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time

from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def loadavg() -> list[float]:
    with open("/proc/loadavg", encoding="ascii") as handle:
        return [float(x) for x in handle.read().split()[:3]]


def kafka_security(conn: dict, user: str, password: str) -> dict:
    return {"bootstrap_servers": conn["bootstrap_servers"], "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user, "sasl_plain_password": password,
            "ssl_cafile": conn["ca_file"], "api_version": tuple(int(p) for p in conn["api_version"].split("."))}


class Consumer(threading.Thread):
    """Arrival times of the messages of one topic, by message id, from the end of every partition at start."""

    def __init__(self, conn: dict, topic: str, user: str, password: str):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.arrivals: dict[str, int] = {}
        self.duplicates = 0
        self.other = 0
        self.error: str | None = None
        self.consumer = KafkaConsumer(**kafka_security(conn, user, password), group_id=None,
                                      enable_auto_commit=False, client_id=f"isobar-bench-latency-{topic}")
        deadline = time.monotonic() + 30
        while not (known := self.consumer.partitions_for_topic(topic)) and time.monotonic() < deadline:
            time.sleep(0.5)  # metadata not there yet
        if not known:
            raise SystemExit(f"topic {topic!r} has no partitions {user} can see")
        partitions = [TopicPartition(topic, p) for p in sorted(known)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        for tp in partitions:
            self.consumer.position(tp)  # resolved now, before anything is written

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for records in self.consumer.poll(timeout_ms=50).values():
                    now = time.time_ns()
                    for record in records:
                        try:
                            message_id = json.loads(record.value)["id"]
                        except (ValueError, KeyError, TypeError):
                            self.other += 1
                            continue
                        if message_id in self.arrivals:
                            self.duplicates += 1
                        else:
                            self.arrivals[message_id] = now
        except Exception as exc:  # reported in the result, the run goes on to its end
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.consumer.close()

    def wait_for(self, wanted: set[str], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not wanted <= self.arrivals.keys():
            time.sleep(0.05)
        return wanted <= self.arrivals.keys()


def line(measurement: str, station: str, t_ns: int, n: int) -> str:
    return (f"{measurement},station={station} temperature={20 + n % 10 / 10},humidity=55.0,pressure=1013.2,"
            f"wind_speed=3.1 {t_ns}")


def reference_message(measurement: str, station: str, t_ns: int, n: int) -> tuple[bytes, bytes]:
    """A message of the shape and size the pipeline's producer makes of the same point."""
    value = {"id": f"{measurement}/{station}/{t_ns}", "measurement": measurement, "station": station,
             "time_ns": t_ns, "tags": {"station": station},
             "fields": {"temperature": 20 + n % 10 / 10, "humidity": 55.0, "pressure": 1013.2, "wind_speed": 3.1}}
    return station.encode(), json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def stream(conn: dict, args: argparse.Namespace, write_api, reference: KafkaProducer) -> list[dict]:
    stations = [f"{args.station_prefix}{n:02d}" for n in range(1, args.stations + 1)]
    points: list[dict] = []
    began = time.monotonic()
    tick = 0
    while tick * args.interval < args.duration:
        pause = began + tick * args.interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        t_point = time.time_ns()
        write_api.write(bucket=conn["influx_bucket"], org=conn["influx_org"], write_precision="ns",
                        record=[line(args.measurement, s, t_point, tick) for s in stations])
        t_ack = time.time_ns()
        for station in stations:
            key, value = reference_message(args.measurement, station, t_point, tick)
            reference.send(args.ref_topic, key=key, value=value)
        reference.flush()
        t_ref_acked = time.time_ns()
        points.extend({"id": f"{args.measurement}/{s}/{t_point}", "t_point": t_point, "t_ack": t_ack,
                       "t_ref_acked": t_ref_acked} for s in stations)
        tick += 1
    return points


def systemctl(verb: str, unit: str) -> None:
    subprocess.run(["systemctl", verb, unit], check=True, capture_output=True, text=True, timeout=120)


def catch_up(conn: dict, args: argparse.Namespace, write_api, consumer: Consumer) -> dict:
    """Stop the service, write a backlog after its cursor, start it, time the backlog's delivery."""
    stations = [f"{args.station_prefix}c{n:03d}" for n in range(1, args.catchup_stations + 1)]
    per_station = -(-args.catchup_points // len(stations))
    systemctl("stop", args.service)
    stopped = time.time_ns()
    try:
        wanted: set[str] = set()
        lines: list[str] = []
        # 1 ms apart from just after the stop: every point newer than anything the service saw
        for n in range(per_station):
            t_ns = stopped + (n + 1) * 1_000_000
            for station in stations:
                if len(wanted) == args.catchup_points:
                    break
                lines.append(line(args.measurement, station, t_ns, n))
                wanted.add(f"{args.measurement}/{station}/{t_ns}")
        newest = stopped + (per_station + 1) * 1_000_000
        for first in range(0, len(lines), 5000):
            write_api.write(bucket=conn["influx_bucket"], org=conn["influx_org"], write_precision="ns",
                            record=lines[first:first + 5000])
        written = time.time_ns()
        # The service leaves points younger than its stop lag for the next poll: start once all are older.
        wait = (newest + args.stop_lag_ns - time.time_ns()) / 1e9
        if wait > 0:
            time.sleep(wait + 0.05)
    finally:
        started = time.time_ns()
        systemctl("start", args.service)
    complete = consumer.wait_for(wanted, args.catchup_timeout)
    times = [consumer.arrivals[i] for i in wanted if i in consumer.arrivals]
    first, last = (min(times), max(times)) if times else (None, None)
    return {"points": len(wanted), "received": len(times), "complete": complete, "stations": len(stations),
            "stopped": stopped, "written": written, "started": started, "first_recv": first, "last_recv": last,
            "rate_from_start": len(times) / ((last - started) / 1e9) if complete else None,
            "rate_first_to_last": (len(times) - 1) / ((last - first) / 1e9) if complete and last > first else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connection", required=True, help="JSON: influx_url/org/bucket, inject_token, bootstrap_servers, "
                                                            "consumer_user/password, bench_user/password, ca_file, api_version")
    parser.add_argument("--topic", default="weather", help="the topic the service publishes to")
    parser.add_argument("--ref-topic", required=True, help="the reference loop's topic (the bench principal's)")
    parser.add_argument("--service", default="isobar-producer.service")
    parser.add_argument("--service-config", default="/etc/isobar/producer.json",
                        help="the service's settings file: which Kafka client library it sends with")
    parser.add_argument("--measurement", default="weather")
    parser.add_argument("--station-prefix", default="bench-")
    parser.add_argument("--stations", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--drain", type=float, default=30.0)
    parser.add_argument("--stop-lag-ns", type=int, default=250_000_000, help="the service's stop lag")
    parser.add_argument("--catchup-points", type=int, default=50_000, help="0: no catch-up")
    parser.add_argument("--catchup-stations", type=int, default=50)
    parser.add_argument("--catchup-timeout", type=float, default=300.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.connection, encoding="utf-8") as handle:
        conn = json.load(handle)
    subprocess.run(["systemctl", "is-active", "--quiet", args.service], check=True)  # the service must be live

    with open(args.service_config, encoding="utf-8") as handle:
        service_client = json.load(handle).get("kafka_client", "kafka-python")  # before kafka_client: kafka-python
    result = {"settings": {k: v for k, v in vars(args).items() if k not in ("connection", "out")},
              "service_kafka_client": service_client, "loadavg_start": loadavg(), "started": time.time_ns()}
    ours = Consumer(conn, args.topic, conn["consumer_user"], conn["consumer_password"])
    ref = Consumer(conn, args.ref_topic, conn["bench_user"], conn["bench_password"])
    for consumer in (ours, ref):
        consumer.start()
    client = InfluxDBClient(url=conn["influx_url"], token=conn["inject_token"], org=conn["influx_org"],
                            ssl_ca_cert=conn["ca_file"], timeout=60_000)
    reference = KafkaProducer(**kafka_security(conn, conn["bench_user"], conn["bench_password"]), acks="all",
                              enable_idempotence=True, linger_ms=0, client_id="isobar-bench-reference-loop")
    points: list[dict] = []
    try:
        write_api = client.write_api(write_options=SYNCHRONOUS)
        points = stream(conn, args, write_api, reference)
        result["writer_done"] = time.time_ns()
        wanted = {p["id"] for p in points}
        ours.wait_for(wanted, args.drain)
        ref.wait_for(wanted, 5)
        result["loadavg_streaming_end"] = loadavg()
        if args.catchup_points:
            result["catchup"] = catch_up(conn, args, write_api, ours)
    finally:
        reference.close(timeout=10)
        client.close()
        time.sleep(0.5)
        for consumer in (ours, ref):
            consumer.stop.set()
            consumer.join(10)
    for point in points:
        point["t_recv"] = ours.arrivals.get(point["id"])
        point["t_ref_recv"] = ref.arrivals.get(point["id"])
    result.update(ended=time.time_ns(), loadavg_end=loadavg(), points=points,
                  consumers={name: {"duplicates": c.duplicates, "unmatched_records": c.other, "error": c.error}
                             for name, c in (("service", ours), ("reference", ref))})
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    print(json.dumps({"points": len(points), "received": sum(1 for p in points if p["t_recv"] is not None),
                      "reference_received": sum(1 for p in points if p["t_ref_recv"] is not None),
                      "catchup": {k: result.get("catchup", {}).get(k) for k in ("points", "received", "rate_from_start")},
                      "out": args.out}))


if __name__ == "__main__":
    main()
