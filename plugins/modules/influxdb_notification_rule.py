#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Manage an InfluxDB 2 notification rule by name."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influxdb_notification_rule
short_description: Manage an InfluxDB 2 notification rule by name
description:
  - Creates, updates or deletes a notification rule of an organization, identified by its name. Every O(every) the
    rule reads the statuses the checks wrote to C(_monitoring) since its last run and sends those matching
    O(status_rules) and O(tag_rules) to the notification endpoint O(endpoint).
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
options:
  token:
    description: API token allowed to manage notification rules in O(org). Env C(INFLUX_TOKEN).
  name:
    description: Rule name (unique in the org).
    type: str
    required: true
  state:
    description: Whether the rule exists.
    type: str
    choices: [present, absent]
    default: present
  endpoint:
    description: Name of the notification endpoint the rule sends to (required with O(state=present)).
    type: str
  every:
    description: How often the rule runs (duration).
    type: str
    default: 1m
  offset:
    description: Delay of each run after its scheduled time (duration).
    type: str
    default: 0s
  status_rules:
    description: Statuses that are sent; a status matching any entry is sent.
    type: list
    elements: dict
    default: [{current_level: crit}]
    suboptions:
      current_level:
        description: Level of the status.
        type: str
        choices: [crit, warn, info, ok, any]
        required: true
      previous_level:
        description: Only when the level changed from this one (omitted = any previous level).
        type: str
        choices: [crit, warn, info, ok, any]
  tag_rules:
    description: Tags a status must carry to be sent.
    type: list
    elements: dict
    default: []
    suboptions:
      key:
        description: Tag name.
        type: str
        required: true
      value:
        description: Tag value (or regular expression).
        type: str
        required: true
      operator:
        description: Comparison.
        type: str
        choices: [equal, notequal, equalregex, notequalregex]
        default: equal
  status:
    description: Whether the rule runs.
    type: str
    choices: [active, inactive]
    default: active
  description:
    description: Description.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Send every crit status to the alert receiver
  influxdb_notification_rule:
    url: https://127.0.0.1:8086
    token: "{{ influxdb_operator_token }}"
    ca_path: /etc/isobar/pki/ca.crt
    org: myorg
    name: crit-to-receiver
    endpoint: alert-receiver
    every: 1m
    status_rules:
      - {current_level: crit}
