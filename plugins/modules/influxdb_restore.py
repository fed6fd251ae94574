#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Fully restore an InfluxDB 2 backup (influx backup format) onto an instance, a fresh one in particular."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influxdb_restore
short_description: Fully restore an InfluxDB 2 backup onto an instance (a fresh one in particular), through its API
description:
  - Restores a backup written by M(isobar.pipeline.influxdb_backup) or C(influx backup) the way C(influx restore --full) does -
    C(POST /api/v2/restore/kv), C(/api/v2/restore/sql), then C(/api/v2/restore/shards/<id>) for every shard - so the
    instance afterwards holds exactly the backup's organizations, users, buckets, tasks, checks, tokens and points.
  - B(Tokens.) A full restore replaces every authorization with those of the backup. The O(token) the restore runs
    with must therefore exist in the backup - when the backup's sidecar records the fingerprint of the operator token
    it was taken with and O(token) differs, the module refuses before changing anything (with a backup of C(influx
    backup), which records no fingerprint, that is only found out after the KV store is restored). Client tokens are those of
    the backup; pass the values you hold as O(check_tokens) to learn which ones still work.
  - B(A fresh instance) (not set up yet) is first set up with O(token) as its operator token and a throw-away user
    and bucket, which the restore then replaces.
  - B(An instance that holds points) is refused unless O(force=true); with O(force) everything on it is replaced,
    and influxd deletes every shard when the KV store is restored, so whatever was written since the backup is lost.
    An instance that is set up but holds no point at all is restored without O(force).
  - Every file is checked (present, size as in the manifest, sha256 as in our sidecar) before anything is changed.
  - B(A target that holds the backup already) - its buckets are the backup's, with the same IDs, and every value count
    the backup recorded is the target's now, as after a restore of this backup with nothing written since - is left
    alone (C(changed=false), RV(target_state=restored)), with or without O(force) - a re-run converges.
  - In check mode the backup and the target are inspected (and a refusal reported) exactly as in a real run.
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
options:
  token:
    description:
      - Operator token. On a set-up target it must be accepted; on a fresh one it becomes the operator token of the
        setup. It must be an operator token of the backup (see the description).
      - Env C(INFLUX_TOKEN).
  org:
    description: Organization a fresh target is set up with before the restore replaces it; default the backup's first. Env C(INFLUX_ORG).
    required: false
  timeout:
    description: Seconds to wait for a connection or for the next bytes of an answer.
  path:
    description: Directory holding one backup (exactly one C(*.manifest) and the files it names).
    type: path
    required: true
  force:
    description: Restore even when the target holds points (they are all replaced, see the description).
    type: bool
    default: false
  verify_checksums:
    description: Compare every file with the sha256 recorded in the sidecar before restoring (when there is one).
    type: bool
    default: true
  count_buckets:
    description:
      - Buckets whose field values are counted after the restore (all time), in the organization the backup counted
        them in.
      - Default the buckets the backup counted (sidecar), so RV(counts_after) can be compared with RV(counts_before).
    type: list
    elements: str
  check_tokens:
    description: Token values by name (e.g. the clients' tokens from the vault) to test against the restored instance.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Restore the copied backup onto the (fresh) local instance
  influxdb_restore:
    url: https://127.0.0.1:8086
    ca_path: /etc/isobar/pki/ca.crt
    token: "{{ influxdb_operator_token }}"
    path: /var/backups/isobar-influxdb/20260102T030405Z
    check_tokens: "{{ influxdb_client_tokens }}"
  register: restored

- name: Report (no secrets)
  ansible.builtin.debug:
    msg: "{{ restored.target_state }}: {{ restored.shards }} shards, {{ restored.counts_after }}, tokens {{ restored.tokens_accepted }}"
"""

RETURN = r"""
backup:
  description: The backup restored.
  returned: always
  type: dict
  contains:
    basename: {description: Its name (prefix of its files)., type: str}
    created: {description: When it was taken (sidecar; empty for a CLI backup)., type: str}
    influxdb_version: {description: Version of the server it was taken from (sidecar)., type: str}
    buckets: {description: "Its buckets (C(org/bucket))", type: list, elements: str}
    shards: {description: Number of shard snapshots., type: int}
    bytes: {description: Total size of its files., type: int}
target_state:
  description: >-
    C(fresh) (not set up), C(empty) (set up, no point in any bucket), C(data) (holds points) or C(restored) (holds
    the backup already: nothing done).
  returned: always
  type: str
target_buckets_with_data:
  description: Buckets (C(org/bucket)) of the target that held points before the restore.
  returned: always
  type: list
  elements: str
onboarded:
  description: Whether the fresh target was set up by this run (with O(token)) before the restore.
  returned: always
  type: bool
shards:
  description: Number of shards restored.
  returned: success, not in check mode
  type: int
bytes:
  description: Bytes uploaded.
  returned: success, not in check mode
  type: int
seconds:
  description: Time the restore took (setup included).
  returned: success, not in check mode
  type: float
counts_before:
  description: Field values per bucket recorded at backup time (sidecar), of the points older than its C(count_stop).
  returned: always
  type: dict
counts_after:
  description: Field values per bucket of O(count_buckets) after the restore, counted to the backup's C(count_stop) like RV(counts_before).
  returned: success, not in check mode
  type: dict
tokens_accepted:
  description: For every name of O(check_tokens), whether the restored instance accepts that token.
  returned: success, not in check mode
  type: dict
"""

import os
import secrets
import string
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_common import (
    COMPRESSION_NONE, BackupFormatError, count_values, fail_format, has_points, holds_the_backup, iter_shards, load_backup,
    server_version, token_fingerprint)
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import NOTHING_CHANGED, InfluxDBApi, InfluxDBError, influxdb_argument_spec

RESTORE_USER = "isobar-restore"


def throwaway_password():
    alphabet = string.ascii_letters + string.digits
    return "Rx9-" + "".join(secrets.choice(alphabet) for dummy in range(28))


def upload(api, path, name, compression, what):
    """Stream one backup file to a restore endpoint (gzip files as they are)."""
    full = os.path.join(path, name)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(os.path.getsize(full))}
    if compression != COMPRESSION_NONE:
        headers["Content-Encoding"] = "gzip"
    with open(full, "rb") as body:
        resp = api.stream("POST", what, body=body, headers=headers)
    try:
        return resp.read(decode_content=True)
    finally:
        resp.release_conn()


def count_buckets(api, org_name, names, stop=None):
    """Field values of each named bucket of an organization (0 for a bucket that does not exist): all time, or the
    points before ``stop``, the bound the backup counted to (its sidecar's count_stop)."""
    counts = {}
    if names:
        orgs = (api.request("GET", "/api/v2/orgs", {"org": org_name}) or {}).get("orgs", []) if org_name else []
        org_id = next((o["id"] for o in orgs if o.get("name") == org_name), None)
        for name in names:
            bucket = api.bucket(name, org_id, required=False) if org_id else None
            counts[name] = count_values(api, org_id, name, stop=stop) if bucket else 0
    return counts


def check_tokens(api, tokens):
    return {name: api.token_known(value) for name, value in (tokens or {}).items()}


def main():
    argument_spec = influxdb_argument_spec(org_required=False)
    argument_spec.update(
        path=dict(type="path", required=True),
        force=dict(type="bool", default=False),
        verify_checksums=dict(type="bool", default=True),
        count_buckets=dict(type="list", elements="str"),
        check_tokens=dict(type="dict", default={}, no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    token = params["token"] or ""
    if len(token) < 16:
        module.fail_json(msg=f"token (the operator token, at least 16 characters) is required. {NOTHING_CHANGED}")
    try:
        manifest, sidecar, base, files = load_backup(params["path"], params["verify_checksums"])
    except BackupFormatError as exc:
        fail_format(module, params["path"], exc)
    buckets = [f"{b.get('organizationName')}/{b.get('bucketName')}" for b in manifest.get("buckets") or []]
    shard_entries = list(iter_shards(manifest))
    result = dict(changed=False, onboarded=False, target_buckets_with_data=[],
                  counts_before=dict(sidecar.get("counts") or {}),
                  backup=dict(basename=base, created=sidecar.get("created", ""),
                              influxdb_version=sidecar.get("influxdb_version", ""), buckets=buckets,
                              shards=len(shard_entries), bytes=sum(size for dummy, size in files)))

    recorded = sidecar.get("operator_token_sha256")
    if recorded and recorded != token_fingerprint(token):
        module.fail_json(msg=f"backup {base} was taken with another operator token than the one given: a full restore "
                             f"replaces every token with the backup's, so this one would not exist afterwards and the "
                             f"restore could not finish. Give the operator token of the backup's time. {NOTHING_CHANGED}",
                         **result)

    api = InfluxDBApi(module)
    version = server_version(api)
    if result["backup"]["influxdb_version"] and version and version != result["backup"]["influxdb_version"]:
        module.warn(f"backup {base} comes from InfluxDB {result['backup']['influxdb_version']}, the target runs {version}")
    try:
        fresh = bool((api.request("GET", "/api/v2/setup", auth=False) or {}).get("allowed"))
    except InfluxDBError as exc:
        api.fail("cannot read the setup state", exc, **result)
    target_buckets = []
    count_names = params["count_buckets"] if params["count_buckets"] is not None else list(result["counts_before"])
    count_org = sidecar.get("count_org") or params["org"]
    count_stop = sidecar.get("count_stop") or None  # older backups counted all time
    if fresh:
        result["target_state"] = "fresh"
    else:
        try:
            if not api.token_known(token):
                module.fail_json(msg=f"InfluxDB at {api.url} is already set up and does not accept the token, so it cannot "
                                     f"be restored with it. {NOTHING_CHANGED}", target_state="unknown", **result)
            target = api.list_all("/api/v2/buckets", "buckets", {})
            # Restored already (e.g. a re-run of playbooks/restore.yml): a restore would change nothing, so none is
            # made - nor predicted in check mode - with or without force.
            counted = {}
            if holds_the_backup(manifest, result["counts_before"], {b["id"]: b["name"] for b in target},
                                lambda: counted.update(count_buckets(api, count_org, count_names, count_stop)) or counted):
                result.update(target_state="restored", shards=0, bytes=0, seconds=0.0, counts_after=counted)
                if not module.check_mode:
                    result["tokens_accepted"] = check_tokens(api, params["check_tokens"])
                api.close()
                module.exit_json(**result)
            orgs = {o["id"]: o["name"] for o in api.list_all("/api/v2/orgs", "orgs", {})}
            for bucket in target:
                label = f"{orgs.get(bucket.get('orgID'), bucket.get('orgID'))}/{bucket['name']}"
                target_buckets.append(label)
                if has_points(api, bucket["orgID"], bucket["name"]):
                    result["target_buckets_with_data"].append(label)
        except InfluxDBError as exc:
            api.fail("cannot inspect the target", exc, target_state="unknown", **result)
        result["target_state"] = "data" if result["target_buckets_with_data"] else "empty"
        if result["target_buckets_with_data"] and not params["force"]:
            module.fail_json(msg=f"refusing to restore backup {base}: InfluxDB at {api.url} already holds data (points in "
                                 f"{', '.join(sorted(result['target_buckets_with_data']))}). A full restore replaces "
                                 f"everything on it and deletes every point written since the backup; set force "
                                 f"(restore_force=true) to do that. {NOTHING_CHANGED}", **result)

    result["changed"] = True
    if module._diff:
        result["diff"] = dict(before={"state": result["target_state"], "buckets": sorted(target_buckets)},
                              after={"state": "restored", "backup": base, "buckets": sorted(buckets)})
    if module.check_mode:
        module.exit_json(**result)

    started = time.monotonic()
    step = "set up the fresh instance"
    try:
        if fresh:
            org = params["org"] or next((b.get("organizationName") for b in manifest.get("buckets") or []
                                         if b.get("organizationName")), None) or "isobar-restore"
            api.request("POST", "/api/v2/setup", auth=False, body={
                "username": RESTORE_USER, "password": throwaway_password(), "org": org, "bucket": RESTORE_USER,
                "token": token, "retentionPeriodSeconds": 0})
            result["onboarded"] = True
        step = "restore the KV store"
        upload(api, params["path"], manifest["kv"]["fileName"], manifest["kv"].get("compression"), "/api/v2/restore/kv")
        uploaded = manifest["kv"].get("size", 0)
        step = "continue after the KV restore"
        # The server answers with the restored operator token only when it is stored in plain text (no token
        # hashing, InfluxDB < 2.9 by default); we keep working with the token we were given, which must exist.
        if not api.token_known(token):
            module.fail_json(msg=f"the KV store of backup {base} was restored, but it does not hold the given operator "
                                 f"token, so the data cannot be restored with it. Create an operator token with `influxd "
                                 f"recovery auth create-operator` (influxd stopped) and re-run with it and force. The "
                                 f"instance is partially restored.", **result)
        if manifest.get("sql"):
            step = "restore the SQL store"
            upload(api, params["path"], manifest["sql"]["fileName"], manifest["sql"].get("compression"),
                   "/api/v2/restore/sql")
            uploaded += manifest["sql"].get("size", 0)
        for shard in shard_entries:
            step = f"restore shard {shard['id']}"
            upload(api, params["path"], shard["fileName"], shard.get("compression"),
                   f"/api/v2/restore/shards/{shard['id']}")
            uploaded += shard.get("size", 0)
        result.update(shards=len(shard_entries), bytes=uploaded, seconds=round(time.monotonic() - started, 3))

        step = "count the restored values"
        result["counts_after"] = count_buckets(api, count_org, count_names, count_stop)
        step = "check the tokens"
        result["tokens_accepted"] = check_tokens(api, params["check_tokens"])
    except InfluxDBError as exc:
        changed = "Nothing was changed" if step == "set up the fresh instance" else (
            "The instance may be partially restored: fix the cause and re-run (with force if it then holds points)")
        module.fail_json(msg=f"restore of backup {base} failed to {step}: {exc.message}. {changed}.",
                         status=exc.status, **result)
    finally:
        api.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
