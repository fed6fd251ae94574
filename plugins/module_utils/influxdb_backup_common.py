# Copyright: Isobar contributors
# Apache-2.0
"""Shared code of influxdb_backup and influxdb_restore.

On disk a backup is exactly what `influx backup` (influx-cli v2, manifest version 2) writes, so either tool can
restore it: <base>.bolt.gz (KV store), <base>.sqlite.gz (SQL store), <base>.<shard id>.tar.gz (TSM snapshot of
one shard, as the server sends it) and <base>.manifest (JSON: file names, sizes, compression, and the bucket /
retention policy / shard group / shard tree of the server). We add one sidecar the CLI ignores,
<base>.isobar.json: when and where the backup was taken, the sha256 of every file, the fingerprint (sha256) of
the operator token it was taken with (so a restore can tell in advance whether that token will still exist
afterwards) and optional per-bucket value counts.
"""

from __future__ import annotations

import csv
import datetime
import glob
import hashlib
import io
import json
import os

from ansible_collections.isobar.pipeline.plugins.module_utils.file_set import sha256_of as file_sha256  # noqa: F401 (re-exported)
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import NOTHING_CHANGED, InfluxDBError

MANIFEST_VERSION = 2
COMPRESSION_NONE = 0  # influx-cli's FileCompression, serialised as a number
COMPRESSION_GZIP = 1
SIDECAR_SUFFIX = ".isobar.json"
SIDECAR_FORMAT = 1
# Flux's time range covering every point a bucket can hold (the engine's limits are 1677..2262).
ALL_TIME = "start: 1970-01-01T00:00:00Z, stop: 2262-04-11T00:00:00Z"
# Points of the last seconds before a backup are left out of its counts: they may still be arriving (count_stop_for).
COUNT_SETTLE_SECONDS = 2
CHUNK = 1 << 20