"""

RETURN = r"""
rule:
  description: The rule after the run (as it would be, in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    id: {description: Rule ID (empty before creation in check mode)., type: str}
    endpoint_id: {description: ID of the endpoint., type: str}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import (
    NOTHING_CHANGED, InfluxDBApi, InfluxDBError, format_duration, influxdb_argument_spec, parse_duration)


def level(value):
    return value.lower() if value else None


def normalize(rule, endpoint_names):
    if not rule:
        return {}
    return {
        "name": rule["name"], "type": rule["type"], "endpoint": endpoint_names.get(rule.get("endpointID"), rule.get("endpointID")),
        "every": format_duration(parse_duration(rule.get("every") or "0s")),
        "offset": format_duration(parse_duration(rule.get("offset") or "0s")),
        "status_rules": sorted(({"current_level": level(s.get("currentLevel")), "previous_level": level(s.get("previousLevel"))}
                                for s in rule.get("statusRules") or []), key=str),
        "tag_rules": sorted(({"key": t["key"], "value": t["value"], "operator": t.get("operator", "equal")}
                             for t in rule.get("tagRules") or []), key=str),
        "status": rule.get("status", "active"), "description": rule.get("description") or "",
    }


def main():
    argument_spec = influxdb_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        endpoint=dict(type="str"),
        every=dict(type="str", default="1m"),
        offset=dict(type="str", default="0s"),
        status_rules=dict(type="list", elements="dict", default=[{"current_level": "crit"}], options=dict(
            current_level=dict(type="str", required=True, choices=["crit", "warn", "info", "ok", "any"]),
            previous_level=dict(type="str", choices=["crit", "warn", "info", "ok", "any"]),
        )),
        tag_rules=dict(type="list", elements="dict", default=[], options=dict(
            key=dict(type="str", required=True, no_log=False),
            value=dict(type="str", required=True),
            operator=dict(type="str", default="equal", choices=["equal", "notequal", "equalregex", "notequalregex"]),
        )),
        status=dict(type="str", default="active", choices=["active", "inactive"]),
        description=dict(type="str", default=""),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ["endpoint"])])
    params = module.params
    if params["state"] == "present":
        try:
            every = parse_duration(params["every"], "every")
            offset = parse_duration(params["offset"], "offset")
        except ValueError as exc:
            module.fail_json(msg=f"{exc}. {NOTHING_CHANGED}")
        if every <= 0:
            module.fail_json(msg=f"every must be longer than 0s. {NOTHING_CHANGED}")
        if not params["status_rules"]:
            module.fail_json(msg=f"status_rules needs at least one entry. {NOTHING_CHANGED}")

    api = InfluxDBApi(module)
    org = api.org()
    try:
        endpoints = api.list_all("/api/v2/notificationEndpoints", "notificationEndpoints", {"orgID": org["id"]})
        found = [r for r in api.list_all("/api/v2/notificationRules", "notificationRules", {"orgID": org["id"]})
                 if r["name"] == params["name"]]
    except InfluxDBError as exc:
        api.fail("cannot list the notification rules and endpoints", exc)
    names = {e["id"]: e["name"] for e in endpoints}
    if len(found) > 1:
        module.fail_json(msg=f"{len(found)} notification rules are named {params['name']!r}. {NOTHING_CHANGED}")
    current = found[0] if found else None
    before = normalize(current, names)

    if params["state"] == "absent":
        api.exit_absent(current, before, "/api/v2/notificationRules", f"notification rule {params['name']!r}", "rule")

    endpoint = [e for e in endpoints if e["name"] == params["endpoint"]]
    if len(endpoint) != 1:
        module.fail_json(msg=f"unknown notification endpoint {params['endpoint']!r} in organization {params['org']!r} "
                             f"(known: {', '.join(sorted(names.values())) or 'none'}). {NOTHING_CHANGED}")
    endpoint = endpoint[0]
    desired = {
        "name": params["name"], "type": endpoint["type"], "endpoint": endpoint["name"],
        "every": format_duration(every), "offset": format_duration(offset),
        "status_rules": sorted(({"current_level": s["current_level"], "previous_level": s["previous_level"]}
                                for s in params["status_rules"]), key=str),
        "tag_rules": sorted(({"key": t["key"], "value": t["value"], "operator": t["operator"]}
                             for t in params["tag_rules"]), key=str),
        "status": params["status"], "description": params["description"],
    }
    changed = before != desired
    result = dict(changed=changed, rule=dict(desired, id=current["id"] if current else "", endpoint_id=endpoint["id"]))
    if module._diff:
        result["diff"] = dict(before=before, after=desired)
    if not changed or module.check_mode:
        module.exit_json(**result)

    body = {
        "name": params["name"], "type": endpoint["type"], "orgID": org["id"], "endpointID": endpoint["id"],
        "every": desired["every"], "offset": desired["offset"], "status": params["status"],
        "description": params["description"],
        "statusRules": [{"currentLevel": s["current_level"].upper(),
                         "previousLevel": s["previous_level"].upper() if s["previous_level"] else None}
                        for s in desired["status_rules"]],
        "tagRules": desired["tag_rules"],
    }
    try:
        if current:
            saved = api.request("PUT", f"/api/v2/notificationRules/{current['id']}", body=dict(body, id=current["id"]))
        else:
            saved = api.request("POST", "/api/v2/notificationRules", body=body)
    except InfluxDBError as exc:
        api.fail(f"InfluxDB refused the notification rule {params['name']!r}", exc)
    result["rule"] = dict(normalize(saved, names), id=saved["id"], endpoint_id=endpoint["id"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
