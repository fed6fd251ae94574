# Copyright: Isobar contributors
# Apache-2.0
"""One publishing run of influx_to_kafka: the clients, the journaled batches, crash recovery, the result.

Shared by the module (one run, then exit) and the live producer service (pipeline_live: the same run again
every poll interval, clients kept open). ``module`` is an AnsibleModule or anything with the same
``params``, ``check_mode``, ``_diff`` and ``fail_json`` (the service's adapter raises instead of exiting).
"""

from __future__ import annotations

import os
import time

from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import InfluxDBApi, InfluxDBError, parse_duration
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import HAS_KAFKA, client_config, close_quietly, connect
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_senders import HAS_CONFLUENT_KAFKA, SendError, open_sender
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_producer import (
    FIRST_WINDOW_NS, NAME_RE, PipelineError, batch_query, check_state, count_from_tables, count_query, message_for,
    new_state, next_batch, next_window, ns_to_rfc3339, parse_annotated_csv, partition_for, points_from_tables,
    record_id, recovery_plan, rfc3339_to_ns, window_after_full_batch)

if HAS_KAFKA:
    from kafka import KafkaConsumer, TopicPartition
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
            for tp, (start, dummy) in todo.items():
                consumer.seek(tp, start)
            deadline = time.monotonic() + max(60, self.p["request_timeout"] * 4)
            while any(consumer.position(tp) < end for tp, (dummy, end) in todo.items()):
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
        """The sender of the chosen client library (kafka_senders), connected."""
        try:
            self.producer = open_sender(self.p)
        except SendError as exc:
            raise PipelineError(str(exc)) from None

    def send(self, messages):
        """Send (partition, key, value) messages in order; returns when every one is acknowledged."""
        self.await_sent(self.start_send(messages))

    def start_send(self, messages):
        """Hand the messages to the producer (in order) without waiting: the library's I/O threads send them while
        the caller goes on (the next batch's query); await_sent() waits for their acknowledgements.

        The record timestamp is the publish time (the point's time is in the value): Kafka's retention counts
        from record timestamps, so points of old windows would otherwise be deleted as soon as they arrive."""
        return self.producer.start(messages), messages

    def await_sent(self, sending):
        """Wait until every message of start_send() is acknowledged (raises otherwise), then count them."""
        handle, messages = sending
        try:
            self.producer.wait(handle, messages, timeout=max(60, self.p["request_timeout"] * 4))
        except SendError as exc:
            raise PipelineError(str(exc)) from None
        for message in messages:
            partition = str(message[0])
            self.counts["partitions"][partition] = self.counts["partitions"].get(partition, 0) + 1
        self.counts["messages"] += len(messages)

    def restart_clock(self):
        """A new run on the same clients (the live service's next poll): new counters and duration."""
        self.started = time.monotonic()
        self.counts = {"messages": 0, "recovered": 0, "already_delivered": 0, "batches": 0, "partitions": {}}

    def close(self):
        if self.producer is not None:
            try:
                self.producer.close()
            except Exception:
                pass
        close_quietly(self.admin)
        if self.api is not None:
            self.api.close()
        self.producer = self.admin = self.api = None


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
    # its value is checked by the module's choices and the service's check_producer_settings
    if p["kafka_client"] == "confluent-kafka" and not HAS_CONFLUENT_KAFKA:
        problems.append("kafka_client confluent-kafka needs the confluent-kafka library in this Python "
                        "(the client_venv role installs it)")
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

    # The live service keeps its clients open from one poll to the next; a one-shot run opens them here.
    if run.admin is None:
        run.admin = connect(module)  # fails the module with a clear message (TLS, auth, unreachable)
    if run.api is None:
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
    if run.producer is None:
        run.open_producer()  # before any journal entry: a refused login or ACL fails the run with nothing in flight
    if state.get("pending"):
        recover(run, store, state, partitions)
        changed = True

    batch_no = 0
    # The query window, adapted from one query to the next, and [cursor, scanned_to): held no point when looked at.
    # ``start`` only applies without a checkpoint: with one, points between the cursor and ``start`` would
    # otherwise be skipped (and check mode disagree).
    scan = {"window_ns": FIRST_WINDOW_NS, "scanned_to": None}

    def fetch(cursor, sent):
        """The points of the next batch after ``cursor`` (None: nothing more for this run), ``sent`` messages
        counted so far. Reads only: nothing is journaled or moved here."""
        while True:
            room = p["batch_size"] if not limit_total else min(p["batch_size"], limit_total - sent)
            if room <= 0:
                return None
            range_start = cursor["time_ns"] if cursor else start_ns
            if scan["scanned_to"] is not None:
                range_start = max(range_start, scan["scanned_to"])
            if range_start >= stop_ns:
                return None
            window_stop = min(stop_ns, range_start + scan["window_ns"])
            tables = run.query(batch_query(p["bucket"], p["measurement"], p["key_tag"], range_start, window_stop,
                                           cursor, room))
            found = points_from_tables(tables, p["measurement"], p["key_tag"])
            scan["window_ns"] = next_window(scan["window_ns"], len(found), room)
            if not found:
                if window_stop >= stop_ns:
                    return None
                scan["scanned_to"] = window_stop
                continue
            if len(found) * 2 < room and window_stop < stop_ns:
                continue  # a thin window: ask again with the wider one rather than send a small batch
            points = next_batch(found, room, p["key_tag"])
            if len(found) > room:
                scan["window_ns"] = window_after_full_batch(scan["window_ns"], range_start, points[-1]["time_ns"])
            return points

    points = fetch(state["cursor"], run.counts["messages"])
    while points:
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
        sending = run.start_send(messages)
        # While the batch is on its way, read the next one (it starts after this batch's last point): the query
        # no longer waits for the acknowledgements. A failed query is raised once this batch is delivered and
        # committed, so it leaves nothing in flight.
        try:
            points, query_error = fetch(state["pending"]["cursor_after"], run.counts["messages"] + len(messages)), None
        except PipelineError as exc:
            points, query_error = None, exc
        run.await_sent(sending)
        _fault("after_delivery", batch_no)
        commit(store, state, len(messages))
        run.counts["batches"] += 1
        if query_error is not None:
            raise query_error
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