def token_fingerprint(token):
    """sha256 of a token value: tells whether two tokens are the same without keeping either."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def server_version(api):
    """Version string influxd reports on /health (e.g. v2.9.1), '' when it says nothing."""
    try:
        health = api.request("GET", "/health", auth=False) or {}
    except InfluxDBError:
        return ""
    return str(health.get("version") or "")


def _flux_string(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def flux_rows(api, org_id, query):
    """Run a Flux query; the rows of its CSV answer as dicts."""
    resp = api.request("POST", "/api/v2/query", {"orgID": org_id},
                       body={"query": query, "type": "flux", "dialect": {"annotations": [], "header": True}},
                       headers={"Accept": "application/csv"}, raw=True)
    text = resp.data.decode("utf-8") if isinstance(resp.data, bytes) else str(resp.data or "")
    rows, header = [], None
    for row in csv.reader(io.StringIO(text)):
        if not row or not any(cell.strip() for cell in row):
            header = None  # a blank line ends a table; the next one repeats its header
            continue
        if header is None:
            header = row
            continue
        rows.append(dict(zip(header, row)))
    return rows


def count_stop_for(now_s):
    """The bound of a backup's counts: whole seconds, COUNT_SETTLE_SECONDS before ``now_s`` (RFC3339).

    The snapshot is taken after the count, and live writers (the inject service, Telegraf) keep adding points of the
    current time meanwhile: counting only the points older than this bound, on both sides (backup and restore), keeps
    the counts of one backup equal to what its snapshot holds, so a restored target is recognised on a re-run."""
    stop = int(now_s) - COUNT_SETTLE_SECONDS
    return datetime.datetime.fromtimestamp(stop, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def count_values(api, org_id, bucket, stop=None):
    """Number of stored field values in a bucket (every field of every point; with ``stop`` (RFC3339), of the
    points before it)."""
    time_range = f"start: 1970-01-01T00:00:00Z, stop: {stop}" if stop else ALL_TIME
    rows = flux_rows(api, org_id, f"from(bucket: {_flux_string(bucket)}) |> range({time_range}) "
                                  f"|> count() |> group() |> sum()")
    return sum(int(r["_value"]) for r in rows if r.get("_value", "") != "")


def has_points(api, org_id, bucket):
    """Whether a bucket holds at least one point (cheap: the first value of each series, then one row)."""
    rows = flux_rows(api, org_id, f"from(bucket: {_flux_string(bucket)}) |> range({ALL_TIME}) |> first() "
                                  f'|> keep(columns: ["_time"]) |> group() |> limit(n: 1)')
    return bool(rows)


class BackupFormatError(Exception):
    """The backup directory is incomplete or corrupt."""


def load_backup(path, verify_checksums=True):
    """Read and check one backup directory: (manifest, sidecar or {}, base name, files [(name, size)]).

    Checks that exactly one manifest is there, that it is manifest version 2, that every file it names exists
    with its recorded size and, when our sidecar is there, has its recorded sha256. Raises BackupFormatError.
    """
    if not os.path.isdir(path):
        raise BackupFormatError(f"{path} is not a directory")
    manifests = sorted(glob.glob(os.path.join(path, "*.manifest")))
    if len(manifests) != 1:
        raise BackupFormatError(f"{path} must hold exactly one *.manifest (one backup per directory), found "
                                f"{len(manifests)}")
    base = os.path.basename(manifests[0])[:-len(".manifest")]
    try:
        with open(manifests[0], encoding="utf-8") as handle:
            manifest = json.load(handle)
    except ValueError as exc:
        raise BackupFormatError(f"{manifests[0]} is not valid JSON: {exc}") from None
    if manifest.get("manifestVersion") != MANIFEST_VERSION:
        raise BackupFormatError(f"{manifests[0]} has manifestVersion {manifest.get('manifestVersion')!r}; only "
                                f"{MANIFEST_VERSION} (influx CLI 2.1+, InfluxDB 2.1+) is supported")
    if not (manifest.get("kv") or {}).get("fileName"):
        raise BackupFormatError(f"{manifests[0]} names no KV store file")
    sidecar = {}
    sidecar_path = os.path.join(path, base + SIDECAR_SUFFIX)
    if os.path.exists(sidecar_path):
        try:
            with open(sidecar_path, encoding="utf-8") as handle:
                sidecar = json.load(handle)
        except ValueError as exc:
            raise BackupFormatError(f"{sidecar_path} is not valid JSON: {exc}") from None
    entries = [manifest["kv"]] + ([manifest["sql"]] if manifest.get("sql") else []) + list(iter_shards(manifest))
    files = []
    for entry in entries:
        name = entry.get("fileName") or ""
        if not name or os.path.basename(name) != name:
            raise BackupFormatError(f"the manifest names an invalid file {name!r}")
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            raise BackupFormatError(f"{name} (named in the manifest) is missing")
        size = os.path.getsize(full)
        if "size" in entry and size != entry["size"]:
            raise BackupFormatError(f"{name} has {size} bytes, the manifest says {entry['size']}: truncated or changed")
        want = (sidecar.get("files") or {}).get(name)
        if verify_checksums and want and file_sha256(full) != want:
            raise BackupFormatError(f"{name} does not match its sha256 in {base}{SIDECAR_SUFFIX}: corrupt")
        files.append((name, size))
    return manifest, sidecar, base, files


def holds_the_backup(manifest, counts_before, target_buckets, counts_now):
    """Whether a target already holds exactly this backup, so that restoring it would change nothing.

    target_buckets: {bucket id: name} of the target; counts_now: a function returning its current value counts
    of the buckets the backup counted (called only when the buckets match, counting reads every point).
    True only when the target's buckets are the backup's, IDs included (IDs are random, so equal
    IDs mean the backup's KV store is the target's), and every count recorded at backup time is the target's now
    (no point written or lost since). A backup without recorded counts cannot be compared: False.
    """
    if not counts_before:
        return False
    backup_buckets = {b.get("bucketID"): b.get("bucketName") for b in manifest.get("buckets") or []}
    if not backup_buckets or None in backup_buckets or backup_buckets != dict(target_buckets):
        return False
    now = counts_now()
    return all(now.get(name) == int(count) for name, count in counts_before.items())


def iter_shards(manifest):
    """Every shard entry of a manifest (with fileName/size/compression)."""
    for bucket in manifest.get("buckets") or []:
        for policy in bucket.get("retentionPolicies") or []:
            for group in policy.get("shardGroups") or []:
                yield from group.get("shards") or []


def fail_format(module, path, exc):
    module.fail_json(msg=f"backup {path} cannot be restored: {exc}. {NOTHING_CHANGED}")
