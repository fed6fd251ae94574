#!/usr/bin/env python3
"""Steady acks=all producer against the Kafka cluster, counting acknowledged and failed sends.

Measures what a client sees while the cluster changes (e.g. a rolling restart or a broker failover drill): it
produces numbered messages at a fixed rate to its own topic (RF 3, min.insync.replicas 2), records every ack and
every error, and at the end reads the topic back to prove that every acknowledged message is there.

    tools/kafka_load.py --inventory inventories/lab --rate 50 --duration 600   # stops on SIGINT/SIGTERM too
    tools/kafka_load.py ... --stop-file /tmp/stop-load                           # or when this file appears

Connection facts and the admin password are read through Ansible from the inventory (never from the
command line). Prints a JSON summary; exits 1 if any send failed or an acknowledged message is missing.
The topic (default isobar-load) is deleted at the end unless --keep.

Background traffic generator (what playbooks/broker-failover.yml runs on a pipeline host, which has no Ansible):

    kafka_load.py --connection conn.json --no-create --topic isobar-drill --live-consumer \\
                  --events run.jsonl --summary run.json --stop-file stop --run-id run1

--connection reads {"bootstrap_servers", "username", "password", "ca_file"} from a private JSON file instead of the
inventory. --live-consumer reads the topic while producing (assigned partitions, no consumer group, from the end
offsets at start), so "acked" and "consumed" are counted per run. --events writes one JSON line per event with
epoch timestamps (t): each message's send time and outcome (ack with partition/offset, or error kind), the
consumer's progress and the ids it read, the broker errors the producer retried (e.g. NotEnoughReplicasError).

Analysis of an events file against phases given as epoch times (pure; re-runnable on a fetched events file):

    kafka_load.py --analyze run.jsonl --phases '[{"name": "one_down", "begin": 1700000000.1, "end": 1700000030.5}]'
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

try:  # shipped next to this program on the hosts
    import kafka_net_fix
except ImportError:  # in the repository: the collection's module_utils
    from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_net_fix

kafka_net_fix.apply()  # else kafka-python 3.0.12 drops a response read together with the broker closing

try:  # shipped next to this program on the hosts
    import kafka_wedge_guard
except ImportError:  # in the repository: the collection's module_utils
    from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_wedge_guard

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

    # The pipeline's names are defaults of the topology role, which an ad-hoc command does not load: the inventory's
    # value when it sets one, else the role's default (roles/topology/defaults/main.yml).
    expression = ("{{ {'bootstrap': kafka_bootstrap_servers | default(groups['kafka_brokers']"
                  " | isobar.pipeline.kafka_nodes_with(hostvars, 'broker') | map('extract', hostvars, 'isobar_address')"
                  " | map('regex_replace', '$', ':' ~ (kafka_client_port | default(9092))) | join(',')),"
                  " 'user': kafka_admin_user | default('admin'),"
                  " 'password': kafka_scram_passwords[kafka_admin_user | default('admin')],"
                  " 'ca': kafka_ca_file | default('/etc/isobar/pki/ca.crt')} | to_json }}")
    facts = json.loads(run("-m", "ansible.builtin.debug", "-a", f"msg={expression}")["msg"])
    ca = run("-m", "ansible.builtin.slurp", "-a", f"src={facts['ca']}")
    facts["ca_pem"] = base64.b64decode(ca["content"]).decode()
    return facts


def connection_file_config(path: str) -> tuple[dict, str]:
    """kafka-python settings from a private JSON file (bootstrap_servers, username, password, ca_file)."""
    try:
        data = json.loads(Path(path).read_text())
        servers = data["bootstrap_servers"]
        servers = servers.split(",") if isinstance(servers, str) else list(servers)
        config = dict(bootstrap_servers=[s.strip() for s in servers if s.strip()], security_protocol="SASL_SSL",
                      sasl_mechanism=data.get("sasl_mechanism", "SCRAM-SHA-512"), sasl_plain_username=data["username"],
                      sasl_plain_password=data["password"], ssl_cafile=data["ca_file"],
                      api_version=tuple(int(x) for x in str(data.get("api_version", "4.0")).split(".")[:2]))
    except (OSError, ValueError, KeyError, TypeError) as exc:  # never echo the file: it holds a password
        sys.exit(f"kafka_load: cannot read the connection file {path}: {type(exc).__name__} "
                 "(expected JSON with bootstrap_servers, username, password, ca_file)")
    return config, ",".join(config["bootstrap_servers"])


class Events:
    """Thread-safe JSON-lines recorder (no-op without a path). Every line has an epoch timestamp t."""

    def __init__(self, path: str | None):
        self.lock = threading.Lock()
        self.handle = open(path, "a", buffering=1) if path else None  # line-buffered: others read it live

    def write(self, _event: str, **fields):
        if self.handle is None:
            return
        fields = {"e": _event, "t": round(fields.pop("t", time.time()), 4), **fields}
        line = json.dumps(fields, separators=(",", ":")) + "\n"
        with self.lock:
            self.handle.write(line)

    def close(self):
        if self.handle is not None:
            with self.lock:
                self.handle.close()
                self.handle = None


class RetriedErrors(logging.Handler):
    """Counts the broker errors the producer retried (kafka-python logs them as warnings), e.g.
    NotEnoughReplicasError while min.insync.replicas cannot be met: the reason behind a later timeout."""

    PATTERN = re.compile(r"Got error produce response on topic-partition (.+?), retrying \([^)]*\): (\w+)")

    def __init__(self, events: Events):
        super().__init__(logging.WARNING)  # logging.Handler holds its own self.lock around emit(): never reuse that name
        self.events, self.counts = events, Counter()

    def emit(self, record):  # called with the handler's lock held (one record at a time)
        match = self.PATTERN.search(record.getMessage())
        if match:
            self.counts[match.group(2)] += 1
            first = self.counts[match.group(2)] == 1
            self.events.write("retried", kind=match.group(2), partition=match.group(1).replace("TopicPartition", ""),
                              first=first)


def fix_idempotent_reset() -> bool:
    """Work around a kafka-python 3.0 bug that wedges the idempotent producer for good.

    When a batch that was already sent expires (delivery timeout, e.g. while min.insync.replicas cannot be met),
    TransactionManager.reset_producer_id() drops the producer id but leaves the state READY; init_producer_id()
    only acts in UNINITIALIZED, so no new producer id is ever requested, the sender loop waits for one forever
    and no pending send is acknowledged, fails or expires again (close() then raises on its flush). The Java
    client returns to UNINITIALIZED there; this does the same. Idempotent producers only; a no-op where the
    library already does it. Returns True when the library needed it (the report says so).
    """
    try:
        from kafka.producer.transaction_manager import TransactionManager, TransactionState
    except ImportError:
        return False
    original = TransactionManager.reset_producer_id
    if getattr(original, "isobar_fix", False):
        return True

    def reset_producer_id(self):
        original(self)
        with self._lock:
            if not self.is_transactional() and self._current_state == TransactionState.READY:
                self._current_state = TransactionState.UNINITIALIZED  # next sender loop: InitProducerId

    reset_producer_id.isobar_fix = True
    TransactionManager.reset_producer_id = reset_producer_id
    return True


class Load:
    def __init__(self, config: dict, topic: str, rate: float, size: int, run_id: str = "",
                 events: Events | None = None, delivery_timeout: float = 120, request_timeout: float = 30,
                 max_block: float = 60):
        from kafka import KafkaProducer

        self.topic, self.rate, self.size, self.run_id = topic, rate, size, run_id
        self.events = events or Events(None)
        self.producer = KafkaProducer(**config, acks="all", enable_idempotence=True, linger_ms=5,
                                      delivery_timeout_ms=int(delivery_timeout * 1000),
                                      request_timeout_ms=int(request_timeout * 1000), max_block_ms=int(max_block * 1000))
        self.lock = threading.Lock()
        self.sent = self.acked = self.failed = 0
        self.errors: Counter = Counter()
        self.first_errors: list[str] = []
        self.acked_ids: set[int] = set()
        self.failed_ids: set[int] = set()
        self.latencies: list[float] = []
        self.max_latency_at = None
        self.stuck = False
        self.flush_timeout = max(30.0, delivery_timeout + 30)
        self.delivery_timeout = delivery_timeout
        self.pending: dict[int, float] = {}  # seq -> wall time sent, until acked or failed
        self.overdue_at: float | None = None  # first time a send stayed unresolved well past the delivery timeout
        self.longest_wait = 0.0  # longest time from a send to its outcome (ack or error)

    def _ok(self, seq: int, started: float, sent_at: float):
        def callback(metadata):
            latency = time.monotonic() - started
            with self.lock:
                self.acked += 1
                self.acked_ids.add(seq)
                self.latencies.append(latency)
                self.pending.pop(seq, None)
                self.longest_wait = max(self.longest_wait, time.time() - sent_at)
            self.events.write("ack", seq=seq, sent=round(sent_at, 4), p=metadata.partition, o=metadata.offset)
        return callback

    def _err(self, seq: int, sent_at: float):
        def errback(exc):
            with self.lock:
                self.failed += 1
                self.failed_ids.add(seq)
                self.pending.pop(seq, None)
                self.longest_wait = max(self.longest_wait, time.time() - sent_at)
                self.errors[type(exc).__name__] += 1
                detailed = self.errors[type(exc).__name__] <= 3
                if len(self.first_errors) < 5:
                    self.first_errors.append(f"#{seq} at {time.strftime('%H:%M:%S')}: {type(exc).__name__}: {exc}")
            fields = {"msg": str(exc)[:300]} if detailed else {}
            self.events.write("err", seq=seq, sent=round(sent_at, 4), kind=type(exc).__name__, **fields)
        return errback

    def _watch(self):
        """A send still unresolved well past the delivery timeout should have ended in an ack or an error by then:
        record it (once), so a client that holds sends back is never mistaken for a slow cluster. kafka-python
        does that while it waits for a new producer id (none can be had without a KRaft quorum); it is only
        stuck for good if they are still unresolved at the end (summary: producer_stuck)."""
        now = time.time()
        with self.lock:
            oldest = min(self.pending.values(), default=now)
            unresolved = len(self.pending)
        if self.overdue_at is None and now - oldest > self.delivery_timeout + 20:
            self.overdue_at = now
            self.events.write("sends_overdue", oldest_sent=round(oldest, 4), unresolved=unresolved)
            print(f"kafka_load: {unresolved} sends unresolved, the oldest {now - oldest:.0f} s old "
                  f"(delivery timeout {self.delivery_timeout:g} s)", file=sys.stderr, flush=True)

    def run(self, stop: threading.Event, duration: float, stop_file: str | None):
        start = time.monotonic()
        last_watch = start
        seq = 0
        header = len(f"{0:012d}|{time.time():.3f}|{self.run_id}|")
        padding = b"x" * max(0, self.size - max(32, header))
        while not stop.is_set() and time.monotonic() - start < duration:
            if stop_file and os.path.exists(stop_file):
                break
            due = start + seq / self.rate
            now = time.monotonic()
            if now - last_watch >= 1:
                self._watch()
                last_watch = now
            if due > now:
                time.sleep(min(due - now, 0.1))
                continue
            wall = time.time()
            value = f"{seq:012d}|{wall:.3f}|{self.run_id}|".encode() + padding
            sent_at = time.monotonic()
            with self.lock:
                self.pending[seq] = wall
            try:
                future = self.producer.send(self.topic, value=value, key=str(seq % 64).encode())
            except Exception as exc:  # a send that cannot even be queued is a failed send
                self._err(seq, wall)(exc)
            else:
                future.add_callback(self._ok(seq, sent_at, wall)).add_errback(self._err(seq, wall))
            with self.lock:
                self.sent += 1
            seq += 1
        self.events.write("producer_stopping", sent=self.sent)
        try:
            self.producer.flush(timeout=self.flush_timeout)
        except Exception as exc:  # unresolved sends are reported as "unacknowledged"
            self.stuck = True
            print(f"kafka_load: flush: {type(exc).__name__}: {exc}", file=sys.stderr)
            self.events.write("flush_timeout", unresolved=self.sent - self.acked - self.failed)
        try:
            self.producer.close(timeout=0 if self.stuck else 30)
        except Exception as exc:  # kafka-python's close() flushes first and raises if that times out
            print(f"kafka_load: close: {type(exc).__name__}: {exc}; closing by force", file=sys.stderr)
            sender = getattr(self.producer, "_sender", None)
            if sender is not None:
                sender.force_close()  # fails what is still pending ("closed forcefully")
                sender.join(30)
        self.events.write("producer_closed", sent=self.sent, acked=self.acked, failed=self.failed)
        return time.monotonic() - start


def parse_value(value: bytes) -> tuple[int, str | None]:
    """(sequence number, run id or None for messages written before run ids existed)."""
    fields = value.split(b"|", 3)
    return int(fields[0]), (fields[2].decode() if len(fields) > 3 else None)


class LiveConsumer(threading.Thread):
    """Reads the topic while the producer writes: assigned partitions (no consumer group, so no group ACL and no
    offsets topic), starting at the end offsets taken before the first send; only messages of this run count.

    kafka-python's consumer can wedge for good after a broker restart: fetches return nothing and every offset
    request times out, while a new client works at once (seen during the rotation's rolling restarts). When it reads
    nothing for stall_seconds although the topic grew, or cannot get the end offsets, the consumer is reopened at the
    offsets already read: nothing is read twice, so duplicates still mean duplicates on the topic."""

    def __init__(self, config: dict, topic: str, run_id: str, events: Events, start_timeout: float = 60):
        super().__init__(name="live-consumer", daemon=True)
        self.config, self.topic, self.run_id, self.events = config, topic, run_id, events
        self.start_timeout = start_timeout
        self.ready, self.finish, self.done = threading.Event(), threading.Event(), threading.Event()
        self.seen: set[int] = set()
        self.duplicates = self.foreign = self.reopened = 0
        self.error: str | None = None
        self.caught_up = False
        self.finish_timeout = 180.0
        self.stall_seconds = 20.0
        self.next_offsets: dict = {}

    def _open(self):
        from kafka import KafkaConsumer

        return KafkaConsumer(**self.config, enable_auto_commit=False, group_id=None, request_timeout_ms=30000,
                             fetch_max_wait_ms=200)

    def _reopen(self, consumer, partitions, why: str):
        self.events.write("consumer_reopened", reason=why[:200], at={str(tp.partition): self.next_offsets[tp] for tp in partitions})
        self.reopened += 1
        kafka_wedge_guard.close_bounded(consumer)
        consumer = self._open()
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, self.next_offsets[tp])
        return consumer

    def run(self):
        from kafka import TopicPartition

        consumer = None
        try:
            deadline = time.monotonic() + self.start_timeout
            while True:  # the drill's user may be seconds old: retry until its credential and the topic are visible
                try:
                    consumer = self._open()
                    ids = consumer.partitions_for_topic(self.topic)
                    if ids:
                        break
                    raise RuntimeError(f"topic {self.topic} has no partitions (yet)")
                except Exception as exc:
                    if consumer is not None:
                        consumer.close()
                        consumer = None
                    if time.monotonic() > deadline:
                        raise
                    self.events.write("consumer_retry", error=f"{type(exc).__name__}: {exc}"[:200])
                    time.sleep(2)
            partitions = [TopicPartition(self.topic, p) for p in sorted(ids)]
            consumer.assign(partitions)
            start = consumer.end_offsets(partitions)
            self.next_offsets = dict(start)
            for tp in partitions:
                consumer.seek(tp, start[tp])
            self.events.write("consumer_ready", start={str(tp.partition): start[tp] for tp in partitions})
            self.ready.set()
            end, last_report, finish_deadline = None, 0.0, None
            guard = kafka_wedge_guard.WedgeGuard(self.stall_seconds)
            while True:
                read = []
                for tp, records in consumer.poll(timeout_ms=500, max_records=2000).items():
                    for record in records:
                        self.next_offsets[tp] = record.offset + 1
                        seq, run = parse_value(record.value)
                        if run != self.run_id:
                            self.foreign += 1
                        elif seq in self.seen:
                            self.duplicates += 1
                        else:
                            self.seen.add(seq)
                            read.append(seq)
                now = time.monotonic()
                if read:  # the ids themselves, so "every acked id was read back" can be checked from the file
                    self.events.write("read", s=sorted(read))
                    guard.progressed()
                if now - last_report >= 1:
                    self.events.write("consumed", n=len(self.seen))
                    last_report = now
                if self.finish.is_set():
                    if finish_deadline is None:
                        finish_deadline = now + self.finish_timeout
                    if end is None:
                        try:  # the producer is closed: these end offsets are final
                            end = consumer.end_offsets(partitions)
                        except Exception as exc:
                            self.events.write("consumer_retry", error=f"end offsets: {type(exc).__name__}: {exc}"[:200])
                            consumer = self._reopen(consumer, partitions, f"end offsets: {type(exc).__name__}")
                            guard.progressed()
                    if end is not None and all(self.next_offsets[tp] >= end[tp] for tp in partitions):
                        self.caught_up = True
                        break
                    if now > finish_deadline:
                        self.error = f"did not reach the end offsets within {self.finish_timeout:g} s"
                        break
                # `end`: the final end offsets once the producer stopped, else asked for.
                why = guard.check(partitions, self.next_offsets,
                                  end if end is not None else (lambda: consumer.end_offsets(partitions)))
                if why:
                    consumer = self._reopen(consumer, partitions, why)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.events.write("consumer_done", n=len(self.seen), caught_up=self.caught_up, error=self.error,
                              reopened=self.reopened)
            if consumer is not None:
                kafka_wedge_guard.close_bounded(consumer)
            self.ready.set()
            self.done.set()


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
                seen.add(parse_value(record.value)[0])
    consumer.close()
    return seen


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- analysis of an events file -----------------------------------------------------------------

def load_events(path: str) -> list[dict]:
    events = []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line:
                try:
                    events.append(json.loads(line))
                except ValueError:  # a line cut by a crash: the rest still counts
                    continue
    return events


def merge_spans(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping (begin, end) spans merged, in order."""
    merged: list[list[float]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return [(b, e) for b, e in merged]


def analyze(events: list[dict], phases: list[dict], stall_threshold: float = 1.0) -> dict:
    """Figures per phase ({name, begin, end} in epoch seconds) from the events of one run.

    For a phase: the messages sent in it and their final outcome (acked, failed by error kind, unresolved);
    ack waits of the messages in flight during it (sent before its end, resolved after its begin);
    ``window_s``: the longest stall - the [send, ack] spans of the messages that waited longer than
    ``stall_threshold`` are merged where they overlap, and the longest merged span is how long the producer
    could not get an acks=all write through on some partition (0 when no message waited that long);
    ``stalled_partitions``; the broker errors the producer retried in it.
    """
    outcome: dict[int, dict] = {}
    retried = []
    for event in events:
        if event.get("e") in ("ack", "err"):
            outcome[event["seq"]] = event
        elif event.get("e") == "retried":
            retried.append(event)
    sends = {seq: event["sent"] for seq, event in outcome.items()}
    result = {}
    for phase in phases:
        begin, end = float(phase["begin"]), float(phase["end"])
        in_phase = [e for e in outcome.values() if begin <= e["sent"] < end]
        acks = [e for e in outcome.values() if e["e"] == "ack" and e["sent"] < end and e["t"] > begin]
        waits = [(e["t"] - e["sent"], e) for e in acks]
        stalled = [e for wait, e in waits if wait > stall_threshold]
        spans = merge_spans([(e["sent"], e["t"]) for e in stalled])
        longest = max(spans, key=lambda span: span[1] - span[0], default=None)
        errors = Counter(e["kind"] for e in in_phase if e["e"] == "err")
        retried_in = Counter(e["kind"] for e in retried if begin <= e["t"] < end)
        result[phase["name"]] = {
            "begin": round(begin, 3), "end": round(end, 3), "seconds": round(end - begin, 1),
            "sent": len(in_phase),
            "acked": sum(1 for e in in_phase if e["e"] == "ack"),
            "failed": sum(1 for e in in_phase if e["e"] == "err"),
            "errors": dict(errors),
            "broker_errors_retried": dict(retried_in),
            "max_ack_wait_s": round(max((w for w, _ in waits), default=0.0), 3),
            "p99_ack_wait_s": round(percentile([w for w, _ in waits], 0.99), 3),
            "stall_threshold_s": stall_threshold,
            "stalled_sends": len(stalled),
            "window_s": round(longest[1] - longest[0], 3) if longest else 0.0,
            "window_from": round(longest[0], 3) if longest else None,
            "stall_spans": len(spans),
            "stalled_partitions": sorted({e["p"] for e in stalled}),
            "last_ack_at": round(max((e["t"] for e in acks), default=0.0), 3) or None,
            "first_error_at": round(min((e["t"] for e in in_phase if e["e"] == "err"), default=0.0), 3) or None,
        }
    result["_messages_with_outcome"] = len(sends)
    return result


# --- command line -------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inventory", default=str(ROOT / "inventories" / "lab"))
    parser.add_argument("--host", default="kafka1", help="inventory host whose variables and CA are used")
    parser.add_argument("--connection", help="private JSON file with bootstrap_servers, username, password, ca_file "
                                             "(instead of reading the inventory through Ansible)")
    parser.add_argument("--topic", default="isobar-load")
    parser.add_argument("--no-create", action="store_true", help="the topic is managed elsewhere: neither create nor delete it")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topic when this tool creates it")
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--size", type=int, default=200, help="message size in bytes")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (SIGINT/SIGTERM or --stop-file end it earlier)")
    parser.add_argument("--stop-file")
    parser.add_argument("--keep", action="store_true", help="keep the topic afterwards")
    parser.add_argument("--run-id", default="", help="tag written into every message (default: random)")
    parser.add_argument("--live-consumer", action="store_true", help="consume while producing; count what this run reads")
    parser.add_argument("--events", help="append timestamped events (JSON lines) to this file")
    parser.add_argument("--summary", help="also write the JSON summary to this file")
    parser.add_argument("--delivery-timeout", type=float, default=120.0, help="seconds a send may take, retries included")
    parser.add_argument("--request-timeout", type=float, default=30.0, help="seconds per produce request")
    parser.add_argument("--max-block", type=float, default=60.0, help="seconds send() may block (metadata, full buffer)")
    parser.add_argument("--no-client-fix", action="store_true",
                        help="do not work around kafka-python's stuck idempotent producer (see fix_idempotent_reset)")
    parser.add_argument("--log-file", help="write kafka-python's own log (--log-level, default INFO) to this file")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument("--analyze", metavar="EVENTS", help="no traffic: print the figures of an events file per phase")
    parser.add_argument("--phases", default="[]", help='with --analyze: JSON list of {"name", "begin", "end"} (epoch s)')
    parser.add_argument("--stall-threshold", type=float, default=1.0, help="with --analyze: ack wait (s) counted as a stall")
    args = parser.parse_args()

    if args.analyze:
        print(json.dumps(analyze(load_events(args.analyze), json.loads(args.phases), args.stall_threshold), indent=2))
        return 0

    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    ca_temp = None
    if args.connection:
        config, bootstrap = connection_file_config(args.connection)
    else:
        facts = inventory_facts(args.inventory, args.host)
        with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
            handle.write(facts["ca_pem"])
        ca_temp, bootstrap = handle.name, facts["bootstrap"]
        config = dict(bootstrap_servers=facts["bootstrap"].split(","), security_protocol="SASL_SSL",
                      sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=facts["user"],
                      sasl_plain_password=facts["password"], ssl_cafile=handle.name, api_version=(4, 0))
    run_id = args.run_id or uuid.uuid4().hex[:8]
    if "|" in run_id:
        sys.exit("kafka_load: --run-id must not contain '|'")
    if not args.no_create:
        admin = KafkaAdminClient(**config)
        try:
            admin.create_topics({args.topic: {"num_partitions": args.partitions, "replication_factor": 3,
                                              "configs": {"min.insync.replicas": "2"}}}, wait_for_metadata=True)
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()  # a fresh client deletes the topic at the end: this one's metadata would be stale by then

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.log_file:
        handler = logging.FileHandler(args.log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger("kafka").addHandler(handler)
        logging.getLogger("kafka").setLevel(args.log_level)
    client_fix = False if args.no_client_fix else fix_idempotent_reset()
    events = Events(args.events)
    retried = RetriedErrors(events)
    logging.getLogger("kafka.producer.sender").addHandler(retried)
    events.write("start", run=run_id, topic=args.topic, rate=args.rate, delivery_timeout_s=args.delivery_timeout,
                 request_timeout_s=args.request_timeout, pid=os.getpid(), client_fix=client_fix)

    live = None
    if args.live_consumer:
        live = LiveConsumer(config, args.topic, run_id, events)
        live.start()
        live.ready.wait(90)
        if live.error or not live.ready.is_set():
            events.write("stop", reason="consumer failed")
            events.close()
            sys.exit(f"kafka_load: the live consumer could not start: {live.error or 'timeout'}")

    load = None
    for attempt in range(10):  # a just-created SCRAM user may not be known to every broker yet
        try:
            load = Load(config, args.topic, args.rate, args.size, run_id, events, args.delivery_timeout,
                        args.request_timeout, args.max_block)
            break
        except Exception as exc:
            events.write("producer_retry", error=f"{type(exc).__name__}: {exc}"[:200])
            if attempt == 9 or stop.is_set():
                raise
            time.sleep(3)
    print(f"kafka_load: producing {args.rate:g} msg/s (acks=all, idempotent) to {args.topic} at {bootstrap}, run {run_id}",
          file=sys.stderr, flush=True)
    elapsed = load.run(stop, args.duration, args.stop_file)

    if live is not None:
        live.finish.set()
        live.done.wait(live.finish_timeout + 60)
        seen = set(live.seen)
    else:
        seen = consume_all(config, args.topic)
    missing = sorted(load.acked_ids - seen)

    summary = {
        "topic": args.topic, "run": run_id, "seconds": round(elapsed, 1), "rate_target": args.rate,
        "sent": load.sent, "acked": load.acked, "failed": load.failed, "unacknowledged": load.sent - load.acked - load.failed,
        "errors": dict(load.errors), "first_errors": load.first_errors,
        "broker_errors_retried": dict(retried.counts),
        # Sends still unresolved when the producer was closed (the client hung for good).
        "producer_stuck": load.stuck,
        # Longest time from a send to its ack or error; above the delivery timeout the client held sends back.
        "longest_send_wait_s": round(load.longest_wait, 1),
        "sends_overdue_seen": load.overdue_at is not None,
        "client_fix": client_fix,
        "read_back": len(seen), "acked_missing_from_topic": len(missing),
        "latency_ms": {"p50": round(percentile(load.latencies, 0.50) * 1000, 1),
                       "p99": round(percentile(load.latencies, 0.99) * 1000, 1),
                       "max": round(max(load.latencies, default=0) * 1000, 1)},
    }
    if live is not None:
        summary.update({
            "consumed": len(seen),
            "consumed_duplicates": live.duplicates,
            "consumed_other_runs": live.foreign,
            "acked_missing_ids": missing[:20],
            # Sends that reported an error (or never resolved) but were written: ambiguous outcomes, not loss.
            "consumed_not_acked": len(seen - load.acked_ids),
            "failed_but_written": len(seen & load.failed_ids),
            "consumer_caught_up": live.caught_up,
            "consumer_error": live.error,
            # Times the live consumer was reopened because kafka-python's client had wedged (see LiveConsumer).
            "consumer_reopened": live.reopened,
            "zero_loss": not missing and live.caught_up,
        })
    events.write("stop", **{k: summary[k] for k in ("sent", "acked", "failed", "read_back", "acked_missing_from_topic")})
    events.close()
    text = json.dumps(summary, indent=2)
    print(text, flush=True)
    if args.summary:
        Path(args.summary).write_text(text + "\n")
    if not args.keep and not args.no_create:
        try:
            cleanup = KafkaAdminClient(**config)
            cleanup.delete_topics([args.topic])
            cleanup.close()
        except Exception as exc:  # the measurement stands; say what is left behind
            print(f"kafka_load: could not delete topic {args.topic}: {type(exc).__name__}: {exc}", file=sys.stderr)
    if ca_temp:
        Path(ca_temp).unlink(missing_ok=True)
    ok = load.failed == 0 and not missing and load.acked == load.sent
    if load.stuck:  # a wedged kafka-python I/O thread must not keep the process (and the drill) waiting at exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if ok else 1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
