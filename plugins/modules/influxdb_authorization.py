#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Manage an InfluxDB 2 API token (authorization) by description, capturing its value once."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: influxdb_authorization
short_description: Manage an InfluxDB 2 API token by description, least privilege, value captured once
description:
  - Makes sure an authorization (API token) with the description O(description) exists in O(org) with exactly the
    permissions O(permissions) and the status O(status).
  - InfluxDB generates token values itself and, since 2.8, stores them hashed - a value is visible only in the
    answer that created it. So the module returns RV(token) only when it creates a token; the caller keeps it
    (e.g. in a vault) and passes it back as O(current_token) on later runs.
  - A token whose value the caller still holds and that the server still accepts is never replaced for status or
    description changes (they are updated in place). Permissions of a token cannot be changed in InfluxDB; when
    they differ the module refuses and changes nothing, because deleting the old token in the same step breaks
    every client that still uses it. Change a client's permissions with C(playbooks/rotate-secrets.yml) (new
    token stored, clients reconfigured, old one revoked last), or set O(replace_token=true) to create the new
    token (returned in RV(token)) and delete the old one at once.
  - When the caller holds no accepted value (first run, vault lost, instance re-created), a new token is created;
    other tokens with the same description, whose values nobody can know any more, are deleted when
    O(remove_stale=true).
  - InfluxDB has no API that maps a token value to its authorization; O(current_token) is taken to belong to the
    authorization with this description when the server accepts it and the description is unique in the org.
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.influxdb_connection
  - isobar.pipeline.attributes
options:
  token:
    description: Operator (or other all-access) token used to manage authorizations. Env C(INFLUX_TOKEN).
  description:
    description: Description of the authorization; it identifies the token (keep it unique in the org).
    type: str
    required: true
  permissions:
    description: Exactly the permissions of the token (required with O(state=present)).
    type: list
    elements: dict
    suboptions:
      action:
        description: Action allowed.
        type: str
        choices: [read, write]
        required: true
      type:
        description: Resource type, e.g. C(buckets), C(dashboards), C(tasks), C(checks), C(orgs).
        type: str
        required: true
      name:
        description: Name of one resource of that type in O(org) (buckets only); omitted = all of that type in O(org).
        type: str
      id:
        description: ID of one resource of that type; omitted = all of that type in O(org).
        type: str
  status:
    description: Whether the token is usable.
    type: str
    choices: [active, inactive]
    default: active
  state:
    description: C(absent) deletes every authorization with this description.
    type: str
    choices: [present, absent]
    default: present
  current_token:
    description: The value of this token the caller kept from an earlier run (e.g. from the vault).
    type: str
  remove_stale:
    description: Delete other authorizations with this description when a new token is created.
    type: bool
    default: true
  replace_token:
    description:
      - When the permissions of the token held in O(current_token) differ, create a new token and delete the old
        one in this run. Its clients fail until they are given the new value, so the default refuses instead.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Token of the inject job (write weather only)
  influxdb_authorization:
    url: https://127.0.0.1:8086
    token: "{{ influxdb_operator_token }}"
    ca_path: /etc/isobar/pki/ca.crt
    org: myorg
    description: "isobar inject: write weather"
    permissions:
      - {action: write, type: buckets, name: weather}
    current_token: "{{ influxdb_client_tokens.inject | default(omit) }}"
  register: inject_token
  no_log: true

- name: Keep a newly created token in the generated vault
  isobar_vault_file:
    path: "{{ isobar_generated_vault_file }}"
    values:
      vault_influxdb_tokens:
        inject: "{{ inject_token.token }}"
  when: inject_token.token is defined
  no_log: true
"""

RETURN = r"""
token:
  description: Value of the token, only when this run created it (keep it; it is never shown again).
  returned: when a token was created, not in check mode
  type: str
created:
  description: Whether a token was (or, in check mode, would be) created.
  returned: always
  type: bool
replaced:
  description: Whether an existing token was (would be) replaced because its permissions differ.
  returned: always
  type: bool
removed_ids:
  description: IDs of the authorizations deleted (to be deleted in check mode).
  returned: always
  type: list
  elements: str
authorization:
  description: The authorization after the run (without its value).
  returned: always
  type: dict
  contains:
    id: {description: ID (empty in check mode before creation)., type: str}
    description: {description: Description., type: str}
    status: {description: active or inactive., type: str}
    permissions: {description: "Permissions as C(action:type/name) strings.", type: list, elements: str}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import NOTHING_CHANGED, InfluxDBApi, InfluxDBError, influxdb_argument_spec


def perm_key(perm):
    res = perm["resource"]
    return (perm["action"], res["type"], res.get("id") or "", res.get("orgID") or "")


def perm_text(perm):
    res = perm["resource"]
    return f"{perm['action']}:{res['type']}/{res.get('name') or res.get('id') or '*'}"


def summary(auth, permissions=None):
    if not auth:
        return {}
    return {"id": auth.get("id", ""), "description": auth.get("description", ""), "status": auth.get("status", "active"),
            "permissions": sorted(perm_text(p) for p in (permissions if permissions is not None else auth["permissions"]))}


def token_accepted(api, value):
    """Whether the server knows this token value (active or inactive); fails the module on any other error."""
    try:
        return api.token_known(value)
    except InfluxDBError as exc:
        api.fail("cannot check the current token", exc)


