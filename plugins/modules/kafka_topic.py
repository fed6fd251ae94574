#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Ansible module: manage one Kafka topic (partitions, replication factor at creation, configs)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_topic
short_description: Create, update or delete a Kafka topic over SASL_SSL
description:
  - Creates a topic with a number of partitions, a replication factor and topic configs, increases its
    partitions, sets or alters the declared configs, or deletes it (only with O(state=absent)).
  - Configs are changed with IncrementalAlterConfigs and only the declared keys are touched; every other
    config of the topic keeps its value. A key is compared by its effective value (a broker default equal
    to the declared value counts as already set). A declared value of V(null) removes the topic-level override.
  - The replication factor is set at creation only. A different O(replication_factor) on an existing topic
    is refused with an error (this module does not reassign partitions; do that deliberately with
    kafka-reassign-partitions). Partitions can only increase.
  - Internal topics (names starting with C(__), or flagged internal by the broker) are never managed.
  - Every change is first sent with C(validate_only), so bad values (unknown config key, invalid value,
    replication factor above the broker count, partition decrease) fail before anything changes. Check mode
    computes the same plan and sends the same validations, and changes nothing.
  - "A request the brokers refuse after an earlier one of the same run was applied (partitions added, then
    the config change refused, e.g. by a concurrent ACL or topic change) fails the task with C(changed=true),
    the actions applied and not applied, and the topic as it is now."
  - Connects with kafka-python's admin client (SASL_SSL, SCRAM, explicit API version).
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.kafka_connection
  - isobar.pipeline.attributes
options:
  name:
    description: Topic name (1-249 characters of V(a-z A-Z 0-9 . _ -)); names starting with C(__) are refused.
    type: str
    required: true
  state:
    description: V(present) creates or updates the topic; V(absent) deletes it (and its data).
    type: str
    choices: [present, absent]
    default: present
  partitions:
    description:
      - Number of partitions. On an existing topic it can only grow; a smaller number is an error.
      - Omitted means the broker default (C(num.partitions)) at creation, and no check afterwards.
    type: int
  replication_factor:
    description:
      - Replication factor, set at creation. Must not exceed the number of registered brokers.
      - On an existing topic a different value is an error (no reassignment is done).
      - Omitted means the broker default (C(default.replication.factor)).
    type: int
  configs:
    description:
      - Topic configs to set, e.g. C(retention.ms), C(min.insync.replicas). Values are compared as strings.
      - Only these keys are managed. An unknown key is an error. V(null) removes a topic-level override.
    type: dict
    default: {}
  sasl_username:
    description: SCRAM user to authenticate as (needs the rights to create/alter/describe topics).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Create the weather topic (4 partitions, replicated on 3 brokers)
  kafka_topic:
    name: weather
    partitions: 4
    replication_factor: 3
    configs:
      min.insync.replicas: 2
      retention.ms: 604800000
    bootstrap_servers: "{{ kafka_bootstrap_servers.split(',') }}"
    sasl_username: admin
    sasl_password: "{{ kafka_scram_passwords['admin'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt
    api_version: "4.3"

- name: Remove the retention override (back to the broker default)
  kafka_topic:
    name: weather
    configs:
      retention.ms: null
    bootstrap_servers: ["172.30.10.11:9092"]
    sasl_username: admin
    sasl_password: "{{ kafka_scram_passwords['admin'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt

- name: Delete a topic
  kafka_topic:
    name: scratch
    state: absent
    bootstrap_servers: ["172.30.10.11:9092"]
    sasl_username: admin
    sasl_password: "{{ kafka_scram_passwords['admin'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt
