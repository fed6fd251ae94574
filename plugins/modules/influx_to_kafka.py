#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Publish new InfluxDB points to a Kafka topic, once each, from a durable checkpoint."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influx_to_kafka
short_description: Publish new InfluxDB 2 points to Kafka as JSON, once each, from a durable checkpoint
description:
  - Reads the points of one measurement of an InfluxDB 2 bucket that come after a checkpoint (Flux, in
    time then key order) and publishes each one as a JSON message keyed by its key tag (the station) to
    a Kafka topic, so that one station's points stay in order on one partition.
  - The producer is idempotent (no duplicates from its own retries) and waits for C(acks=all).
  - "Work goes in batches. Before a batch is sent, its messages and the partitions' end offsets are
    journaled in the checkpoint file; after every message of the batch is acknowledged, the checkpoint
    advances past the batch and the journal is cleared. Each step is an atomic, fsynced file replace."
  - "A run that died with a batch in flight (killed, host crash, broker failure) leaves the journal
    behind. The next run reads back the records written to each partition since the journaled end offsets
    and compares their message ids (C(id), in every message) with the batch's: it sends exactly the
    messages that are not there - wherever they were in the batch, a send in the middle may have failed
    while later ones succeeded - then advances the checkpoint. Points are therefore published once even
    across crashes. If the records cannot be read back (a recreated topic, records already deleted) the
    module stops with an error and sends nothing; records of another writer are left alone (a warning)."
  - A run with no new points reports C(changed=false) and sends nothing.
  - Runs on the same checkpoint exclude each other with a lock file; a second concurrent run fails at once.
version_added: "1.0.0"
author: Isobar contributors
extends_documentation_fragment:
  - isobar.pipeline.kafka_connection
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
notes:
  - The checkpoint is a point's time, so points written later with a time at or before the checkpoint
    are never published. Writers that deliver late set O(stop_lag) to their maximal delay.
  - Points without the key tag are not published. Two series with the same key tag value at the same
    time (they differ in another tag) are refused, O(key_tag) must identify one series.
  - The Kafka record timestamp is the publish time; the point's time is in the message (C(time), C(time_ns)).
    Topic retention counts from record timestamps, so points of an old window are kept as long as new ones.
  - Each query reads a time window after the checkpoint, sized from what the previous query held (first
    window 1 h, at most 16x wider or narrower per step), so a query returns about 1.25 x O(batch_size) rows
    whatever the number of stations or the length of the backlog; an empty window is skipped and the next is wider.
  - Adding partitions to the topic moves keys to other partitions (the usual Kafka caveat), so order per
    station holds within a partition only. A message resent because its send failed while later ones of the same
    batch arrived comes after them.
options:
  token:
    description: InfluxDB token allowed to read O(bucket) (the producer token). Env C(INFLUX_TOKEN).
    required: true
  bucket:
    description: Bucket to read.
    type: str
    required: true
  measurement:
    description: Measurement whose points are published.
    type: str
    default: weather
  key_tag:
    description: Tag whose value is the message key (one station, one partition, in order).
    type: str
    default: station
  topic:
    description: Kafka topic to publish to (must exist).
    type: str
    required: true
  checkpoint_path:
    description:
      - File keeping the checkpoint and the journal of the batch in flight (mode 0600). Its directory is
        created (0700) when missing. One checkpoint per source and topic; a checkpoint of another
        bucket, measurement, key tag or topic is refused.
    type: path
    required: true
  start:
    description:
      - Where to begin when there is no checkpoint yet; an RFC3339 time (C(2026-01-01T00:00:00Z)) or a
        negative duration relative to now (C(-30d)). Ignored once a checkpoint exists.
    type: str
    default: "1970-01-01T00:00:00Z"
  stop_lag:
    description: Only publish points older than now minus this duration (for writers that deliver late).
    type: str
    default: "0s"
  batch_size:
    description: Points per batch (one journal entry and one checkpoint step per batch).
    type: int
    default: 500
  max_messages:
    description: Publish at most this many points in this run (C(0) = all new points).
    type: int
    default: 0
  compression:
    description: Compression of the message batches.
    type: str
    choices: [none, gzip]
    default: none
  sasl_username:
    description:
      - SCRAM user of the producer. It needs WRITE on O(topic) (DESCRIBE comes with it) and READ on O(topic)
        to read back an interrupted batch (no consumer group is used).
