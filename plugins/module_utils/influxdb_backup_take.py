# Copyright: Isobar contributors
# Apache-2.0
"""Taking a full InfluxDB 2 backup through the API: the code of the influxdb_backup module (playbooks/backup.yml) and
of the automatic backup service (influxdb_backup_auto, isobar-backup.service), so both write the same backup.

take_backup() downloads a consistent snapshot of the metadata (GET /api/v2/backup/metadata) and then the TSM snapshot
of every shard (GET /api/v2/backup/shards/<id>), the protocol and on-disk format of `influx backup`, into a new
directory (0700, files 0600), plus our sidecar <base>.isobar.json (see influxdb_backup_common).
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import re
import shutil
import time

from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_common import (
    CHUNK, COMPRESSION_GZIP, MANIFEST_VERSION, SIDECAR_FORMAT, SIDECAR_SUFFIX, count_stop_for, count_values, file_sha256,
    token_fingerprint)
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import InfluxDBError

BASENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class BackupFailed(Exception):
    """The backup failed; the message says why and what was left (the partial directory is removed)."""


def utc_name(now=None):
    """The name of a backup taken now: its UTC time like `influx backup` (20260102T030405Z)."""
    return (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


class MultipartError(Exception):
    pass


def multipart_events(chunks, boundary):
    """Stream parser of a multipart body: yields ("part", headers), ("data", bytes) ..., ("end", None) per part."""
    delimiter = b"--" + boundary.encode("latin-1")
    separator = b"\r\n" + delimiter
    chunks = iter(chunks)
    buf = b""

    def more():
        nonlocal buf
        for chunk in chunks:
            if chunk:
                buf += chunk
                return True
        return False

    while True:  # preamble, up to the first delimiter
        start = buf.find(delimiter)
        if start >= 0:
            buf = buf[start + len(delimiter):]
            break
        if not more():
            raise MultipartError("the answer holds no multipart boundary")
    while True:
        while len(buf) < 2:
            if not more():
                raise MultipartError("the answer ended before its closing boundary")
        if buf.startswith(b"--"):
            return
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if not more():
                raise MultipartError("the answer ended inside part headers")
        headers = {}
        for line in buf[:end].split(b"\r\n"):
            if b":" in line:
                key, value = line.split(b":", 1)
                headers[key.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        buf = buf[end + 4:]
        yield "part", headers
        keep = len(separator) - 1
        while True:
            found = buf.find(separator)
            if found >= 0:
                if found:
                    yield "data", buf[:found]
                buf = buf[found + len(separator):]
                break
            if len(buf) > keep:
                yield "data", buf[:-keep]
                buf = buf[-keep:]
            if not more():
                raise MultipartError("the answer ended inside a part")
        yield "end", None


def part_name(headers):
    match = re.search(r'name="?([^";]+)"?', headers.get("content-disposition", ""))
    return match.group(1) if match else ""


class Backup:
    def __init__(self, module, api, path, base):
        self.module, self.api, self.path, self.base = module, api, path, base
        self.files = []  # (name, size, sha256)

    def _record(self, name):
        full = os.path.join(self.path, name)
        entry = {"fileName": name, "size": os.path.getsize(full), "compression": COMPRESSION_GZIP}
        self.files.append({"name": name, "size": entry["size"], "sha256": file_sha256(full)})
        return entry

    def metadata(self):
        """KV and SQL stores (saved gzipped, like the CLI) and the bucket manifest, from one locked snapshot."""
        resp = self.api.stream("GET", "/api/v2/backup/metadata", headers={"Accept-Encoding": "gzip"})
        match = re.search(r'boundary="?([^";]+)"?', resp.headers.get("Content-Type", ""))
        if not match:
            raise MultipartError(f"unexpected Content-Type {resp.headers.get('Content-Type')!r} of the metadata snapshot")
        entries, buckets_json, out, name = {}, b"", None, None
        try:
            for event, value in multipart_events(resp.stream(CHUNK, decode_content=True), match.group(1)):
                if event == "part":
                    name = part_name(value)
                    if name in ("kv", "sql"):
                        suffix = "bolt" if name == "kv" else "sqlite"
                        entries[name] = f"{self.base}.{suffix}.gz"
                        out = gzip.open(os.path.join(self.path, entries[name]), "wb")
                    elif name != "buckets":
                        raise MultipartError(f"the metadata snapshot has an unexpected part {name!r}")
                elif event == "data":
                    if out is not None:
                        out.write(value)
                    else:
                        buckets_json += value
                else:
                    if out is not None:
                        out.close()
                        out = None
        finally:
            if out is not None:
                out.close()
            resp.release_conn()
        if "kv" not in entries or not buckets_json:
            raise MultipartError("the metadata snapshot lacks the KV store or the bucket manifest")
        manifest = {"manifestVersion": MANIFEST_VERSION, "kv": self._record(entries["kv"])}
        if "sql" in entries:
            manifest["sql"] = self._record(entries["sql"])
        manifest["buckets"] = json.loads(buckets_json)
        return manifest

    def shard(self, shard_id):
        """The TSM snapshot of one shard, stored gzipped as sent; None when retention removed it meanwhile."""
        try:
            resp = self.api.stream("GET", f"/api/v2/backup/shards/{shard_id}", headers={"Accept-Encoding": "gzip"})
        except InfluxDBError as exc:
            if exc.status == 404:
                self.module.warn(f"shard {shard_id} was removed during the backup (retention); skipped")
                return None
            raise
        name = f"{self.base}.{shard_id}.tar.gz"
        full = os.path.join(self.path, name)
        try:
            if resp.headers.get("Content-Encoding", "").lower() == "gzip":
                with open(full, "wb") as out:
                    for chunk in resp.stream(CHUNK, decode_content=False):
                        out.write(chunk)
            else:
                with gzip.open(full, "wb") as out:
                    for chunk in resp.stream(CHUNK, decode_content=True):
                        out.write(chunk)
        finally:
            resp.release_conn()
        return self._record(name)


def take_backup(module, api, path, base, count_ids, token, org="", label="", influxdb_version=""):
    """Write a full backup into ``path`` (a new or empty directory, created 0700, files 0600).

    count_ids: {bucket name: (org id, bucket id)} of the buckets whose values are counted and recorded.
    Returns {files, bytes, seconds, buckets, shards, counts, sidecar}. Raises BackupFailed (the directory removed
    when this call created it); nothing on the server is changed either way.
    """
    started = time.monotonic()
    old_umask = os.umask(0o077)
    created = not os.path.exists(path)
    counts = {}
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
        # Counted first, up to a bound a little in the past (count_stop_for): the snapshot then holds every counted
        # value, and the points live writers add meanwhile are newer than the bound, so a restore counts the same.
        count_stop = count_stop_for(time.time())
        for name, (org_id, dummy) in count_ids.items():
            counts[name] = count_values(api, org_id, name, stop=count_stop)
        backup = Backup(module, api, path, base)
        manifest = backup.metadata()
        shards = 0
        for bucket in manifest["buckets"]:
            for policy in bucket.get("retentionPolicies") or []:
                for group in policy.get("shardGroups") or []:
                    kept = []
                    for shard in group.get("shards") or []:
                        entry = backup.shard(shard["id"])
                        if entry is not None:
                            kept.append(dict(shard, **entry))
                            shards += 1
                    group["shards"] = kept
        manifest_name = f"{base}.manifest"
        with open(os.path.join(path, manifest_name), "w", encoding="utf-8") as out:
            json.dump(manifest, out, indent=2)
            out.write("\n")
        backup._record(manifest_name)
        seconds = round(time.monotonic() - started, 3)
        sidecar = {
            "format": SIDECAR_FORMAT,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "basename": base,
            "label": label or "",
            "url": api.url,
            "influxdb_version": influxdb_version,
            "operator_token_sha256": token_fingerprint(token),
            "buckets": [f"{b.get('organizationName')}/{b.get('bucketName')}" for b in manifest["buckets"]],
            "shards": shards,
            "counts": counts,
            "count_stop": count_stop if counts else "",
            "count_org": org or "",
            "files": {f["name"]: f["sha256"] for f in backup.files},
            "bytes": sum(f["size"] for f in backup.files),
            "seconds": seconds,
        }
        sidecar_name = base + SIDECAR_SUFFIX
        with open(os.path.join(path, sidecar_name), "w", encoding="utf-8") as out:
            json.dump(sidecar, out, indent=2, sort_keys=True)
            out.write("\n")
        backup._record(sidecar_name)
    except (InfluxDBError, MultipartError, OSError, ValueError) as exc:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        message = exc.message if isinstance(exc, InfluxDBError) else str(exc)
        hint = " (the token needs operator permissions)" if getattr(exc, "status", None) in (401, 403) else ""
        raise BackupFailed(f"the backup failed: {message}{hint}. "
                           f"{'The partial directory was removed; n' if created else 'N'}othing on the server was "
                           f"changed.") from None
    finally:
        os.umask(old_umask)
    return dict(files=backup.files, bytes=sum(f["size"] for f in backup.files), seconds=seconds, buckets=sidecar["buckets"],
                shards=shards, counts=counts, sidecar=sidecar)
