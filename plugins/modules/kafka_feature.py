#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Ansible module: read or finalize a Kafka cluster feature level (metadata.version after an upgrade)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_feature
short_description: Read or finalize a Kafka feature level, such as metadata.version after a rolling upgrade
description:
  - Reads a feature's finalized level and the range the brokers support (DescribeFeatures, KIP-584).
  - With O(level), finalizes the feature at that level (UpdateFeatures, sent to the active controller). The controller
    itself refuses a level a node does not support yet, i.e. while the rolling upgrade is not complete.
  - A level below the finalized one is a downgrade and is refused, with nothing changed, unless
    O(allow_downgrade=true) (a safe downgrade, which Kafka may refuse too). With O(max_level), only checks that the
    finalized level does not exceed it (e.g. before installing an older release) and fails clearly when it does.
  - C(kraft.version) is refused, since raising it converts a static controller quorum to a dynamic one (a separate,
    deliberate migration).
version_added: "1.1.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.kafka_connection
  - isobar.pipeline.attributes
options:
  name:
    description: Feature name, e.g. V(metadata.version), V(group.version), V(transaction.version).
    type: str
    default: metadata.version
  level:
    description: Level to finalize (e.g. V(33) for metadata.version 4.4); omitted, the module only reads.
    type: int
  max_level:
    description: Fail, changing nothing, when the finalized level is above this one (what an older release supports).
    type: int
  allow_downgrade:
    description: Allow O(level) below the finalized level (a safe downgrade).
    type: bool
    default: false
  sasl_username:
    description: SCRAM user to authenticate as (needs ALTER on the cluster to finalize, e.g. a super user).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Finalize metadata.version 4.4 once every broker runs Kafka 4.4
  isobar.pipeline.kafka_feature:
    name: metadata.version
    level: 33

- name: Refuse to install Kafka 4.3 (metadata.version 30 at most) on a cluster finalized above it
  isobar.pipeline.kafka_feature:
    name: metadata.version
    max_level: 30
"""

RETURN = r"""
finalized:
  description: Finalized level before the module ran (V(null) when the feature is not finalized).
  returned: always
  type: int
level:
  description: Finalized level after the module ran (the planned one in check mode).
  returned: always
  type: int
supported:
  description: The C(min) and C(max) levels the answering broker supports.
  returned: always
  type: dict
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

# Raising it turns a static quorum into a dynamic one (KAFKA-21426): never as a side effect of an upgrade.
REFUSED_FEATURES = {"kraft.version"}


def plan_feature(name, finalized, supported, level, max_level, allow_downgrade):
    """The level to set (None: nothing to do), or KafkaModuleError. Pure."""
    if name in REFUSED_FEATURES and level is not None:
        raise KafkaModuleError(f"{name} is not changed by this module: raising it converts a static controller quorum "
                               f"to a dynamic one, a migration of its own. {NOTHING_CHANGED}")
    if max_level is not None and finalized is not None and finalized > max_level:
        raise KafkaModuleError(
            f"{name} is finalized at {finalized}, above {max_level}: the release being installed cannot run this "
            f"cluster (a downgrade past a finalized {name} is refused). {NOTHING_CHANGED}")
    if level is None:
        return None
    if level < 1:
        raise KafkaModuleError(f"level must be >= 1, got {level}. {NOTHING_CHANGED}")
    if finalized is not None and level < finalized and not allow_downgrade:
        raise KafkaModuleError(f"{name} is finalized at {finalized}; {level} would be a downgrade, refused without "
                               f"allow_downgrade. {NOTHING_CHANGED}")
    if supported is not None and level > supported[1]:
        raise KafkaModuleError(f"{name} level {level} is above what the brokers support ({supported[0]}-{supported[1]}): "
                               f"upgrade every node first. {NOTHING_CHANGED}")
    return None if level == finalized else level


def main():
    argument_spec = dict(
        name=dict(type="str", default="metadata.version"),
        level=dict(type="int"),
        max_level=dict(type="int"),
        allow_downgrade=dict(type="bool", default=False),
    )
    argument_spec.update(KAFKA_CONNECTION_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    client = connect(module)
    try:
        # kafka-python answers {name: {"supported": (min, max), "finalized": (min, max), "finalized_epoch": n}}.
        features = client.describe_features(send_request_to_controller=True)
        entry = features.get(p["name"]) or {}
        finalized = entry["finalized"][1] if entry.get("finalized") else None
        supported_range = entry.get("supported")
        if supported_range is None:
            raise KafkaModuleError(f"the cluster knows no feature {p['name']!r} (supported: "
                                   f"{sorted(name for name, e in features.items() if e.get('supported'))}). "
                                   f"{NOTHING_CHANGED}")
        target = plan_feature(p["name"], finalized, supported_range, p["level"], p["max_level"], p["allow_downgrade"])
        if target is not None and not module.check_mode:
            kind = "SAFE_DOWNGRADE" if finalized is not None and target < finalized else "UPGRADE"
            answer = client.update_features({p["name"]: (kind, target)})
            if answer.get(p["name"]) != "OK":
                raise KafkaModuleError(f"the controller refused {p['name']}={target}: {answer.get(p['name'])}")
    except KafkaModuleError as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_feature: {exc}")
    except Exception as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_feature: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    close_quietly(client)
    result = {"changed": target is not None, "finalized": finalized,
              "level": target if target is not None else finalized,
              "supported": {"min": supported_range[0], "max": supported_range[1]}}
    if module._diff:
        result["diff"] = {"before": {p["name"]: finalized}, "after": {p["name"]: result["level"]}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
