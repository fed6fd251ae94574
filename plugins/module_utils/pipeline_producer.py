# Copyright: Isobar contributors
# Apache-2.0
"""Pure pieces of the influx_to_kafka module (no network, no files): Flux queries from a cursor,
InfluxDB annotated-CSV parsing, one JSON message per point, the key -> partition mapping, and the
recovery plan of a batch that was in flight when a run died.

The cursor is the last delivered point as (time in ns, key-tag value): points are published in
(time, key) order, so "after the cursor" is exact even when many stations share a timestamp.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import re
import time

SCHEMA_VERSION = 1
NAME_RE = re.compile(r"^[^\x00-\x1f]{1,255}$")
_RFC3339_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
# Columns every Flux table carries that are neither tags nor fields.
_META_COLUMNS = {"", "result", "table", "_start", "_stop", "_time", "_measurement", "_field", "_value"}


class PipelineError(Exception):
    """Bad input, inconsistent state or data; the message says what is wrong."""


# -- time ------------------------------------------------------------------------------------------
def rfc3339_to_ns(text):
    """'2026-01-02T03:04:05.123456789Z' (or an offset) -> nanoseconds since the epoch."""
    match = _RFC3339_RE.match(str(text).strip())
    if not match:
        raise PipelineError(f"{text!r} is not an RFC3339 time such as 2026-01-01T00:00:00Z")
    base, frac, zone = match.groups()
    seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 10**9 + int((frac or "0").ljust(9, "0"))


def ns_to_rfc3339(ns):
    """Nanoseconds since the epoch -> RFC3339 with 9 fractional digits, UTC ('Z')."""
    seconds, nanos = divmod(int(ns), 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


# -- Flux ------------------------------------------------------------------------------------------
def flux_string(value):
    """A Flux string literal (quotes, backslashes and ${ interpolation escaped)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return '"' + text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def _selection(bucket, measurement, key_tag, start_ns, stop_ns, cursor):
    """Points of the measurement that carry the key tag, in [start, stop), strictly after the cursor."""
    key = flux_string(key_tag)
    lines = [
        f"from(bucket: {flux_string(bucket)})",
        f'  |> range(start: time(v: "{ns_to_rfc3339(start_ns)}"), stop: time(v: "{ns_to_rfc3339(stop_ns)}"))',
        f"  |> filter(fn: (r) => r._measurement == {flux_string(measurement)} and exists r[{key}])",
    ]
    if cursor is not None:
        t0 = f'time(v: "{ns_to_rfc3339(cursor["time_ns"])}")'
        lines.append(f"  |> filter(fn: (r) => r._time > {t0} or (r._time == {t0} and r[{key}] > {flux_string(cursor['key'])}))")
    lines.append('  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")')
    return lines


def batch_query(bucket, measurement, key_tag, start_ns, stop_ns, cursor, limit):
    """The next points after the cursor: at most ``limit`` rows per series, each series in time order.

    The first ``limit`` points overall (by time, key) are among these rows; the caller merges and cuts.
    """
    lines = _selection(bucket, measurement, key_tag, start_ns, stop_ns, cursor)
    lines += ['  |> sort(columns: ["_time"])', f"  |> limit(n: {int(limit)})"]
    return "\n".join(lines) + "\n"


# A batch query reads a time window after the cursor instead of everything after it: per-series limits
# alone return up to (series x batch) rows, most of them thrown away (100 stations: 3 MB for 500 points).
FIRST_WINDOW_NS = 3600 * 10**9
MIN_WINDOW_NS = 10**6
MAX_WINDOW_NS = 200 * 365 * 86400 * 10**9
MAX_WINDOW_STEP = 16


def next_window(window_ns, found, wanted):
    """The window for the next query, sized so that it holds about ``wanted`` points (1.25x margin).

    ``found`` points came from a window of ``window_ns``; none found widens it by the largest step.
    """
    if found <= 0:
        factor = MAX_WINDOW_STEP
    else:
        factor = min(MAX_WINDOW_STEP, max(1.0 / MAX_WINDOW_STEP, 1.25 * wanted / found))
    return int(min(MAX_WINDOW_NS, max(MIN_WINDOW_NS, window_ns * factor)))


def window_after_full_batch(window_ns, range_start_ns, last_ns):
    """The next window once a query returned more points than a batch: 1.25 x the span that held the batch (from
    the range start to the batch's last point), if narrower than ``window_ns``.

    The returned count alone cannot say how dense the data is (each series is cut at the batch size), so a burst
    of many series, close in time, kept the window up to 16x too wide for several queries, each returning every
    point of the burst again (50 stations x 1000 points in one second: five queries of 50,000 rows).
    """
    span = max(0, int(last_ns) - int(range_start_ns)) + 1
    return int(max(MIN_WINDOW_NS, min(window_ns, 1.25 * span)))


def count_query(bucket, measurement, key_tag, start_ns, stop_ns, cursor):
    """How many points are after the cursor (check mode)."""
    lines = _selection(bucket, measurement, key_tag, start_ns, stop_ns, cursor)
    lines += ["  |> group()", '  |> count(column: "_measurement")']
    return "\n".join(lines) + "\n"


# -- annotated CSV ---------------------------------------------------------------------------------
def _converter(datatype, times):
    """The function that types one cell of a column of ``datatype`` (empty = null, except for strings).

    ``times`` caches RFC3339 conversions for one answer: a batch's rows share their _start and _stop, and the
    timestamps of many series (converting every cell anew was most of a batch's parsing time)."""
    if datatype == "double":
        return lambda raw: float(raw) if raw != "" else None
    if datatype in ("long", "unsignedLong"):
        return lambda raw: int(raw) if raw != "" else None
    if datatype == "boolean":
        return lambda raw: (raw == "true") if raw != "" else None
    if datatype.startswith("dateTime"):
        def convert_time(raw):
            if raw == "":
                return None
            ns = times.get(raw)
            if ns is None:
                ns = times[raw] = rfc3339_to_ns(raw)
            return ns
        return convert_time
    return lambda raw: raw


def parse_annotated_csv(text):
    """InfluxDB's annotated CSV (annotations datatype, group, default) -> tables.

    Returns a list of tables, each ``{"group": set of group-key columns, "rows": [dict, ...]}`` with
    typed values (times as ns integers). A Flux error row raises PipelineError.
    """
    tables = []
    datatypes = groups = header = columns = None
    block = 0
    current = None
    times = {}
    for record in csv.reader(io.StringIO(text)):
        if not record or all(cell == "" for cell in record):
            datatypes = groups = header = None  # a blank line ends a block; the next has its own annotations
            continue
        if record[0] == "#datatype":
            datatypes, header = record, None
            block += 1
            continue
        if record[0] == "#group":
            groups = record
            continue
        if record[0].startswith("#"):
            continue
        if header is None:
            header = record
            if "error" not in header or "reference" not in header:
                if datatypes is None or groups is None:
                    raise PipelineError("the query answer is not annotated CSV (datatype and group annotations missing)")
                columns = [(i, name, _converter(datatypes[i], times)) for i, name in enumerate(header) if name]
                table_column = header.index("table") if "table" in header else None
                group = {name for i, name in enumerate(header) if groups[i] == "true"}
            continue
        if "error" in header and "reference" in header:
            raise PipelineError(f"Flux error: {record[header.index('error')]}")
        width = len(record)
        row = {name: convert(record[i]) for i, name, convert in columns if i < width}
        table_id = (block, record[table_column] if table_column is not None and table_column < width else None)
        if table_id != current:
            tables.append({"group": set(group), "rows": []})
            current = table_id
        tables[-1]["rows"].append(row)
    return tables


def points_from_tables(tables, measurement, key_tag):
    """Pivoted tables -> points ``{"time_ns", "key", "tags", "fields"}``; tags are the group-key columns."""
    points = []
    for table in tables:
        tag_names = sorted(c for c in table["group"] if c not in _META_COLUMNS)
        for row in table["rows"]:
            fields = {c: v for c, v in row.items() if c not in _META_COLUMNS and c not in table["group"] and v is not None}
            if not fields:
                continue
            tags = {t: row[t] for t in tag_names if row.get(t) not in (None, "")}
            points.append({"time_ns": row["_time"], "key": tags.get(key_tag, row.get(key_tag)),
                           "measurement": row.get("_measurement", measurement), "tags": tags, "fields": fields})
    return points


def next_batch(points, limit, key_tag):
    """The first ``limit`` points by (time, key); refuses two points with the same time and key."""
    points = sorted(points, key=lambda p: (p["time_ns"], p["key"]))
    for prev, cur in zip(points, points[1:]):
        if (prev["time_ns"], prev["key"]) == (cur["time_ns"], cur["key"]):
            raise PipelineError(
                f"two series share {key_tag}={cur['key']!r} at {ns_to_rfc3339(cur['time_ns'])} "
                f"(tags {prev['tags']} and {cur['tags']}): key_tag must identify one series")
    return points[:limit]


def count_from_tables(tables):
    return sum(int(row.get("_measurement") or 0) for table in tables for row in table["rows"])


# -- messages --------------------------------------------------------------------------------------
def message_for(point, key_tag):
    """(key, value) of the Kafka message of one point. The value is compact JSON with a stable ``id``
    (measurement/key/time) a consumer may also use to detect duplicates."""
    value = {
        "id": f"{point['measurement']}/{point['key']}/{point['time_ns']}",
        "measurement": point["measurement"],
        key_tag: point["key"],
        "time": ns_to_rfc3339(point["time_ns"]),
        "time_ns": point["time_ns"],
        "tags": point["tags"],
        "fields": point["fields"],
    }
    return str(point["key"]), json.dumps(value, sort_keys=True, separators=(",", ":"))


def murmur2(data):
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as the Java and kafka-python clients use."""
    length = len(data)
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[i * 4:i * 4 + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    extra = length % 4
    tail = length & ~3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key, partitions):
    """The partition the default partitioner of every Kafka client picks for this key."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


# -- recovery of an in-flight batch ----------------------------------------------------------------
def message_id(message):
    """The ``id`` a journaled message [partition, key, value] carries in its JSON value, or None."""
    return record_id(message[2])


def record_id(value):
    """The ``id`` of a record's JSON value (bytes or str), or None when it is not one of our messages."""
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return None
    return data.get("id") if isinstance(data, dict) else None


def recovery_plan(pending, end_offsets, arrived):
    """Which messages of the journaled batch still have to be sent.

    ``pending["offsets_before"]`` are the partitions' end offsets before the batch was sent, ``end_offsets`` the
    end offsets now ({partition: offset}) and ``arrived`` the ids of the records read back at offsets
    [before, end) of each partition ({partition: [id or None, ...]}). A message counts as delivered when its id
    is among them, wherever it is: a send in the middle of the batch may have failed while later ones succeeded,
    so the arrived messages are not always the first N. Returns (indexes to resend in order, number already
    delivered, number of records in those ranges that are not a first delivery of this batch - another writer's
    or a duplicate). Raises PipelineError when the offsets or the records read back cannot be checked.
    """
    before = {int(p): int(o) for p, o in pending["offsets_before"].items()}
    per_partition = {}
    for index, message in enumerate(pending["messages"]):
        per_partition.setdefault(int(message[0]), []).append(index)
    resend, delivered, unexpected = [], 0, 0
    for partition in sorted(set(before) | set(per_partition)):
        if partition not in before or partition not in end_offsets:
            raise PipelineError(f"partition {partition} of the journaled batch is unknown to the topic now "
                                "(topic deleted or recreated?)")
        grown = int(end_offsets[partition]) - before[partition]
        if grown < 0:
            raise PipelineError(f"partition {partition} shrank from offset {before[partition]} to {end_offsets[partition]} "
                                "since the batch was journaled (topic recreated or records deleted)")
        ids = list(arrived.get(partition) or [])
        if len(ids) != grown:
            raise PipelineError(
                f"partition {partition} grew by {grown} records since the batch was journaled but {len(ids)} could be "
                "read back (deleted by retention or compaction?): the delivered messages cannot be told apart")
        here = set(ids)
        found = 0
        for index in per_partition.get(partition, []):
            mid = message_id(pending["messages"][index])
            if mid is not None and mid in here:
                found += 1
                here.discard(mid)  # a message counts once even if it arrived twice
            else:
                resend.append(index)
        delivered += found
        unexpected += grown - found
    return sorted(resend), delivered, unexpected


def new_state(source):
    return {"version": SCHEMA_VERSION, "source": source, "cursor": None, "pending": None,
            "delivered_total": 0, "updated": None}


def check_state(state, source, path):
    """A loaded checkpoint must be ours and belong to the same source and topic."""
    if not isinstance(state, dict) or state.get("version") != SCHEMA_VERSION or "source" not in state:
        raise PipelineError(f"checkpoint {path} is not an influx_to_kafka checkpoint of version {SCHEMA_VERSION}")
    if state["source"] != source:
        raise PipelineError(f"checkpoint {path} belongs to {state['source']}, not to {source}: "
                            "use another checkpoint_path for another source or topic")
    cursor = state.get("cursor")
    if cursor is not None and not (isinstance(cursor, dict) and isinstance(cursor.get("time_ns"), int) and "key" in cursor):
        raise PipelineError(f"checkpoint {path} has a malformed cursor: {cursor!r}")
    return state