attributes:
  check_mode:
    support: full
    details: Reads the checkpoint, connects to both services and counts the points a run would publish; sends nothing, writes nothing.
  diff_mode:
    support: full
    details: The checkpoint before and after (time, key, total delivered, batch in flight).
"""

EXAMPLES = r"""
- name: Publish the new weather points to Kafka
  influx_to_kafka:
    url: https://influxdb1:8086
    token: "{{ influxdb_client_tokens['producer'] }}"
    org: myorg
    ca_path: /etc/isobar/pki/ca.crt
    bucket: weather
    measurement: weather
    key_tag: station
    topic: weather
    checkpoint_path: /var/lib/isobar/producer/weather.checkpoint.json
    bootstrap_servers: "{{ kafka_bootstrap_servers.split(',') }}"
    sasl_username: producer
    sasl_password: "{{ kafka_scram_passwords['producer'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt
  vars:
    ansible_python_interpreter: /opt/isobar/venv/bin/python
  register: produced

- name: Report
  ansible.builtin.debug:
    msg: "{{ produced.messages }} messages at {{ produced.rate }} msg/s"
"""

RETURN = r"""
messages:
  description: Messages published by this run (in check mode, that a run would publish), resent ones included.
  returned: always
  type: int
  sample: 1200
recovered:
  description: Messages of an interrupted batch that this run sent (they had not arrived).
  returned: always
  type: int
  sample: 37
already_delivered:
  description: Messages of an interrupted batch that had arrived before the crash and were not sent again.
  returned: always
  type: int
  sample: 63
batches:
  description: Batches published by this run (a recovered batch counts as one).
  returned: always
  type: int
  sample: 3
partitions:
  description: Messages per partition published by this run.
  returned: always
  type: dict
  sample: {"0": 300, "1": 310, "2": 290, "3": 300}
duration:
  description: Seconds the run took (queries, sends and checkpoint writes).
  returned: always
  type: float
  sample: 2.41
rate:
  description: Messages per second over the run (0 when nothing was sent).
  returned: always
  type: float
  sample: 497.9
checkpoint:
  description: The checkpoint after the run.
  returned: always
  type: dict
  contains:
    time: {description: Time of the last published point (RFC3339, ns) or null., type: str}
    key: {description: Key tag value of the last published point or null., type: str}
    delivered_total: {description: Messages published through this checkpoint since it was created., type: int}
    pending: {description: Messages in an unfinished batch (0 after a successful run)., type: int}
