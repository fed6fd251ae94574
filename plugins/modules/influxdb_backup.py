#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Take a full InfluxDB 2 backup through its API, in the format of `influx backup`."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influxdb_backup
short_description: Take a full InfluxDB 2 backup through its API, in the on-disk format of C(influx backup)
description:
  - Downloads a consistent snapshot of the metadata (KV store, SQL store and the bucket/shard manifest, from
    C(GET /api/v2/backup/metadata)) and then the TSM snapshot of every shard (C(GET /api/v2/backup/shards/<id>)),
    the protocol of C(influx backup), into the new directory O(path).
  - The files are those C(influx backup) writes (manifest version 2, gzip), so C(influx restore --full) can restore
    them as well as M(influxdb_restore). Next to them a sidecar C(<base>.isobar.json) records the sha256 of every
    file, the fingerprint (sha256) of the operator token used - a full restore brings back the tokens of the backup,
    so a restore can tell in advance whether the token it holds will still exist afterwards - and the value counts
    of O(count_buckets).
  - Needs an operator token (all permissions on every org); the backup holds every secret of the instance (token
    hashes, user password hashes), so the directory is created mode 0700 and every file 0600.
  - Streams - shards are never held in memory; KV and SQL stores pass through memory in chunks.
  - Every run takes a new backup (a real change). In check mode the token and O(count_buckets) are checked and
    nothing is written.
version_added: "1.0.0"
author: Isobar contributors
extends_documentation_fragment:
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
options:
  token:
    description: Operator token (all permissions). Env C(INFLUX_TOKEN).
  org:
    description: Organization of the O(count_buckets). Env C(INFLUX_ORG).
    required: false
  timeout:
    description: Seconds to wait for a connection or for the next bytes of an answer.
  path:
    description:
      - Directory to write the backup into; created (mode 0700), and it must not exist yet or be empty.
      - Removed again when the backup fails half-way.
    type: path
    required: true
  basename:
    description: Prefix of the file names; default the UTC time of the backup like C(influx backup) (C(20260102T030405Z)).
    type: str
  count_buckets:
    description:
      - Buckets of O(org) whose field values are counted (all time) and recorded in the sidecar, so a restore can
        be checked against them. Counting reads every value (cheap for small buckets, slow for very large ones).
    type: list
    elements: str
    default: []
  label:
    description: Free text recorded in the sidecar as the source of the backup (e.g. the inventory host name).
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Back up InfluxDB into a staging directory on its host
  influxdb_backup:
    url: https://127.0.0.1:8086
    ca_path: /etc/isobar/pki/ca.crt
    token: "{{ influxdb_operator_token }}"
    org: myorg
    path: /var/backups/isobar-influxdb/20260102T030405Z
    basename: 20260102T030405Z
    count_buckets: [weather]
    label: "{{ inventory_hostname }}"
  register: backup

- name: Fetch every file of it to the controller
  ansible.builtin.fetch:
    src: "{{ backup.path }}/{{ item.name }}"
    dest: "/srv/backups/influxdb/{{ backup.basename }}/"
    flat: true
  loop: "{{ backup.files }}"
"""

RETURN = r"""
path:
  description: Directory of the backup.
  returned: always
  type: str
basename:
  description: Prefix of the file names (the backup's name).
  returned: always
  type: str
files:
  description: Files of the backup (manifest and sidecar last), each with its size and sha256.
  returned: success, not in check mode
  type: list
  elements: dict
  contains:
    name: {description: File name inside O(path)., type: str}
    size: {description: Bytes., type: int}
    sha256: {description: sha256 of the file., type: str}
bytes:
  description: Total size of the backup in bytes.
  returned: success, not in check mode
  type: int
seconds:
  description: Time the backup took.
  returned: success, not in check mode
  type: float
buckets:
  description: Names (C(org/bucket)) of the buckets in the backup.
  returned: success, not in check mode
  type: list
  elements: str
shards:
  description: Number of shards saved (shards removed by retention during the backup are skipped).
  returned: success, not in check mode
  type: int
counts:
  description: Field values per bucket of O(count_buckets) at backup time.
  returned: always
  type: dict
influxdb_version:
  description: Version of the server backed up.
  returned: always
  type: str
"""

import datetime
import gzip
import json
import os
import re
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_common import (
    CHUNK, COMPRESSION_GZIP, MANIFEST_VERSION, SIDECAR_FORMAT, SIDECAR_SUFFIX, count_values, file_sha256,
    server_version, token_fingerprint)
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import NOTHING_CHANGED, InfluxDBApi, InfluxDBError, influxdb_argument_spec

BASENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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


def main():
    argument_spec = influxdb_argument_spec(org_required=False)
    argument_spec.update(
        path=dict(type="path", required=True),
        basename=dict(type="str"),
        count_buckets=dict(type="list", elements="str", default=[]),
        label=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    path = params["path"]
    base = params["basename"] or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if not BASENAME_RE.match(base):
        module.fail_json(msg=f"basename {base!r} may hold only letters, digits, '_', '.' and '-'. {NOTHING_CHANGED}")
    if not params["token"]:
        module.fail_json(msg=f"token is required: a backup needs the operator token. {NOTHING_CHANGED}")
    if params["count_buckets"] and not params["org"]:
        module.fail_json(msg=f"count_buckets needs org (the buckets' organization). {NOTHING_CHANGED}")
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        module.fail_json(msg=f"{path} exists and is not an empty directory: a backup goes into a new directory. "
                             f"{NOTHING_CHANGED}")

    api = InfluxDBApi(module)
    result = dict(changed=True, path=path, basename=base, counts={}, influxdb_version=server_version(api))
    try:
        api.request("GET", "/api/v2/orgs", {"limit": 1})
    except InfluxDBError as exc:
        api.fail("cannot use the token", exc)
    count_ids = {}
    if params["count_buckets"]:
        org_id = api.org()["id"]
        for name in params["count_buckets"]:
            count_ids[name] = (org_id, api.bucket(name, org_id)["id"])
    if module._diff:
        result["diff"] = dict(before={"path": path, "backup": None}, after={"path": path, "backup": base})
    if module.check_mode:
        module.exit_json(**result)

    started = time.monotonic()
    old_umask = os.umask(0o077)
    created = not os.path.exists(path)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
        # Counted first: the snapshot then holds at least these values (writes may add more, never fewer).
        for name, (org_id, _) in count_ids.items():
            result["counts"][name] = count_values(api, org_id, name)
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
            "label": params["label"] or "",
            "url": api.url,
            "influxdb_version": result["influxdb_version"],
            "operator_token_sha256": token_fingerprint(params["token"]),
            "buckets": [f"{b.get('organizationName')}/{b.get('bucketName')}" for b in manifest["buckets"]],
            "shards": shards,
            "counts": result["counts"],
            "count_org": params["org"] or "",
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
        module.fail_json(msg=f"the backup failed: {message}{hint}. "
                             f"{'The partial directory was removed; n' if created else 'N'}othing on the server was changed.")
    finally:
        os.umask(old_umask)
        api.close()
    result.update(files=backup.files, bytes=sum(f["size"] for f in backup.files), seconds=seconds,
                  buckets=sidecar["buckets"], shards=shards)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
