#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Manage an InfluxDB 2 monitoring check (threshold or deadman) by name."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influxdb_check
short_description: Manage an InfluxDB 2 threshold or deadman check by name
description:
  - Creates, updates or deletes a check of an organization, identified by its name. A check runs as a task every
    O(every) and writes a status (C(crit), C(warn), C(info), C(ok)) per series into the C(_monitoring) bucket.
  - The query is either built from O(bucket), O(measurement), O(field), O(filters) and O(aggregate), or given whole
    in O(query). Before anything is created or changed the query is analyzed and run once, so bad Flux or an unknown
    bucket fails the task with the server's message.
  - InfluxDB replaces every C(start) and C(every) argument of the query by the check's O(every), so a check only
    sees points whose timestamps fall in the last O(every) when it runs.
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
options:
  token:
    description: API token allowed to manage checks (and read the queried bucket) in O(org). Env C(INFLUX_TOKEN).
  name:
    description: Check name (unique in the org).
    type: str
    required: true
  state:
    description: Whether the check exists.
    type: str
    choices: [present, absent]
    default: present
  type:
    description: Kind of check.
    type: str
    choices: [threshold, deadman]
    default: threshold
  status:
    description: Whether the check runs.
    type: str
    choices: [active, inactive]
    default: active
  description:
    description: Description of the check.
    type: str
    default: ""
  every:
    description: How often the check runs, and the time range it looks at (duration).
    type: str
    default: 1m
  offset:
    description: Delay of each run after its scheduled time (duration), for late data.
    type: str
    default: 0s
  query:
    description:
      - Whole Flux query of the check (exactly one C(r._field == "...") filter for a threshold check).
      - Mutually exclusive with O(bucket).
    type: str
  bucket:
    description: Bucket read by the built query.
    type: str
  measurement:
    description: Measurement filtered by the built query.
    type: str
  field:
    description: Field checked by the built query.
    type: str
  filters:
    description: Tag values the built query keeps (tag name to value).
    type: dict
    default: {}
  aggregate:
    description: Aggregate over each O(every) window of the built threshold query.
    type: str
    choices: [mean, max, min, last, first, median, sum, count]
    default: mean
  thresholds:
    description: Levels of a threshold check (one per level).
    type: list
    elements: dict
    suboptions:
      level:
        description: Status level written when the condition holds.
        type: str
        choices: [crit, warn, info, ok]
        required: true
      type:
        description: C(greater) / C(lesser) than O(thresholds[].value), or inside/outside C(range) min..max.
        type: str
        choices: [greater, lesser, range]
        required: true
      value:
        description: Limit of C(greater) and C(lesser).
        type: float
      min:
        description: Lower bound of C(range).
        type: float
      max:
        description: Upper bound of C(range).
        type: float
      within:
        description: C(range) matches values inside (true) or outside (false) min..max.
        type: bool
        default: true
      all_values:
        description: Match only when all values of the window match.
        type: bool
        default: false
  time_since:
    description: Deadman - a series with no point for this long (duration) is reported at O(level).
    type: str
  stale_after:
    description: Deadman - stop reporting a series silent for this long (duration).
    type: str
  report_zero:
    description: Deadman - also report series that report zero.
    type: bool
    default: false
  level:
    description: Deadman - status level written for a dead series.
    type: str
    choices: [crit, warn, info, ok]
    default: crit
  status_message_template:
    description: Flux string template of the status message (C(${ r._check_name }), C(${ r._level }), fields ...).
    type: str
    default: "Check: ${ r._check_name } is: ${ r._level }"
  tags:
    description: Tags added to every status of this check (name to value).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Temperature too high (crit) or too low (warn)
  influxdb_check:
    url: https://127.0.0.1:8086
    token: "{{ influxdb_operator_token }}"
    ca_path: /etc/isobar/pki/ca.crt
    org: myorg
    name: weather-temperature
    bucket: weather
    measurement: weather
    field: temperature
    aggregate: max
    every: 1m
    thresholds:
      - {level: crit, type: greater, value: 35}
      - {level: warn, type: lesser, value: -10}
    status_message_template: "${ r._check_name }: ${ r._level } at ${ r.station } (${ string(v: r.temperature) } C)"

- name: Stations that stop reporting
  influxdb_check:
    url: https://127.0.0.1:8086
    token: "{{ influxdb_operator_token }}"
    org: myorg
    name: weather-deadman
    type: deadman
    bucket: weather
    measurement: weather
    field: temperature
    time_since: 5m
    stale_after: 1h