"""

import os
import time
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import InfluxDBApi, InfluxDBError, influxdb_argument_spec, parse_duration
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import (
    HAS_KAFKA, KAFKA_CONNECTION_ARGS, check_kafka_library, client_config, close_quietly, connect, describe_exception)
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_checkpoint import CheckpointBusy, CheckpointStore
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_producer import (
    FIRST_WINDOW_NS, NAME_RE, PipelineError, batch_query, check_state, count_from_tables, count_query, message_for,
    new_state, next_batch, next_window, ns_to_rfc3339, parse_annotated_csv, partition_for, points_from_tables,
    record_id, recovery_plan, rfc3339_to_ns)

if HAS_KAFKA:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import OffsetSpec
    from kafka.errors import OffsetOutOfRangeError, TopicAuthorizationFailedError

NOTHING_SENT = "Nothing was sent and the checkpoint is unchanged."
# Fault injection for the crash tests only: ISOBAR_FAULT_INJECT=<stage>:<batch number>.
FAULT_ENV = "ISOBAR_FAULT_INJECT"
OFFSETS_SETTLE_SECONDS = 1.0


def _fault(stage, batch_no):
    wanted = os.environ.get(FAULT_ENV, "")
    if wanted and wanted == f"{stage}:{batch_no}":
        os._exit(86)  # like a SIGKILL: no cleanup, no checkpoint write


def summary(state):
    cursor = (state or {}).get("cursor")
    pending = (state or {}).get("pending")
    return {
        "time": ns_to_rfc3339(cursor["time_ns"]) if cursor else None,
        "key": cursor["key"] if cursor else None,
        "delivered_total": (state or {}).get("delivered_total", 0),
        "pending": len(pending["messages"]) if pending else 0,
    }


class Run:
    """One run: the clients, the state, the counters."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.started = time.monotonic()
        self.admin = None
        self.producer = None
        self.api = None
        self.counts = {"messages": 0, "recovered": 0, "already_delivered": 0, "batches": 0, "partitions": {}}

    # -- services --------------------------------------------------------------------------------
    def query(self, flux):
        try:
            resp = self.api.request("POST", "/api/v2/query", {"org": self.p["org"]},
                                    body={"query": flux, "type": "flux",
                                          "dialect": {"header": True, "annotations": ["datatype", "group", "default"]}},
                                    headers={"Accept": "application/csv"}, raw=True)
        except InfluxDBError as exc:
            hint = {401: " (token not accepted)", 403: " (the token may not read this bucket)",
                    404: " (unknown organization or bucket)"}.get(exc.status, "")
            raise PipelineError(f"InfluxDB query failed: {exc.message}{hint}") from None
        data = resp.data.decode("utf-8") if isinstance(resp.data, bytes) else resp.data
        return parse_annotated_csv(data)

    def partitions(self):
        topics = self.admin.describe_topics([self.p["topic"]])
        info = topics[0] if topics else None
        if not info or info.get("error_code") or not info.get("partitions"):
            code = (info or {}).get("error_code")
            raise PipelineError(f"topic {self.p['topic']!r} cannot be described (error code {code}): it must exist "
                                "(kafka_topic) and the producer needs WRITE on it")
        return sorted(part["partition_index"] for part in info["partitions"])

    def end_offsets(self, partitions, settle=False):
        """End offsets (high watermarks); with settle, read until two reads a second apart agree."""
        specs = {TopicPartition(self.p["topic"], n): OffsetSpec.LATEST for n in partitions}

        def read():
            got = self.admin.list_partition_offsets(specs)
            return {tp.partition: value.offset for tp, value in got.items()}

        offsets = read()
        while settle:
            time.sleep(OFFSETS_SETTLE_SECONDS)
            again = read()
            if again == offsets:
                break
            offsets = again
        return offsets

    def read_back(self, ranges):
        """Message ids of the records at offsets [start, end) of each partition: {partition: [id or None, ...]}."""
        got = {partition: [] for partition in ranges}
        todo = {TopicPartition(self.p["topic"], n): span for n, span in ranges.items() if span[1] > span[0]}
        if not todo:
            return got
        config = client_config(self.p)
        config.update(client_id="isobar-influx-to-kafka-recovery", group_id=None, enable_auto_commit=False,
                      auto_offset_reset="none")
        consumer = KafkaConsumer(**config)
        try:
            consumer.assign(list(todo))
            for tp, (start, _) in todo.items():
                consumer.seek(tp, start)
            deadline = time.monotonic() + max(60, self.p["request_timeout"] * 4)
            while any(consumer.position(tp) < end for tp, (_, end) in todo.items()):
                if time.monotonic() > deadline:
                    raise PipelineError("reading back the records of the interrupted batch took too long")
                for tp, records in consumer.poll(timeout_ms=500).items():
                    end = todo[tp][1]
                    got[tp.partition].extend(record_id(r.value) for r in records if r.offset < end)
        except TopicAuthorizationFailedError:
            raise PipelineError(f"the producer may not read topic {self.p['topic']!r}: READ on it is needed to check "
                                "which messages of the interrupted batch arrived") from None
        except OffsetOutOfRangeError:
            raise PipelineError("records of the interrupted batch were deleted (retention) before they could be "
                                "checked") from None
        finally:
            consumer.close()
        return got

    def open_producer(self):
        config = client_config(self.p)
        config.update(client_id="isobar-influx-to-kafka", acks="all", enable_idempotence=True,
                      max_in_flight_requests_per_connection=5, linger_ms=20,
                      delivery_timeout_ms=max(120000, self.p["request_timeout"] * 4000),
                      compression_type=None if self.p["compression"] == "none" else self.p["compression"])
        self.producer = KafkaProducer(**config)

    def send(self, messages):
        """Send (partition, key, value) messages in order; returns when every one is acknowledged.

        The record timestamp is the publish time (the point's time is in the value): Kafka's retention counts
        from record timestamps, so points of old windows would otherwise be deleted as soon as they arrive."""
        futures = [self.producer.send(self.p["topic"], key=key.encode("utf-8"), value=value.encode("utf-8"),
                                      partition=partition)
                   for partition, key, value in messages]
        self.producer.flush(timeout=max(60, self.p["request_timeout"] * 4))
        for future, message in zip(futures, messages):
            if not future.is_done:
                raise PipelineError(f"message to partition {message[0]} not acknowledged in time")
            if future.failed():
                raise future.exception
            partition = str(message[0])
            self.counts["partitions"][partition] = self.counts["partitions"].get(partition, 0) + 1
        self.counts["messages"] += len(messages)

    def close(self):
        if self.producer is not None:
            try:
                self.producer.close(timeout=5)
            except Exception:
                pass
        close_quietly(self.admin)
        if self.api is not None:
            self.api.close()


