#!/usr/bin/env python3
"""Steady acks=all producer against the Kafka cluster, counting acknowledged and failed sends.

Measures what a client sees while the cluster changes (e.g. a rolling restart): it produces numbered
messages at a fixed rate to its own topic (RF 3, min.insync.replicas 2), records every ack and every
error, and at the end reads the topic back to prove that every acknowledged message is there.

    tools/kafka_load.py --inventory inventories/lab --rate 50 --duration 600   # stops on SIGINT/SIGTERM too
    tools/kafka_load.py ... --stop-file /tmp/stop-load                           # or when this file appears

Connection facts and the admin password are read through Ansible from the inventory (never from the
command line). Prints a JSON summary; exits 1 if any send failed or an acknowledged message is missing.
The topic (default isobar-load) is deleted at the end unless --keep.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def inventory_facts(inventory: str, host: str) -> dict:
    """Bootstrap list, admin credentials and the CA (from the broker) as Ansible resolves them."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json")
    ansible = str(Path(sys.executable).with_name("ansible"))

    def run(*args):
        proc = subprocess.run([ansible, host, "-i", inventory, *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        try:
            return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][host]
        except (ValueError, KeyError, IndexError):
            sys.exit(f"kafka_load: cannot read the inventory through ansible (rc={proc.returncode}): {proc.stderr[-1500:]}")

    expression = ("{{ {'bootstrap': kafka_bootstrap_servers, 'user': kafka_admin_user, "
                  "'password': kafka_scram_passwords[kafka_admin_user], 'ca': kafka_ca_file} | to_json }}")
    facts = json.loads(run("-m", "ansible.builtin.debug", "-a", f"msg={expression}")["msg"])
    ca = run("-m", "ansible.builtin.slurp", "-a", f"src={facts['ca']}")
    facts["ca_pem"] = base64.b64decode(ca["content"]).decode()
    return facts


class Load:
    def __init__(self, config: dict, topic: str, rate: float, size: int):
        from kafka import KafkaProducer

        self.topic, self.rate, self.size = topic, rate, size
        self.producer = KafkaProducer(**config, acks="all", enable_idempotence=True, linger_ms=5,
                                      delivery_timeout_ms=120000, request_timeout_ms=30000, max_block_ms=60000)
        self.lock = threading.Lock()
        self.sent = self.acked = self.failed = 0
        self.errors: Counter = Counter()
        self.first_errors: list[str] = []
        self.acked_ids: set[int] = set()
        self.latencies: list[float] = []
        self.max_latency_at = None

    def _ok(self, seq: int, started: float):
        def callback(_metadata):
            latency = time.monotonic() - started
            with self.lock:
                self.acked += 1
                self.acked_ids.add(seq)
                self.latencies.append(latency)
        return callback

    def _err(self, seq: int):
        def errback(exc):
            with self.lock:
                self.failed += 1
                self.errors[type(exc).__name__] += 1
                if len(self.first_errors) < 5:
                    self.first_errors.append(f"#{seq} at {time.strftime('%H:%M:%S')}: {type(exc).__name__}: {exc}")
        return errback

    def run(self, stop: threading.Event, duration: float, stop_file: str | None):
        start = time.monotonic()
        seq = 0
        padding = b"x" * max(0, self.size - 32)
        while not stop.is_set() and time.monotonic() - start < duration:
            if stop_file and os.path.exists(stop_file):
                break
            due = start + seq / self.rate
            now = time.monotonic()
            if due > now:
                time.sleep(min(due - now, 0.1))
                continue
            value = f"{seq:012d}|{time.time():.3f}|".encode() + padding
            sent_at = time.monotonic()
            try:
                future = self.producer.send(self.topic, value=value, key=str(seq % 64).encode())
            except Exception as exc:  # a send that cannot even be queued is a failed send
                self._err(seq)(exc)
            else:
                future.add_callback(self._ok(seq, sent_at)).add_errback(self._err(seq))
            with self.lock:
                self.sent += 1
            seq += 1
        self.producer.flush(timeout=150)
        self.producer.close(timeout=30)
        return time.monotonic() - start


def consume_all(config: dict, topic: str) -> set[int]:
    """Every sequence number in the topic, read from the beginning of each partition to its end."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**config, enable_auto_commit=False, group_id=None, consumer_timeout_ms=10000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    seen: set[int] = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and any(consumer.position(tp) < end[tp] for tp in partitions):
        for records in consumer.poll(timeout_ms=1000, max_records=5000).values():
            for record in records:
                seen.add(int(record.value.split(b"|", 1)[0]))
    consumer.close()
    return seen


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inventory", default=str(ROOT / "inventories" / "lab"))
    parser.add_argument("--host", default="kafka1", help="inventory host whose variables and CA are used")
    parser.add_argument("--topic", default="isobar-load")
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--size", type=int, default=200, help="message size in bytes")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (SIGINT/SIGTERM or --stop-file end it earlier)")
    parser.add_argument("--stop-file")
    parser.add_argument("--keep", action="store_true", help="keep the topic afterwards")
    args = parser.parse_args()

    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    facts = inventory_facts(args.inventory, args.host)
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(facts["ca_pem"])
    config = dict(bootstrap_servers=facts["bootstrap"].split(","), security_protocol="SASL_SSL",
                  sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=facts["user"],
                  sasl_plain_password=facts["password"], ssl_cafile=handle.name, api_version=(4, 0))
    admin = KafkaAdminClient(**config)
    try:
        admin.create_topics({args.topic: {"num_partitions": 4, "replication_factor": 3,
                                          "configs": {"min.insync.replicas": "2"}}}, wait_for_metadata=True)
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()  # a fresh client deletes the topic at the end: this one's metadata would be stale by then

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    load = Load(config, args.topic, args.rate, args.size)
    print(f"kafka_load: producing {args.rate:g} msg/s (acks=all, idempotent) to {args.topic} at {facts['bootstrap']}",
          file=sys.stderr, flush=True)
    elapsed = load.run(stop, args.duration, args.stop_file)
    seen = consume_all(config, args.topic)
    missing = sorted(load.acked_ids - seen)

    summary = {
        "topic": args.topic, "seconds": round(elapsed, 1), "rate_target": args.rate,
        "sent": load.sent, "acked": load.acked, "failed": load.failed, "unacknowledged": load.sent - load.acked - load.failed,
        "errors": dict(load.errors), "first_errors": load.first_errors,
        "read_back": len(seen), "acked_missing_from_topic": len(missing),
        "latency_ms": {"p50": round(percentile(load.latencies, 0.50) * 1000, 1),
                       "p99": round(percentile(load.latencies, 0.99) * 1000, 1),
                       "max": round(max(load.latencies, default=0) * 1000, 1)},
    }
    print(json.dumps(summary, indent=2), flush=True)
    if not args.keep:
        try:
            cleanup = KafkaAdminClient(**config)
            cleanup.delete_topics([args.topic])
            cleanup.close()
        except Exception as exc:  # the measurement stands; say what is left behind
            print(f"kafka_load: could not delete topic {args.topic}: {type(exc).__name__}: {exc}", file=sys.stderr)
    Path(handle.name).unlink(missing_ok=True)
    ok = load.failed == 0 and not missing and load.acked == load.sent
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
