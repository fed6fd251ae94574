#!/usr/bin/env python3
"""End-to-end latency of the pipeline, InfluxDB write -> Kafka delivery, under continuous flow.

Runs on the producer host, three parts at once, all reading the same clock (time.time_ns):
  writer    every --interval seconds, one write request of --stations points (measurement weather, tag
            station, point time = the writer's clock just before the request) with the inject token;
            t_ack = the clock when InfluxDB answered the request (HTTP 204).
  producer  the pipeline's producer run back to back: the captured influx_to_kafka module (the very
            invocation playbooks/produce.yml makes) started again as soon as the previous run exits.
  consumer  a kafka-python consumer (consumer principal) assigned to every partition of the topic from its
            end; t_recv = the clock when poll() handed it the record. Records are matched to points by the
            message id (measurement/station/time_ns).
After --duration seconds the writer stops; the producer and the consumer go on until every written point
was received or --drain seconds passed. Writes one JSON file (--out) with every point's t_point, t_ack and
t_recv (null = never received), every producer run, and the load average at start and end.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time

from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from kafka import KafkaConsumer, TopicPartition


def loadavg() -> list[float]:
    with open("/proc/loadavg", encoding="ascii") as handle:
        return [float(x) for x in handle.read().split()[:3]]


class Consumer(threading.Thread):
    def __init__(self, conn: dict, topic: str):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.arrivals: dict[str, dict] = {}
        self.duplicates = 0
        self.other = 0
        self.error: str | None = None
        self.consumer = KafkaConsumer(
            bootstrap_servers=conn["bootstrap_servers"], security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=conn["consumer_user"], sasl_plain_password=conn["consumer_password"],
            ssl_cafile=conn["ca_file"], api_version=tuple(int(p) for p in conn["api_version"].split(".")),
            group_id=None, enable_auto_commit=False, client_id="isobar-bench-latency")
        deadline = time.monotonic() + 30
        while not (known := self.consumer.partitions_for_topic(topic)) and time.monotonic() < deadline:
            time.sleep(0.5)  # metadata not there yet
        if not known:
            raise SystemExit(f"topic {topic!r} has no partitions the consumer can see")
        partitions = [TopicPartition(topic, p) for p in sorted(known)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        self.start_offsets = {tp.partition: self.consumer.position(tp) for tp in partitions}  # resolved now

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for records in self.consumer.poll(timeout_ms=100).values():
                    now = time.time_ns()
                    for record in records:
                        try:
                            message_id = json.loads(record.value)["id"]
                        except (ValueError, KeyError, TypeError):
                            self.other += 1
                            continue
                        if message_id in self.arrivals:
                            self.duplicates += 1
                            continue
                        self.arrivals[message_id] = {"t_recv": now, "partition": record.partition, "offset": record.offset}
        except Exception as exc:  # reported in the result, the run goes on to its end
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.consumer.close()


class ProducerLoop(threading.Thread):
    def __init__(self, command: list[str], timeout: int):
        super().__init__(daemon=True)
        self.command = command
        self.timeout = timeout
        self.stop = threading.Event()
        self.runs: list[dict] = []

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.time_ns()
            entry = {"began": began}
            try:
                proc = subprocess.run(self.command, capture_output=True, text=True, timeout=self.timeout, check=False)
                result = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
                entry.update(rc=proc.returncode, messages=result.get("messages"), module_duration=result.get("duration"),
                             failed=bool(result.get("failed")) or proc.returncode != 0,
                             msg=(result.get("msg") or proc.stderr[-300:]) if proc.returncode else None)
            except subprocess.TimeoutExpired:
                entry.update(rc=None, failed=True, msg=f"timed out after {self.timeout} s")
            entry["ended"] = time.time_ns()
            self.runs.append(entry)


def write_points(conn: dict, args: argparse.Namespace, points: list[dict]) -> None:
    client = InfluxDBClient(url=conn["influx_url"], token=conn["inject_token"], org=conn["influx_org"],
                            ssl_ca_cert=conn["ca_file"], timeout=30_000)
    write_api = client.write_api(write_options=SYNCHRONOUS)
    stations = [f"{args.station_prefix}{n:02d}" for n in range(1, args.stations + 1)]
    began = time.monotonic()
    tick = 0
    try:
        while tick * args.interval < args.duration:
            pause = began + tick * args.interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            t_point = time.time_ns()
            lines = [f"{args.measurement},station={station} temperature={20 + tick % 10 / 10},humidity=55.0,"
                     f"pressure=1013.2,wind_speed=3.1 {t_point}" for station in stations]
            write_api.write(bucket=conn["influx_bucket"], org=conn["influx_org"], record=lines, write_precision="ns")
            t_ack = time.time_ns()
            points.extend({"id": f"{args.measurement}/{station}/{t_point}", "t_point": t_point, "t_ack": t_ack}
                          for station in stations)
            tick += 1
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connection", required=True, help="JSON: influx_url/org/bucket, inject_token, bootstrap_servers, "
                                                            "consumer_user/password, ca_file, api_version")
    parser.add_argument("--producer", nargs="+", required=True, help="command of one producer run")
    parser.add_argument("--topic", default="weather")
    parser.add_argument("--measurement", default="weather")
    parser.add_argument("--station-prefix", default="bench-")
    parser.add_argument("--stations", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=180.0)
    parser.add_argument("--drain", type=float, default=90.0)
    parser.add_argument("--producer-timeout", type=int, default=300)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.connection, encoding="utf-8") as handle:
        conn = json.load(handle)

    result = {"settings": {k: v for k, v in vars(args).items() if k not in ("connection", "out")},
              "loadavg_start": loadavg(), "started": time.time_ns()}
    consumer = Consumer(conn, args.topic)
    consumer.start()
    producer = ProducerLoop(args.producer, args.producer_timeout)
    producer.start()
    points: list[dict] = []
    try:
        write_points(conn, args, points)
        result["writer_done"] = time.time_ns()
        deadline = time.monotonic() + args.drain
        wanted = {p["id"] for p in points}
        while time.monotonic() < deadline and not wanted <= consumer.arrivals.keys():
            time.sleep(0.2)
    finally:
        producer.stop.set()
        producer.join(args.producer_timeout + 10)
        time.sleep(1.0)  # records of the last run still on their way to the consumer
        consumer.stop.set()
        consumer.join(10)
    for point in points:
        arrival = consumer.arrivals.get(point["id"])
        point["t_recv"] = arrival["t_recv"] if arrival else None
        point["partition"] = arrival["partition"] if arrival else None
    result.update(ended=time.time_ns(), loadavg_end=loadavg(), points=points, producer_runs=producer.runs,
                  consumer={"duplicates": consumer.duplicates, "unmatched_records": consumer.other,
                            "error": consumer.error, "start_offsets": consumer.start_offsets})
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    received = sum(1 for p in points if p["t_recv"] is not None)
    print(json.dumps({"points": len(points), "received": received, "producer_runs": len(producer.runs),
                      "out": args.out}))


if __name__ == "__main__":
    main()