"""

RETURN = r"""
check:
  description: The check after the run (as it would be, in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    id: {description: Check ID (empty before creation in check mode)., type: str}
    query: {description: The Flux query of the check., type: str}
    task_id: {description: ID of the task that runs the check., type: str}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import (
    NOTHING_CHANGED, InfluxDBApi, InfluxDBError, format_duration, influxdb_argument_spec, parse_duration)


def flux_string(value):
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_query(params, every):
    lines = [f"from(bucket: {flux_string(params['bucket'])})",
             "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)",
             f"  |> filter(fn: (r) => r._measurement == {flux_string(params['measurement'])})",
             f"  |> filter(fn: (r) => r._field == {flux_string(params['field'])})"]
    for tag in sorted(params["filters"]):
        lines.append(f"  |> filter(fn: (r) => r[{flux_string(tag)}] == {flux_string(params['filters'][tag])})")
    if params["type"] == "threshold":
        lines.append(f"  |> aggregateWindow(every: {every}, fn: {params['aggregate']}, createEmpty: false)")
        lines.append(f"  |> yield(name: {flux_string(params['aggregate'])})")
    return "\n".join(lines)


def norm_threshold(item):
    entry = {"level": item["level"].lower(), "type": item["type"], "all_values": bool(item.get("allValues", item.get("all_values")))}
    if item["type"] == "range":
        entry.update(min=float(item["min"]), max=float(item["max"]), within=bool(item["within"]))
    else:
        entry["value"] = float(item["value"])
    return entry


def normalize(check):
    if not check:
        return {}
    result = {
        "name": check["name"], "type": check["type"], "description": check.get("description") or "",
        "status": check.get("status", "active"), "every": format_duration(parse_duration(check.get("every") or "0s")),
        "offset": format_duration(parse_duration(check.get("offset") or "0s")),
        "query": (check.get("query") or {}).get("text", ""),
        "status_message_template": check.get("statusMessageTemplate") or "",
        "tags": {t["key"]: t["value"] for t in check.get("tags") or []},
    }
    if check["type"] == "threshold":
        result["thresholds"] = sorted((norm_threshold(t) for t in check.get("thresholds") or []), key=lambda t: t["level"])
    else:
        result.update(time_since=format_duration(parse_duration(check.get("timeSince") or "0s")),
                      stale_after=format_duration(parse_duration(check.get("staleTime") or "0s")),
                      report_zero=bool(check.get("reportZero")), level=(check.get("level") or "crit").lower())
    return result


def api_body(desired, org_id):
    body = {
        "name": desired["name"], "type": desired["type"], "orgID": org_id, "description": desired["description"],
        "status": desired["status"], "every": desired["every"], "offset": desired["offset"],
        "query": {"text": desired["query"], "editMode": "advanced", "name": "",
                  "builderConfig": {"buckets": [], "tags": [], "functions": []}},
        "statusMessageTemplate": desired["status_message_template"],
        "tags": [{"key": k, "value": v} for k, v in sorted(desired["tags"].items())],
    }
    if desired["type"] == "threshold":
        body["thresholds"] = []
        for t in desired["thresholds"]:
            item = {"type": t["type"], "level": t["level"].upper(), "allValues": t["all_values"]}
            item.update({k: t[k] for k in ("value", "min", "max", "within") if k in t})
            body["thresholds"].append(item)
    else:
        body.update(timeSince=desired["time_since"], staleTime=desired["stale_after"], reportZero=desired["report_zero"],
                    level=desired["level"].upper())
    return body


def desired_state(module):
    params = module.params

    def fail(msg):
        module.fail_json(msg=f"{msg}. {NOTHING_CHANGED}")

    try:
        every = parse_duration(params["every"], "every")
        offset = parse_duration(params["offset"], "offset")
    except ValueError as exc:
        fail(str(exc))
    if every <= 0:
        fail("every must be longer than 0s")
    if params["query"] is None:
        missing = [k for k in ("bucket", "measurement", "field") if not params[k]]
        if missing:
            fail(f"give either query, or bucket + measurement + field (missing: {', '.join(missing)})")
    desired = {
        "name": params["name"], "type": params["type"], "description": params["description"], "status": params["status"],
        "every": format_duration(every), "offset": format_duration(offset),
        "query": params["query"] if params["query"] is not None else build_query(params, format_duration(every)),
        "status_message_template": params["status_message_template"],
        "tags": {str(k): str(v) for k, v in params["tags"].items()},
    }
    if params["type"] == "threshold":
        if not params["thresholds"]:
            fail("a threshold check needs at least one entry in thresholds")
        levels = [t["level"] for t in params["thresholds"]]
        if len(set(levels)) != len(levels):
            fail(f"thresholds has more than one entry for a level ({', '.join(sorted(levels))}); one per level")
        items = []
        for t in params["thresholds"]:
            if t["type"] == "range":
                if t["min"] is None or t["max"] is None or t["min"] > t["max"]:
                    fail(f"threshold {t['level']}: a range needs min <= max")
                items.append({"level": t["level"], "type": "range", "min": t["min"], "max": t["max"],
                              "within": t["within"], "all_values": t["all_values"]})
            else:
                if t["value"] is None:
                    fail(f"threshold {t['level']}: {t['type']} needs a value")
                items.append({"level": t["level"], "type": t["type"], "value": t["value"], "all_values": t["all_values"]})
        desired["thresholds"] = sorted((norm_threshold(i) for i in items), key=lambda t: t["level"])
    else:
        if not params["time_since"] or not params["stale_after"]:
            fail("a deadman check needs time_since and stale_after")
        try:
            desired.update(time_since=format_duration(parse_duration(params["time_since"], "time_since")),
                           stale_after=format_duration(parse_duration(params["stale_after"], "stale_after")))
        except ValueError as exc:
            fail(str(exc))
        desired.update(report_zero=params["report_zero"], level=params["level"])
    return desired


def main():
    argument_spec = influxdb_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        type=dict(type="str", default="threshold", choices=["threshold", "deadman"]),
        status=dict(type="str", default="active", choices=["active", "inactive"]),
        description=dict(type="str", default=""),
        every=dict(type="str", default="1m"),
        offset=dict(type="str", default="0s"),
        query=dict(type="str"),
        bucket=dict(type="str"),
        measurement=dict(type="str"),
        field=dict(type="str"),
        filters=dict(type="dict", default={}),
        aggregate=dict(type="str", default="mean", choices=["mean", "max", "min", "last", "first", "median", "sum", "count"]),
        thresholds=dict(type="list", elements="dict", options=dict(
            level=dict(type="str", required=True, choices=["crit", "warn", "info", "ok"]),
            type=dict(type="str", required=True, choices=["greater", "lesser", "range"]),
            value=dict(type="float"),
            min=dict(type="float"),
            max=dict(type="float"),
            within=dict(type="bool", default=True),
            all_values=dict(type="bool", default=False),
        )),
        time_since=dict(type="str"),
        stale_after=dict(type="str"),
        report_zero=dict(type="bool", default=False),
        level=dict(type="str", default="crit", choices=["crit", "warn", "info", "ok"]),
        status_message_template=dict(type="str", default="Check: ${ r._check_name } is: ${ r._level }"),
        tags=dict(type="dict", default={}),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("query", "bucket")])
    params = module.params
    desired = desired_state(module) if params["state"] == "present" else None

    api = InfluxDBApi(module)
    org = api.org()
    try:
        found = [c for c in api.list_all("/api/v2/checks", "checks", {"orgID": org["id"]}) if c["name"] == params["name"]]
    except InfluxDBError as exc:
        api.fail("cannot list the checks", exc)
    if len(found) > 1:
        module.fail_json(msg=f"{len(found)} checks are named {params['name']!r}; rename or delete the extra ones. "
                             f"{NOTHING_CHANGED}")
    current = found[0] if found else None
    before = normalize(current)

    if params["state"] == "absent":
        api.exit_absent(current, before, "/api/v2/checks", f"check {params['name']!r}", "check")

    changed = before != desired
    result = dict(changed=changed, check=dict(desired, id=current["id"] if current else "",
                                              task_id=current.get("taskID", "") if current else ""))
    if module._diff:
        result["diff"] = dict(before=before, after=desired)
    if not changed:
        module.exit_json(**result)
    if params["bucket"]:
        api.bucket(params["bucket"], org["id"])  # "unknown bucket" before the query error says the same less clearly
    if desired["query"] != before.get("query"):
        api.validate_flux(desired["query"], org["id"])
    if module.check_mode:
        module.exit_json(**result)
    try:
        if current:
            saved = api.request("PUT", f"/api/v2/checks/{current['id']}", body=api_body(desired, org["id"]))
        else:
            saved = api.request("POST", "/api/v2/checks", body=api_body(desired, org["id"]))
    except InfluxDBError as exc:
        api.fail(f"InfluxDB refused the check {params['name']!r}", exc)
    result["check"] = dict(normalize(saved), id=saved["id"], task_id=saved.get("taskID", ""))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
