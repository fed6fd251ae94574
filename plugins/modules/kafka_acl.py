#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Ansible module: manage the ACLs of one Kafka principal."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_acl
short_description: Grant or revoke the ACLs of one Kafka principal over SASL_SSL
description:
  - Manages the ACL bindings of one principal (e.g. C(User:producer)) on a cluster with an authorizer
    (StandardAuthorizer on KRaft).
  - With O(state=present) the declared ACLs are created when missing. With O(exclusive=true) the
    principal's other ACLs (same host) are also removed, so the declared list is all it can do; without
    it nothing undeclared is ever deleted.
  - With O(state=absent) the declared ACLs are removed when present.
  - Entries are validated before anything changes (resource type, pattern type, operations that apply to
    the resource type, principal syntax).
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.kafka_connection
  - isobar.pipeline.attributes
options:
  principal:
    description: Principal the ACLs are for, C(User:<name>).
    type: str
    required: true
  host:
    description: Host the principal connects from (V(*) for any).
    type: str
    default: "*"
  acls:
    description: ACL entries of the principal.
    type: list
    elements: dict
    required: true
    suboptions:
      resource_type:
        description: Kind of resource.
        type: str
        required: true
        choices: [topic, group, cluster, transactional_id, delegation_token, user]
      name:
        description: Resource name (V(*) with V(literal) means every resource). Defaults to C(kafka-cluster) for V(cluster).
        type: str
      pattern_type:
        description: V(literal) matches the name exactly (or every resource with V(*)); V(prefixed) matches names starting with it.
        type: str
        choices: [literal, prefixed]
        default: literal
      operations:
        description: Operations allowed or denied, e.g. V(read), V(write), V(describe), V(describe_configs), V(all).
        type: list
        elements: str
        required: true
      permission:
        description: Allow or deny.
        type: str
        choices: [allow, deny]
        default: allow
  state:
    description: V(present) grants the entries, V(absent) revokes them.
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description: With O(state=present), also remove the principal's ACLs (for O(host)) that are not declared.
    type: bool
    default: false
  sasl_username:
    description: SCRAM user to authenticate as (needs ALTER on the cluster, e.g. a super user).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: The producer may write the weather topic, and nothing else
  kafka_acl:
    principal: User:producer
    exclusive: true
    acls:
      - resource_type: topic
        name: weather
        operations: [write, describe]
    bootstrap_servers: ["172.30.10.11:9092", "172.30.10.12:9092"]
    sasl_username: admin
    sasl_password: "{{ kafka_scram_passwords['admin'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt
    api_version: "4.3"

- name: The consumer reads the weather topic in its group
  kafka_acl:
    principal: User:consumer
    acls:
      - {resource_type: topic, name: weather, operations: [read, describe]}
      - {resource_type: group, name: weather-consumers, operations: [read, describe]}
    bootstrap_servers: ["172.30.10.11:9092"]
    sasl_username: admin
    sasl_password: "{{ kafka_scram_passwords['admin'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt
"""

RETURN = r"""
added:
  description: ACL bindings created (or to create in check mode), as text.
  returned: always
  type: list
  elements: str
  sample: ["ALLOW User:producer WRITE on TOPIC:weather (LITERAL) from *"]
removed:
  description: ACL bindings deleted (or to delete in check mode), as text.
  returned: always
  type: list
  elements: str
acls:
  description: The principal's ACL bindings (for O(host)) after the run.
  returned: always
  type: list
  elements: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import (
    KAFKA_CONNECTION_ARGS,
    NOTHING_CHANGED,
    KafkaModuleError,
    close_quietly,
    connect,
)
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_plan import PlanError, acl_key, acl_text, expand_acls, plan_acls

try:
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourcePatternFilter,
        ResourceType,
    )
except ImportError:  # reported by connect()
    pass


def current_acls(client, principal, host):
    """Every ACL binding of the principal for this host, as plan keys."""
    acl_filter = ACLFilter(
        principal=principal, host=host, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    acls, _error = client.describe_acls(acl_filter)
    return {
        acl_key(acl.principal, acl.host, acl.resource_pattern.resource_type.name, acl.resource_pattern.resource_name,
                acl.resource_pattern.pattern_type.name, acl.operation.name, acl.permission_type.name)
        for acl in acls
    }


def to_acl(key):
    principal, host, resource_type, name, pattern_type, operation, permission = key
    return ACL(principal=principal, host=host, operation=ACLOperation[operation.upper()],
               permission_type=ACLPermissionType[permission.upper()],
               resource_pattern=ResourcePattern(ResourceType[resource_type.upper()], name,
                                                ACLResourcePatternType[pattern_type.upper()]))


def to_filter(key):
    acl = to_acl(key)
    return ACLFilter(principal=acl.principal, host=acl.host, operation=acl.operation,
                     permission_type=acl.permission_type,
                     resource_pattern=ResourcePatternFilter(acl.resource_pattern.resource_type,
                                                            acl.resource_pattern.resource_name,
                                                            acl.resource_pattern.pattern_type))


def apply(client, add, remove):
    if add:
        result = client.create_acls([to_acl(key) for key in add])
        if result["failed"]:
            raise KafkaModuleError(f"creating ACLs failed: {', '.join(str(err) for err in result['failed'])}")
    if remove:
        for _filter, _matched, error in client.delete_acls([to_filter(key) for key in remove]):
            if error.errno:
                raise KafkaModuleError(f"deleting ACLs failed: {error.__name__}")


def main():
    argument_spec = dict(
        principal=dict(type="str", required=True),
        host=dict(type="str", default="*"),
        acls=dict(type="list", elements="dict", required=True, options=dict(
            resource_type=dict(type="str", required=True,
                               choices=["topic", "group", "cluster", "transactional_id", "delegation_token", "user"]),
            name=dict(type="str"),
            pattern_type=dict(type="str", default="literal", choices=["literal", "prefixed"]),
            operations=dict(type="list", elements="str", required=True),
            permission=dict(type="str", default="allow", choices=["allow", "deny"]),
        )),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        exclusive=dict(type="bool", default=False),
    )
    argument_spec.update(KAFKA_CONNECTION_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    try:
        desired = expand_acls(p["principal"], p["host"], p["acls"])
    except PlanError as exc:
        module.fail_json(msg=f"kafka_acl {p['principal']!r}: {exc}. {NOTHING_CHANGED}")

    client = connect(module)
    try:
        current = current_acls(client, p["principal"], p["host"])
        plan = plan_acls(current, desired, p["state"], p["exclusive"])
        changed = bool(plan["add"] or plan["remove"])
        if changed and not module.check_mode:
            apply(client, plan["add"], plan["remove"])
            after = sorted(acl_text(key) for key in current_acls(client, p["principal"], p["host"]))
        else:
            after = plan["after"] if module.check_mode else plan["before"]
    except KafkaModuleError as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_acl {p['principal']!r}: {exc}")
    except Exception as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_acl {p['principal']!r}: unexpected {type(exc).__name__}: {exc}",
                         exception=traceback.format_exc())
    close_quietly(client)
    result = dict(changed=changed, added=[acl_text(k) for k in plan["add"]],
                  removed=[acl_text(k) for k in plan["remove"]], acls=after)
    if module._diff:
        result["diff"] = {"before": "\n".join(plan["before"]) + "\n" if plan["before"] else "",
                          "after": "\n".join(plan["after"]) + "\n" if plan["after"] else "",
                          "before_header": f"ACLs of {p['principal']}", "after_header": f"ACLs of {p['principal']}"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