"""

RETURN = r"""
topic:
  description: The topic after the run (predicted in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    name:
      description: Topic name.
      type: str
    topic_id:
      description: Kafka topic id (absent in check mode before creation).
      type: str
    partitions:
      description: Number of partitions.
      type: int
    replication_factor:
      description: Replicas per partition.
      type: int
    configs:
      description: The declared configs and every topic-level override, with their effective values.
      type: dict
    partition_details:
      description: Per partition the leader, replicas and in-sync replicas.
      type: list
      elements: dict
actions:
  description: What the run did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["create partitions=4 replication_factor=3", "set min.insync.replicas=2"]
applied:
  description: When a request failed after others were applied, the actions that were applied.
  returned: on a partial failure
  type: list
  elements: str
  sample: ["increase partitions to 6"]
not_applied:
  description: When a request failed after others were applied, the failed action and those after it.
  returned: on a partial failure
  type: list
  elements: str
  sample: ["set retention.ms=3600000"]
diff:
  description: Before/after of the managed fields (name, partitions, replication factor, declared configs).
  returned: when diff mode is on
  type: dict
"""

import os
import time
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import (
    KAFKA_CONNECTION_ARGS,
    NOTHING_CHANGED,
    KafkaModuleError,
    close_quietly,
    connect,
)
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_plan import (
    DYNAMIC_TOPIC_SOURCE,
    PlanError,
    mask_sensitive,
    plan_topic,
    validate_topic_params,
)

try:
    import kafka.errors as kafka_errors
    from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType
except ImportError:  # reported by connect()
    pass


def _error_name(code):
    return kafka_errors.for_code(code).__name__


def describe_topic(client, name):
    """The topic as plan_topic() wants it, or None when it does not exist."""
    topics = client.describe_topics([name])
    info = next((t for t in topics if t.get("name") == name), None)
    if info is None or info.get("error_code") == kafka_errors.UnknownTopicOrPartitionError.errno:
        return None
    if info.get("error_code"):
        raise KafkaModuleError(f"describing topic {name!r} failed: {_error_name(info['error_code'])}")
    partitions = sorted(info.get("partitions") or [], key=lambda p: p["partition_index"])
    described = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")
    raw = (described.get("topic") or {}).get(name) or {}
    configs = {key: {"value": entry.get("value"), "source": entry.get("config_source"),
                     "sensitive": bool(entry.get("is_sensitive"))} for key, entry in raw.items()}
    return {
        "name": name,
        "topic_id": str(info.get("topic_id") or ""),
        "internal": bool(info.get("is_internal")),
        "partitions": len(partitions),
        "replication_factor": len(partitions[0]["replica_nodes"]) if partitions else 0,
        "configs": configs,
        "partition_details": [
            {"partition": p["partition_index"], "leader": p["leader_id"], "replicas": p["replica_nodes"],
             "isr": p["isr_nodes"]} for p in partitions
        ],
    }


def registered_brokers(client):
    cluster = client.describe_cluster()
    return [b for b in cluster.get("brokers") or [] if not b.get("is_fenced")]


def result_topic(topic, declared):
    """What the module returns about the topic (declared configs + topic-level overrides)."""
    if topic is None:
        return {}
    configs = {key: entry["value"] for key, entry in topic["configs"].items()
               if key in declared or entry.get("source") == DYNAMIC_TOPIC_SOURCE}
    masked = mask_sensitive({"configs": configs}, topic)["configs"]
    return {
        "name": topic["name"],
        "topic_id": topic["topic_id"],
        "partitions": topic["partitions"],
        "replication_factor": topic["replication_factor"],
        "configs": dict(sorted(masked.items())),
        "partition_details": topic["partition_details"],
    }


def action_text(action):
    kind, data = action
    if kind == "create":
        return (f"create partitions={data['partitions'] or 'default'} "
                f"replication_factor={data['replication_factor'] or 'default'}"
                + "".join(f" {k}={v}" for k, v in sorted(data["configs"].items())))
    if kind == "delete":
        return "delete"
    if kind == "add_partitions":
        return f"increase partitions to {data}"
    return "; ".join(f"set {k}={v}" if op == "SET" else f"remove override {k}" for k, (op, v) in sorted(data.items()))


def _create_request(name, data):
    spec = {}
    if data["partitions"] is not None:
        spec["num_partitions"] = data["partitions"]
    if data["replication_factor"] is not None:
        spec["replication_factor"] = data["replication_factor"]
    if data["configs"]:
        spec["configs"] = data["configs"]
    return {name: spec}


def _check_create(response, name, what):
    for topic in response.get("topics") or []:
        if topic.get("error_code"):
            raise KafkaModuleError(f"{what} topic {name!r} failed: {_error_name(topic['error_code'])}: "
                                   f"{topic.get('error_message') or ''}".rstrip(": "))


def _check_partitions(response, name, what):
    for result in getattr(response, "results", None) or []:
        if result.error_code:
            raise KafkaModuleError(f"{what} partitions of {name!r} failed: {_error_name(result.error_code)}: "
                                   f"{result.error_message or ''}".rstrip(": "))


def _alter_resource(name, alterations):
    ops = {key: (AlterConfigOp.SET if op == "SET" else AlterConfigOp.DELETE, value)
           for key, (op, value) in alterations.items()}
    return [ConfigResource(ConfigResourceType.TOPIC, name, configs=ops)]


def _check_alter(response, name, what):
    result = (response.get("topic") or {}).get(name)
    if result != "OK":
        raise KafkaModuleError(f"{what} configs of {name!r} failed: {result}")


# Tests only: ISOBAR_FAULT_INJECT=pause_after:<action kind>:<path> waits after that action was applied
# (<path>.paused exists) until <path>.resume exists, so a test can change the cluster between two requests.
FAULT_ENV = "ISOBAR_FAULT_INJECT"


def _pause_for_test(kind):
    stage, dummy, path = os.environ.get(FAULT_ENV, "").partition(":" + kind + ":")
    if stage != "pause_after" or not path:
        return
    with open(path + ".paused", "w"):
        pass
    deadline = time.monotonic() + 120
    while not os.path.exists(path + ".resume") and time.monotonic() < deadline:
        time.sleep(0.1)


def execute(client, name, actions, validate_only, timeout_ms, applied=None):
    """Send the plan's requests; with validate_only the broker only checks them. Each action that the
    brokers applied is appended to ``applied``."""
    what = "validating" if validate_only else "changing"
    for action in actions:
        kind, data = action
        if kind == "create":
            response = client.create_topics(_create_request(name, data), timeout_ms=timeout_ms,
                                            validate_only=validate_only, raise_errors=False)
            _check_create(response, name, "validating" if validate_only else "creating")
            if not validate_only:
                client.wait_for_topics([name], timeout_ms=timeout_ms)
        elif kind == "delete":
            if validate_only:
                continue  # DeleteTopics has no validate_only; the plan already knows the topic exists
            response = client.delete_topics([name], timeout_ms=timeout_ms, raise_errors=False)
            for topic in response.get("topics") or []:
                if topic.get("error_code"):
                    raise KafkaModuleError(f"deleting topic {name!r} failed: {_error_name(topic['error_code'])}")
        elif kind == "add_partitions":
            response = client.create_partitions({name: data}, timeout_ms=timeout_ms, validate_only=validate_only,
                                                raise_errors=False)
            _check_partitions(response, name, what)
        elif kind == "alter_configs":
            response = client.alter_configs(_alter_resource(name, data), validate_only=validate_only,
                                            raise_on_unknown=False, incremental=True)
            _check_alter(response, name, what)
        if applied is not None:
            applied.append(action)
            _pause_for_test(kind)


def fail_partial(module, client, name, actions, applied, exc):
    """A request failed after earlier ones were applied: the topic changed, say what was and was not done."""
    text = str(exc) if isinstance(exc, KafkaModuleError) else f"{type(exc).__name__}: {exc}"
    done = [action_text(a) for a in applied]
    left = [action_text(a) for a in actions[len(applied):]]
    try:
        now = result_topic(describe_topic(client, name), set(module.params["configs"]))
    except Exception as again:  # the failure may be the connection itself
        now = {"error": f"the topic could not be described after the failure: {type(again).__name__}: {again}"}
    close_quietly(client)
    module.fail_json(msg=f"kafka_topic {name!r}: {text}. The topic WAS changed: applied {'; '.join(done)}; "
                         f"not applied: {'; '.join(left)}. Fix the cause and re-run (the run applies what is missing).",
                     changed=True, applied=done, not_applied=left, actions=done, topic=now)


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        partitions=dict(type="int"),
        replication_factor=dict(type="int"),
        configs=dict(type="dict", default={}),
    )
    argument_spec.update(KAFKA_CONNECTION_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    name = p["name"]

    problems = validate_topic_params(name, p["state"], p["partitions"], p["replication_factor"], p["configs"])
    if problems:
        module.fail_json(msg=f"kafka_topic {name!r}: " + "; ".join(problems) + ". " + NOTHING_CHANGED)

    client = connect(module)
    timeout_ms = p["request_timeout"] * 1000
    try:
        current = describe_topic(client, name)
        broker_count = len(registered_brokers(client))
        desired = {"name": name, "state": p["state"], "partitions": p["partitions"],
                   "replication_factor": p["replication_factor"], "configs": p["configs"]}
        plan = plan_topic(current, desired, broker_count)
        # Every request is validated by the brokers first: a bad value fails before any change.
        try:
            execute(client, name, plan["actions"], validate_only=True, timeout_ms=timeout_ms)
        except KafkaModuleError as exc:
            raise PlanError(str(exc)) from None
        changed = bool(plan["actions"])
        if changed and not module.check_mode:
            applied = []
            try:
                execute(client, name, plan["actions"], validate_only=False, timeout_ms=timeout_ms, applied=applied)
            except Exception as exc:
                if not applied:
                    raise
                fail_partial(module, client, name, plan["actions"], applied, exc)
            topic = describe_topic(client, name)
        else:
            topic = current
    except PlanError as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_topic {name!r}: {exc}. {NOTHING_CHANGED}")
    except KafkaModuleError as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_topic {name!r}: {exc}")
    except Exception as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_topic {name!r}: unexpected {type(exc).__name__}: {exc}",
                         exception=traceback.format_exc())
    close_quietly(client)

    declared = set(p["configs"])
    if module.check_mode and changed:
        returned = dict(plan["after"], topic_id=(current or {}).get("topic_id", ""),
                        partition_details=(current or {}).get("partition_details", []))
        if p["state"] == "absent":
            returned = {}
    else:
        returned = result_topic(topic, declared)
    result = dict(changed=changed, topic=returned, actions=[action_text(a) for a in plan["actions"]])
    if module._diff:
        result["diff"] = {"before": mask_sensitive(plan["before"], current),
                          "after": mask_sensitive(plan["after"], current)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
