#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Manage an InfluxDB 2 bucket by name: retention, shard group duration, description."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influxdb_bucket
short_description: Manage an InfluxDB 2 bucket (retention, description) by name
description:
  - Creates, updates or deletes a bucket of an organization, identified by its name.
  - Only the options given are managed; the others are left as they are on the server.
  - System buckets (names starting with C(_)) are refused.
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
options:
  token:
    description: API token allowed to read and write buckets of O(org). Env C(INFLUX_TOKEN).
  name:
    description: Bucket name.
    type: str
    required: true
  state:
    description: Whether the bucket exists. C(absent) deletes it with all its data.
    type: str
    choices: [present, absent]
    default: present
  retention:
    description:
      - How long data is kept, as a duration (C(30d), C(72h), C(1w)); C(0) keeps data forever. At least C(1h).
      - Omitted means C(0) for a new bucket and unchanged for an existing one.
    type: str
  shard_group_duration:
    description: Shard group duration (duration); omitted lets InfluxDB choose it from the retention.
    type: str
  description:
    description: Description of the bucket; omitted leaves it unchanged.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Weather bucket keeps 30 days
  influxdb_bucket:
    url: https://127.0.0.1:8086
    token: "{{ influxdb_operator_token }}"
    ca_path: /etc/isobar/pki/ca.crt
    org: myorg
    name: weather
    retention: 30d
    description: Simulated weather of the inject job
"""

RETURN = r"""
bucket:
  description: The bucket after the run (before it, in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    id: {description: Bucket ID (empty in check mode before creation)., type: str}
    name: {description: Name., type: str}
    retention: {description: "Retention as a duration, C(0s) = forever.", type: str}
    retention_seconds: {description: Retention in seconds., type: int}
    shard_group_duration: {description: Shard group duration., type: str}
    description: {description: Description., type: str}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import (
    NOTHING_CHANGED, InfluxDBApi, InfluxDBError, format_duration, influxdb_argument_spec, parse_duration)


def normalize(bucket):
    if not bucket:
        return {}
    rules = [r for r in bucket.get("retentionRules") or [] if r.get("type", "expire") == "expire"]
    every = int(rules[0].get("everySeconds") or 0) if rules else 0
    shard = int(rules[0].get("shardGroupDurationSeconds") or 0) if rules else 0
    return {"name": bucket["name"], "retention": format_duration(every * 10**9), "retention_seconds": every,
            "shard_group_duration": format_duration(shard * 10**9), "description": bucket.get("description") or ""}


def main():
    argument_spec = influxdb_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        retention=dict(type="str"),
        shard_group_duration=dict(type="str"),
        description=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["name"].startswith("_"):
        module.fail_json(msg=f"bucket {params['name']!r} is a system bucket, managed by InfluxDB itself. {NOTHING_CHANGED}")
    try:
        retention = parse_duration(params["retention"], "retention") // 10**9 if params["retention"] is not None else None
        shard = (parse_duration(params["shard_group_duration"], "shard_group_duration") // 10**9
                 if params["shard_group_duration"] is not None else None)
    except ValueError as exc:
        module.fail_json(msg=f"{exc}. {NOTHING_CHANGED}")
    if retention is not None and 0 < retention < 3600:
        module.fail_json(msg=f"retention {params['retention']!r} is shorter than InfluxDB's minimum of 1h. {NOTHING_CHANGED}")

    api = InfluxDBApi(module)
    org = api.org()
    current = api.bucket(params["name"], org["id"], required=False)
    before = normalize(current)

    if params["state"] == "absent":
        api.exit_absent(current, before, "/api/v2/buckets", f"bucket {params['name']!r}", "bucket")

    after = dict(before) if current else {"name": params["name"], "retention_seconds": 0, "shard_group_duration": "0s",
                                          "description": ""}
    if retention is not None:
        after["retention_seconds"] = retention
    if shard is not None:
        after["shard_group_duration"] = format_duration(shard * 10**9)
    if params["description"] is not None:
        after["description"] = params["description"]
    after["retention"] = format_duration(after["retention_seconds"] * 10**9)
    if not current and shard is None:
        after["shard_group_duration"] = "chosen by InfluxDB"

    changed = not current or any(after[k] != before.get(k) for k in ("retention_seconds", "description")) or (
        shard is not None and after["shard_group_duration"] != before.get("shard_group_duration"))
    result = dict(changed=changed, bucket=dict(after, id=current["id"] if current else ""))
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    if not changed or module.check_mode:
        module.exit_json(**result)

    rule = {"type": "expire", "everySeconds": after["retention_seconds"]}
    if shard is not None:
        rule["shardGroupDurationSeconds"] = shard
    rules = [rule] if after["retention_seconds"] or shard is not None else []
    try:
        if current:
            body = {"retentionRules": rules or [{"type": "expire", "everySeconds": 0}]}
            if params["description"] is not None:
                body["description"] = params["description"]
            saved = api.request("PATCH", f"/api/v2/buckets/{current['id']}", body=body)
        else:
            saved = api.request("POST", "/api/v2/buckets", body={
                "orgID": org["id"], "name": params["name"], "description": params["description"] or "",
                "retentionRules": rules})
    except InfluxDBError as exc:
        api.fail(f"cannot {'update' if current else 'create'} bucket {params['name']!r}", exc)
    result["bucket"] = dict(normalize(saved), id=saved["id"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
