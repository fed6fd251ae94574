#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Manage an InfluxDB 2 HTTP notification endpoint by name."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influxdb_notification_endpoint
short_description: Manage an InfluxDB 2 HTTP notification endpoint by name
description:
  - Creates, updates or deletes an HTTP notification endpoint of an organization, identified by its name.
    Notification rules (M(isobar.pipeline.influxdb_notification_rule)) send statuses of checks to it.
  - InfluxDB keeps the endpoint's credentials (O(bearer_token), O(username), O(password)) as secrets it never
    returns, so they cannot be compared; they are sent on creation, and on every run with
    O(update_secrets=always) (which then always reports a change).
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
options:
  token:
    description: API token allowed to manage notification endpoints in O(org). Env C(INFLUX_TOKEN).
  name:
    description: Endpoint name (unique in the org).
    type: str
    required: true
  state:
    description: Whether the endpoint exists. Deleting an endpoint deletes the rules using it (InfluxDB does so).
    type: str
    choices: [present, absent]
    default: present
  type:
    description: Endpoint type.
    type: str
    choices: [http]
    default: http
  endpoint_url:
    description: URL InfluxDB sends to (required with O(state=present)). InfluxDB verifies HTTPS against its system trust store.
    type: str
  method:
    description: HTTP method.
    type: str
    choices: [POST, PUT, GET]
    default: POST
  auth_method:
    description: How InfluxDB authenticates to the receiver.
    type: str
    choices: [none, basic, bearer]
    default: none
  bearer_token:
    description: Token sent as C(Authorization Bearer) with O(auth_method=bearer).
    type: str
  username:
    description: User name for O(auth_method=basic).
    type: str
  password:
    description: Password for O(auth_method=basic).
    type: str
  update_secrets:
    description: Send the credentials on creation only, or on every run.
    type: str
    choices: [on_create, always]
    default: on_create
  headers:
    description: Extra HTTP headers (name to value). Their values are treated as secrets (never shown).
    type: dict
    default: {}
  content_template:
    description: Body template; empty sends InfluxDB's default JSON.
    type: str
    default: ""
  status:
    description: Whether the endpoint is used.
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
- name: Alert receiver of the lab
  influxdb_notification_endpoint:
    url: https://127.0.0.1:8086
    token: "{{ influxdb_operator_token }}"
    ca_path: /etc/isobar/pki/ca.crt
    org: myorg
    name: alert-receiver
    endpoint_url: https://172.30.10.30:9095/alerts
"""

RETURN = r"""
endpoint:
  description: The endpoint after the run (as it would be, in check mode; credentials masked); empty when absent.
  returned: always
  type: dict
  contains:
    id: {description: Endpoint ID (empty before creation in check mode)., type: str}
    endpoint_url: {description: URL., type: str}
"""

from urllib.parse import urlparse

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import NOTHING_CHANGED, InfluxDBApi, InfluxDBError, influxdb_argument_spec

COMPARED = ("endpoint_url", "method", "auth_method", "headers", "content_template", "status", "description", "type")


def normalize(endpoint):
    if not endpoint:
        return {}
    return {"name": endpoint["name"], "type": endpoint["type"], "endpoint_url": endpoint.get("url", ""),
            "method": endpoint.get("method", "POST"), "auth_method": endpoint.get("authMethod", "none"),
            "headers": dict(endpoint.get("headers") or {}), "content_template": endpoint.get("contentTemplate") or "",
            "status": endpoint.get("status", "active"), "description": endpoint.get("description") or ""}


def main():
    argument_spec = influxdb_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        type=dict(type="str", default="http", choices=["http"]),
        endpoint_url=dict(type="str"),
        method=dict(type="str", default="POST", choices=["POST", "PUT", "GET"]),
        auth_method=dict(type="str", default="none", choices=["none", "basic", "bearer"]),
        bearer_token=dict(type="str", no_log=True),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        update_secrets=dict(type="str", default="on_create", choices=["on_create", "always"], no_log=False),
        headers=dict(type="dict", default={}, no_log=True),  # e.g. an API key
        content_template=dict(type="str", default=""),
        status=dict(type="str", default="active", choices=["active", "inactive"]),
        description=dict(type="str", default=""),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, required_if=[
        ("state", "present", ["endpoint_url"]), ("auth_method", "bearer", ["bearer_token"]),
        ("auth_method", "basic", ["username", "password"])])
    params = module.params
    if params["state"] == "present":
        target = urlparse(params["endpoint_url"])
        if target.scheme not in ("http", "https") or not target.netloc:
            module.fail_json(msg=f"endpoint_url {params['endpoint_url']!r} is not an http(s) URL. {NOTHING_CHANGED}")

    api = InfluxDBApi(module)
    org = api.org()
    try:
        found = [e for e in api.list_all("/api/v2/notificationEndpoints", "notificationEndpoints", {"orgID": org["id"]})
                 if e["name"] == params["name"]]
    except InfluxDBError as exc:
        api.fail("cannot list the notification endpoints", exc)
    if len(found) > 1:
        module.fail_json(msg=f"{len(found)} notification endpoints are named {params['name']!r}. {NOTHING_CHANGED}")
    current = found[0] if found else None
    before = normalize(current)

    if params["state"] == "absent":
        api.exit_absent(current, before, "/api/v2/notificationEndpoints", f"notification endpoint {params['name']!r}", "endpoint")

    desired = {"name": params["name"], "type": params["type"], "endpoint_url": params["endpoint_url"],
               "method": params["method"], "auth_method": params["auth_method"],
               "headers": {str(k): str(v) for k, v in params["headers"].items()},
               "content_template": params["content_template"], "status": params["status"],
               "description": params["description"]}
    send_secrets = params["auth_method"] != "none" and (not current or params["update_secrets"] == "always"
                                                        or before.get("auth_method") != params["auth_method"])
    changed = any(before.get(k) != desired[k] for k in COMPARED) or send_secrets
    result = dict(changed=changed, endpoint=dict(desired, id=current["id"] if current else ""))
    if module._diff:
        after = dict(desired, credentials="<masked, sent>") if send_secrets else desired
        result["diff"] = dict(before=before, after=after)
    if not changed or module.check_mode:
        module.exit_json(**result)

    body = {"name": params["name"], "type": "http", "orgID": org["id"], "url": params["endpoint_url"],
            "method": params["method"], "authMethod": params["auth_method"], "headers": desired["headers"],
            "contentTemplate": params["content_template"], "status": params["status"],
            "description": params["description"]}
    if params["auth_method"] == "bearer":
        body["token"] = params["bearer_token"] if send_secrets else current.get("token")
    elif params["auth_method"] == "basic":
        body.update(username=params["username"] if send_secrets else current.get("username"),
                    password=params["password"] if send_secrets else current.get("password"))
    try:
        if current:
            saved = api.request("PUT", f"/api/v2/notificationEndpoints/{current['id']}", body=dict(body, id=current["id"]))
        else:
            saved = api.request("POST", "/api/v2/notificationEndpoints", body=body)
    except InfluxDBError as exc:
        api.fail(f"InfluxDB refused the notification endpoint {params['name']!r}", exc)
    result["endpoint"] = dict(normalize(saved), id=saved["id"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