def main():
    argument_spec = influxdb_argument_spec()
    argument_spec.update(
        description=dict(type="str", required=True),
        permissions=dict(type="list", elements="dict", options=dict(
            action=dict(type="str", required=True, choices=["read", "write"]),
            type=dict(type="str", required=True),
            name=dict(type="str"),
            id=dict(type="str"),
        )),
        status=dict(type="str", default="active", choices=["active", "inactive"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        current_token=dict(type="str", no_log=True),
        remove_stale=dict(type="bool", default=True),
        replace_token=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ["permissions"])])
    params = module.params
    if not params["description"].strip():
        module.fail_json(msg=f"description must not be empty: it identifies the token. {NOTHING_CHANGED}")

    api = InfluxDBApi(module)
    org = api.org()
    try:
        matching = [a for a in api.list_all("/api/v2/authorizations", "authorizations", {"orgID": org["id"]})
                    if a.get("description") == params["description"]]
    except InfluxDBError as exc:
        api.fail("cannot list the authorizations", exc)
    result = dict(changed=False, created=False, replaced=False, removed_ids=[])

    if params["state"] == "absent":
        result.update(changed=bool(matching), removed_ids=[a["id"] for a in matching], authorization={})
        if module._diff:
            result["diff"] = dict(before=summary(matching[0]) if matching else {}, after={})
        if not module.check_mode:
            for auth in matching:
                try:
                    api.request("DELETE", f"/api/v2/authorizations/{auth['id']}")
                except InfluxDBError as exc:
                    api.fail(f"cannot delete authorization {auth['id']}", exc)
        module.exit_json(**result)

    # Desired permissions, every named resource resolved first: an unknown bucket fails before any change.
    desired = []
    for spec in params["permissions"]:
        resource = {"type": spec["type"], "orgID": org["id"]}
        if spec["type"] == "orgs":
            resource = {"type": "orgs", "id": spec["id"] or org["id"]}
        elif spec["name"]:
            if spec["type"] != "buckets":
                module.fail_json(msg=f"permission on {spec['type']}: 'name' is supported for buckets only, use 'id'. "
                                     f"{NOTHING_CHANGED}")
            resource.update(id=api.bucket(spec["name"], org["id"])["id"], name=spec["name"])
        elif spec["id"]:
            resource["id"] = spec["id"]
        desired.append({"action": spec["action"], "resource": resource})
    desired_keys = {perm_key(p) for p in desired}

    keeper = None
    if params["current_token"] and matching and token_accepted(api, params["current_token"]):
        if len(matching) == 1:
            keeper = matching[0]
        else:
            same = [a for a in matching if {perm_key(p) for p in a["permissions"]} == desired_keys]
            keeper = same[0] if len(same) == 1 else None
            if keeper is None:
                # The held value works but cannot be told apart: replacing could break a working client.
                module.warn(f"{len(matching)} authorizations share the description {params['description']!r}; cannot "
                            f"tell which one holds the kept token, so none is changed. Remove the extra ones by hand.")
                result["authorization"] = summary(matching[0])
                module.exit_json(**result)

    before = summary(keeper) if keeper else {}
    after = dict(summary({"description": params["description"], "status": params["status"], "permissions": desired}),
                 id=keeper["id"] if keeper else "")
    if keeper and {perm_key(p) for p in keeper["permissions"]} != desired_keys:
        if not params["replace_token"]:
            module.fail_json(
                msg=f"the permissions of the token {params['description']!r} differ "
                    f"({', '.join(before['permissions'])} -> {', '.join(after['permissions'])}). InfluxDB cannot change "
                    "them in place and replacing the token now would break its clients, which still use the old "
                    "value: change them with playbooks/rotate-secrets.yml -e rotate=influxdb_tokens (new token first, "
                    f"clients reconfigured, old one revoked last), or set replace_token=true. {NOTHING_CHANGED}",
                authorization=before)
        result.update(replaced=True, created=True)
    elif not keeper:
        result["created"] = True
    stale = [a for a in matching if a is not keeper] if (result["created"] and params["remove_stale"]) else []
    if result["replaced"]:
        stale = [a for a in matching if a is not keeper] + [keeper] if params["remove_stale"] else [keeper]
    result["removed_ids"] = [a["id"] for a in stale]
    patch_status = bool(keeper) and not result["replaced"] and keeper["status"] != params["status"]
    result["changed"] = result["created"] or patch_status or bool(stale)
    if result["created"]:
        after["id"] = ""
    result["authorization"] = after
    if module._diff:
        result["diff"] = dict(before=before or (summary(matching[0]) if matching else {}), after=after)
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)

    try:
        if result["created"]:
            created = api.request("POST", "/api/v2/authorizations", body={
                "orgID": org["id"], "description": params["description"], "status": params["status"],
                "permissions": desired})
            result["token"] = created["token"]
            result["authorization"] = summary(created)
        elif patch_status:
            saved = api.request("PATCH", f"/api/v2/authorizations/{keeper['id']}", body={"status": params["status"]})
            result["authorization"] = summary(saved)
        for auth in stale:
            api.request("DELETE", f"/api/v2/authorizations/{auth['id']}")
    except InfluxDBError as exc:
        # A token created just before a failed delete must not be lost: hand it back with the error.
        extra = {"token": result["token"]} if "token" in result else {}
        msg = "cannot update the authorization" if not extra else "created the new token but could not delete the old one"
        module.fail_json(msg=f"{msg}: {exc.message}", status=exc.status, **extra)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