def validate(module):
    p = module.params
    problems = []
    for name in ("bucket", "measurement", "key_tag", "org"):
        if not p[name] or not NAME_RE.match(p[name]):
            problems.append(f"{name} must be a non-empty name without control characters")
    if not p["url"].startswith("https://") and p["validate_certs"]:
        problems.append(f"url {p['url']!r} must use https://")
    if not 1 <= p["batch_size"] <= 100000:
        problems.append(f"batch_size must be between 1 and 100000, got {p['batch_size']}")
    if p["max_messages"] < 0:
        problems.append("max_messages must be 0 (no limit) or positive")
    if not p["token"]:
        problems.append("token must not be empty")
    try:
        lag = parse_duration(p["stop_lag"], "stop_lag")
    except ValueError as exc:
        problems.append(str(exc))
        lag = 0
    start = p["start"].strip()
    start_ns = None
    try:
        start_ns = time.time_ns() - parse_duration(start[1:], "start") if start.startswith("-") else rfc3339_to_ns(start)
    except (ValueError, PipelineError) as exc:
        problems.append(f"start: {exc}")
    if os.path.isdir(p["checkpoint_path"]):
        problems.append(f"checkpoint_path {p['checkpoint_path']} is a directory; give a file name")
    if problems:
        module.fail_json(msg="influx_to_kafka: " + "; ".join(problems) + ". " + NOTHING_SENT)
    return start_ns, lag


def main():
    argument_spec = influxdb_argument_spec(token_required=True)
    argument_spec.update(KAFKA_CONNECTION_ARGS)
    argument_spec.update(
        bucket=dict(type="str", required=True),
        measurement=dict(type="str", default="weather"),
        key_tag=dict(type="str", default="station"),
        topic=dict(type="str", required=True),
        checkpoint_path=dict(type="path", required=True),
        start=dict(type="str", default="1970-01-01T00:00:00Z"),
        stop_lag=dict(type="str", default="0s"),
        batch_size=dict(type="int", default=500),
        max_messages=dict(type="int", default=0),
        compression=dict(type="str", default="none", choices=["none", "gzip"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_kafka_library(module)
    p = module.params
    start_ns, lag_ns = validate(module)
    stop_ns = time.time_ns() - lag_ns
    source = {"org": p["org"], "bucket": p["bucket"], "measurement": p["measurement"], "key_tag": p["key_tag"],
              "topic": p["topic"]}
    store = CheckpointStore(p["checkpoint_path"])

    if not module.check_mode and not os.path.isdir(store.directory):
        os.makedirs(store.directory, mode=0o700, exist_ok=True)
    run = Run(module)
    try:
        if module.check_mode:
            result = execute(run, store, source, start_ns, stop_ns)
        else:
            with store.locked():
                result = execute(run, store, source, start_ns, stop_ns)
    except CheckpointBusy as exc:
        run.close()
        module.fail_json(msg=f"influx_to_kafka: {exc}: another run is publishing from this checkpoint. {NOTHING_SENT}")
    except ValueError as exc:
        run.close()
        module.fail_json(msg=f"influx_to_kafka: {exc}. {NOTHING_SENT}")
    except PipelineError as exc:
        run.close()
        module.fail_json(msg=f"influx_to_kafka: {exc}. {progress_text(run)}", **run.counts)
    except Exception as exc:
        run.close()
        text = describe_exception(exc, p, p["sasl_username"])
        module.fail_json(msg=f"influx_to_kafka: {text}. {progress_text(run)}", exception=traceback.format_exc(),
                         **run.counts)
    run.close()
    module.exit_json(**result)


def progress_text(run):
    if run.counts["messages"] == 0:
        return "No message was confirmed in this run; an interrupted batch, if any, is completed by the next run."
    return (f"{run.counts['messages']} messages were confirmed and checkpointed before the error; the next run "
            "resumes after them and completes the interrupted batch without duplicates.")


def execute(run, store, source, start_ns, stop_ns):
    module, p = run.module, run.p
    state = store.load()
    state = check_state(state, source, store.path) if state is not None else new_state(source)
    before = summary(state) if store.exists() else summary(None)

    run.admin = connect(module)  # fails the module with a clear message (TLS, auth, unreachable)
    run.api = InfluxDBApi(module)
    partitions = run.partitions()
    limit_total = p["max_messages"] or None

    if module.check_mode:
        pending = state.get("pending")
        cursor = pending["cursor_after"] if pending else state["cursor"]
        todo = 0
        range_start = cursor["time_ns"] if cursor else start_ns
        if range_start < stop_ns:
            todo = count_from_tables(run.query(count_query(p["bucket"], p["measurement"], p["key_tag"],
                                                           range_start, stop_ns, cursor)))
        if limit_total:
            todo = min(todo, limit_total)
        in_flight = len(pending["messages"]) if pending else 0
        run.counts["messages"] = todo + in_flight
        changed = bool(todo or in_flight)
        return finish(run, state, before, changed, check_mode=True)

    changed = False
    run.open_producer()  # before any journal entry: a refused login or ACL fails the run with nothing in flight
    if state.get("pending"):
        recover(run, store, state, partitions)
        changed = True

    batch_no = 0
    window_ns = FIRST_WINDOW_NS
    # [cursor, scanned_to) held no point when this run looked. ``start`` only applies without a checkpoint:
    # with one, points between the cursor and ``start`` would otherwise be skipped (and check mode disagree).
    scanned_to = None
    while True:
        room = p["batch_size"] if not limit_total else min(p["batch_size"], limit_total - run.counts["messages"])
        if room <= 0:
            break
        cursor = state["cursor"]
        range_start = cursor["time_ns"] if cursor else start_ns
        if scanned_to is not None:
            range_start = max(range_start, scanned_to)
        if range_start >= stop_ns:
            break
        window_stop = min(stop_ns, range_start + window_ns)
        tables = run.query(batch_query(p["bucket"], p["measurement"], p["key_tag"], range_start, window_stop,
                                       cursor, room))
        found = points_from_tables(tables, p["measurement"], p["key_tag"])
        window_ns = next_window(window_ns, len(found), room)
        if not found:
            if window_stop >= stop_ns:
                break
            scanned_to = window_stop
            continue
        if len(found) * 2 < room and window_stop < stop_ns:
            continue  # a thin window: ask again with the wider one rather than send a small batch
        points = next_batch(found, room, p["key_tag"])
        batch_no += 1
        messages = []
        for point in points:
            key, value = message_for(point, p["key_tag"])
            messages.append([partition_for(key, len(partitions)), key, value])
        offsets = run.end_offsets(partitions)
        last = points[-1]
        state["pending"] = {"offsets_before": {str(k): v for k, v in offsets.items()}, "messages": messages,
                            "cursor_after": {"time_ns": last["time_ns"], "key": last["key"]}}
        store.save(stamp(state))
        changed = True
        _fault("after_journal", batch_no)
        if os.environ.get(FAULT_ENV) == f"partial_send:{batch_no}":
            run.send(messages[: len(messages) // 2])
            _fault("partial_send", batch_no)
        if os.environ.get(FAULT_ENV) == f"gap_send:{batch_no}":  # a send in the middle failed, later ones did not
            run.send(messages[: len(messages) // 2] + messages[len(messages) // 2 + 1:])
            _fault("gap_send", batch_no)
        run.send(messages)
        _fault("after_delivery", batch_no)
        commit(store, state, len(messages))
        run.counts["batches"] += 1
    return finish(run, state, before, changed)


def recover(run, store, state, partitions):
    """Complete the batch a previous run left in flight: send exactly the messages that did not arrive."""
    pending = state["pending"]
    missing = [int(p) for p in pending["offsets_before"] if int(p) not in partitions]
    if missing:
        raise PipelineError(f"partitions {missing} of the interrupted batch no longer exist in topic {run.p['topic']!r}")
    offsets = run.end_offsets(partitions, settle=True)
    before = {int(n): int(o) for n, o in pending["offsets_before"].items()}
    arrived = run.read_back({n: (before[n], offsets[n]) for n in before if n in offsets})
    resend, delivered, unexpected = recovery_plan(pending, offsets, arrived)
    if unexpected:
        run.module.warn(f"{unexpected} records written to {run.p['topic']!r} while the batch was in flight are not "
                        "messages of this batch (another writer, or duplicates): left as they are")
    run.counts["already_delivered"] = delivered
    if resend:
        run.send([pending["messages"][i] for i in resend])
        run.counts["recovered"] = len(resend)
    commit(store, state, len(pending["messages"]))
    run.counts["batches"] += 1


def commit(store, state, delivered):
    state["cursor"] = state["pending"]["cursor_after"]
    state["pending"] = None
    state["delivered_total"] = state.get("delivered_total", 0) + delivered
    store.save(stamp(state))


def stamp(state):
    state["updated"] = ns_to_rfc3339(time.time_ns())
    return state


def finish(run, state, before, changed, check_mode=False):
    elapsed = time.monotonic() - run.started
    sent = run.counts["messages"]
    result = dict(changed=changed, duration=round(elapsed, 3),
                  rate=round(sent / elapsed, 1) if sent and elapsed > 0 and not check_mode else 0.0,
                  checkpoint=summary(state), **run.counts)
    if run.module._diff:
        after = summary(state)
        if check_mode and changed:  # the new cursor is only known once the points are read
            after = dict(before, time="(after the new points)", key=None, pending=0,
                         delivered_total=before["delivered_total"] + run.counts["messages"])
        result["diff"] = {"before": before, "after": after}
    return result


if __name__ == "__main__":
    main()
