# Copyright: Isobar contributors
# Apache-2.0
"""Pure plan computation of the kafka_* modules (no I/O): validate, compare before/desired, list actions.

The same plan drives check mode and the real run, so check mode reports exactly what a run does.
"""

from __future__ import annotations

import re

# Kafka's own rule (org.apache.kafka.common.internals.Topic): legal characters, at most 249.
TOPIC_NAME_RE = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
# Internal topics are the cluster's business, never ours (pain point: modules recreating them).
INTERNAL_TOPIC_PREFIX = "__"
DYNAMIC_TOPIC_SOURCE = "DYNAMIC_TOPIC_CONFIG"
MAX_REPLICATION_FACTOR = 32767


class PlanError(Exception):
    """Bad input or a change the module refuses; the message says what to do."""


def normalize_config_value(value):
    """Kafka keeps config values as strings: YAML true/4/0.5 -> 'true'/'4'/'0.5'; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item).strip() for item in value)
    return str(value).strip()


def validate_topic_params(name, state, partitions, replication_factor, configs):
    """Problems with the declared topic, before anything talks to Kafka."""
    problems = []
    if not name or not TOPIC_NAME_RE.match(name) or name in (".", ".."):
        problems.append(f"topic name {name!r} is not a legal Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)")
    elif name.startswith(INTERNAL_TOPIC_PREFIX):
        problems.append(f"topic {name!r} is internal (starts with '__'): internal topics are managed by Kafka, not by this module")
    if state == "present":
        if partitions is not None and partitions < 1:
            problems.append(f"partitions must be at least 1, got {partitions}")
        if replication_factor is not None and not 1 <= replication_factor <= MAX_REPLICATION_FACTOR:
            problems.append(f"replication_factor must be between 1 and {MAX_REPLICATION_FACTOR}, got {replication_factor}")
    for key in configs or {}:
        if not isinstance(key, str) or not re.match(r"^[a-z0-9][a-z0-9._-]*$", key):
            problems.append(f"config key {key!r} is not a Kafka config name (lowercase, dots)")
    return problems


def topic_view(topic, declared_keys):
    """The part of a topic the module manages and shows in diffs (only the declared config keys)."""
    if topic is None:
        return {}
    configs = topic.get("configs") or {}
    return {
        "name": topic["name"],
        "partitions": topic["partitions"],
        "replication_factor": topic["replication_factor"],
        "configs": {key: (configs[key]["value"] if key in configs else None) for key in sorted(declared_keys)},
    }


def plan_topic(current, desired, broker_count):
    """Compare the current topic with the desired one.

    current: None (absent) or {name, internal, partitions, replication_factor,
             configs: {key: {value, source, sensitive}}}  (configs = every config of the topic)
    desired: {name, state, partitions, replication_factor, configs: {key: str or None}}
    broker_count: brokers registered and not fenced.

    Returns {"actions": [...], "before": view, "after": view}. Actions, in execution order:
      ("create", {"partitions", "replication_factor", "configs"}), ("delete", None),
      ("add_partitions", total), ("alter_configs", {key: ("SET", value) | ("DELETE", None)}).
    Raises PlanError for anything refused; nothing is executed in that case.
    """
    configs = {key: normalize_config_value(value) for key, value in (desired.get("configs") or {}).items()}
    declared = set(configs)
    before = topic_view(current, declared)
    if current is not None and current.get("internal"):
        raise PlanError(f"topic {desired['name']!r} is an internal topic: it is managed by Kafka, not by this module")

    if desired["state"] == "absent":
        if current is None:
            return {"actions": [], "before": {}, "after": {}}
        return {"actions": [("delete", None)], "before": before, "after": {}}

    partitions = desired.get("partitions")
    replication_factor = desired.get("replication_factor")
    if current is None:
        if replication_factor is not None and replication_factor > broker_count:
            raise PlanError(
                f"replication_factor {replication_factor} of topic {desired['name']!r} exceeds the {broker_count} "
                f"broker(s) registered in the cluster")
        create_configs = {key: value for key, value in configs.items() if value is not None}
        after = {
            "name": desired["name"],
            "partitions": partitions if partitions is not None else "(broker default num.partitions)",
            "replication_factor": replication_factor if replication_factor is not None else "(broker default default.replication.factor)",
            "configs": {key: configs[key] for key in sorted(declared)},
        }
        return {"actions": [("create", {"partitions": partitions, "replication_factor": replication_factor,
                                        "configs": create_configs})],
                "before": {}, "after": after}

    problems = []
    if partitions is not None and partitions < current["partitions"]:
        problems.append(
            f"partitions cannot decrease (topic {desired['name']!r} has {current['partitions']}, asked for {partitions}): "
            f"Kafka cannot remove partitions; recreate the topic (state=absent, then present) if data loss is acceptable")
    if replication_factor is not None and replication_factor != current["replication_factor"]:
        problems.append(
            f"replication_factor of existing topic {desired['name']!r} is {current['replication_factor']}, asked for "
            f"{replication_factor}: this module sets the replication factor only at creation and refuses to change it "
            f"(use a partition reassignment, e.g. kafka-reassign-partitions, deliberately)")
    unknown = sorted(declared - set(current.get("configs") or {}))
    if unknown:
        problems.append(f"unknown topic config key(s) {', '.join(unknown)} (not reported by the broker for this topic)")
    if problems:
        raise PlanError("; ".join(problems))

    actions = []
    after = dict(before)
    if partitions is not None and partitions > current["partitions"]:
        actions.append(("add_partitions", partitions))
        after["partitions"] = partitions
    alterations = {}
    after_configs = dict(before["configs"])
    for key, value in sorted(configs.items()):
        entry = current["configs"][key]
        if value is None:
            # null = no topic-level override: remove ours if there is one, else nothing to do.
            if entry.get("source") == DYNAMIC_TOPIC_SOURCE:
                alterations[key] = ("DELETE", None)
                after_configs[key] = "(default)"
        elif entry.get("value") != value:
            alterations[key] = ("SET", value)
            after_configs[key] = value
    if alterations:
        actions.append(("alter_configs", alterations))
        after["configs"] = after_configs
    return {"actions": actions, "before": before, "after": after}


def mask_sensitive(view, current):
    """Replace the values of sensitive configs by a mask (diffs and results never show them)."""
    if not view or not current:
        return view
    configs = current.get("configs") or {}
    masked = dict(view)
    masked["configs"] = {
        key: ("********" if configs.get(key, {}).get("sensitive") and value is not None else value)
        for key, value in (view.get("configs") or {}).items()
    }
    return masked


# ---------------------------------------------------------------------------------------------
# ACLs

ACL_RESOURCE_OPERATIONS = {
    # Operations that mean something for each resource type (Kafka's own authorization matrix).
    "topic": {"all", "read", "write", "create", "delete", "alter", "describe", "describe_configs", "alter_configs"},
    "group": {"all", "read", "describe", "delete", "describe_configs", "alter_configs"},
    "cluster": {"all", "create", "alter", "describe", "cluster_action", "describe_configs", "alter_configs",
                "idempotent_write"},
    "transactional_id": {"all", "describe", "write"},
    "delegation_token": {"all", "describe"},
    "user": {"all", "create_tokens", "describe_tokens"},
}
ACL_PATTERN_TYPES = {"literal", "prefixed"}
ACL_PERMISSIONS = {"allow", "deny"}
CLUSTER_RESOURCE_NAME = "kafka-cluster"
PRINCIPAL_RE = re.compile(r"^User:[^\s;,]+$")


def acl_key(principal, host, resource_type, name, pattern_type, operation, permission):
    """A hashable, comparable ACL binding (lowercase enums)."""
    return (principal, host, resource_type.lower(), name, pattern_type.lower(), operation.lower(), permission.lower())


def acl_text(key):
    principal, host, resource_type, name, pattern_type, operation, permission = key
    return f"{permission.upper()} {principal} {operation.upper()} on {resource_type.upper()}:{name} ({pattern_type.upper()}) from {host}"


def expand_acls(principal, host, entries):
    """Validate the declared entries and expand them to a set of acl keys; raises PlanError."""
    problems = []
    if not PRINCIPAL_RE.match(principal or ""):
        problems.append(f"principal {principal!r} must look like 'User:<name>'")
    if not host:
        problems.append("host must be '*' or an IP address")
    keys = set()
    for index, entry in enumerate(entries or []):
        where = f"acls[{index}]"
        resource_type = str(entry.get("resource_type") or "").lower()
        name = entry.get("name")
        pattern_type = str(entry.get("pattern_type") or "literal").lower()
        permission = str(entry.get("permission") or "allow").lower()
        operations = [str(op).lower() for op in entry.get("operations") or []]
        if resource_type not in ACL_RESOURCE_OPERATIONS:
            problems.append(f"{where}: resource_type {entry.get('resource_type')!r} is not one of "
                            f"{', '.join(sorted(ACL_RESOURCE_OPERATIONS))}")
            continue
        if resource_type == "cluster":
            name = name or CLUSTER_RESOURCE_NAME
            if name != CLUSTER_RESOURCE_NAME:
                problems.append(f"{where}: the cluster resource is named {CLUSTER_RESOURCE_NAME!r}, got {name!r}")
        if not name:
            problems.append(f"{where}: name is required for resource_type {resource_type}")
        if pattern_type not in ACL_PATTERN_TYPES:
            problems.append(f"{where}: pattern_type {pattern_type!r} is not literal or prefixed")
        if permission not in ACL_PERMISSIONS:
            problems.append(f"{where}: permission {permission!r} is not allow or deny")
        if not operations:
            problems.append(f"{where}: operations must list at least one operation")
        for operation in operations:
            if operation not in ACL_RESOURCE_OPERATIONS[resource_type]:
                problems.append(f"{where}: operation {operation!r} does not apply to {resource_type} "
                                f"(valid: {', '.join(sorted(ACL_RESOURCE_OPERATIONS[resource_type]))})")
            else:
                keys.add(acl_key(principal, host, resource_type, str(name), pattern_type, operation, permission))
    if problems:
        raise PlanError("; ".join(problems))
    return keys


def plan_acls(current, desired, state, exclusive):
    """current/desired: sets of acl keys of one principal. Returns {"add", "remove", "before", "after"}."""
    if state == "absent":
        remove = current & desired
        add = set()
    else:
        add = desired - current
        remove = (current - desired) if exclusive else set()
    after = (current - remove) | add
    return {
        "add": sorted(add),
        "remove": sorted(remove),
        "before": sorted(acl_text(key) for key in current),
        "after": sorted(acl_text(key) for key in after),
    }


# ---------------------------------------------------------------------------------------------
# SCRAM users

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
# Kafka refuses fewer than 4096 and more than 16384 iterations.
SCRAM_MIN_ITERATIONS = 4096
SCRAM_MAX_ITERATIONS = 16384
SCRAM_USER_RE = re.compile(r"^[^\s,=]+$")


def validate_user_params(name, state, password, mechanism, iterations):
    problems = []
    if not name or not SCRAM_USER_RE.match(name):
        problems.append(f"user name {name!r} must be non-empty without spaces, ',' or '='")
    if mechanism not in SCRAM_MECHANISMS:
        problems.append(f"mechanism must be one of {', '.join(SCRAM_MECHANISMS)}")
    if not SCRAM_MIN_ITERATIONS <= iterations <= SCRAM_MAX_ITERATIONS:
        problems.append(f"iterations must be between {SCRAM_MIN_ITERATIONS} and {SCRAM_MAX_ITERATIONS}, got {iterations}")
    if state == "present" and not password:
        problems.append("password is required with state=present")
    return problems


def plan_user(current_iterations, state, iterations, update_password, password_works):
    """Decide what to do with one SCRAM credential.

    current_iterations: iterations of the user's credential for the mechanism, None if it has none.
    password_works: True/False when the password was tried, None when not tried.
    Returns one of "create", "update", "delete", None (nothing to do), plus the reason.
    """
    if state == "absent":
        return ("delete", "credential exists") if current_iterations is not None else (None, "no credential")
    if current_iterations is None:
        return "create", "no credential for this mechanism"
    if update_password == "on_create":
        return None, "credential exists (update_password=on_create)"
    if current_iterations != iterations:
        return "update", f"iterations {current_iterations} -> {iterations}"
    if password_works is False:
        return "update", "the password does not authenticate"
    return None, "the password authenticates"


def await_read_your_write(read, expected, timeout=15.0, interval=0.1, clock=None, sleep=None):
    """Call ``read()`` until it returns ``expected`` or ``timeout`` seconds pass; (last answer, seen in time).

    A broker answers metadata reads (SCRAM credentials, ACLs) from its own metadata cache, which applies the
    controller's records a moment after the write was acknowledged: reading back at once can return the state
    before the write. The next task (a login, another run's plan) must see the write, so wait for it here.
    """
    import time as _time
    clock = clock or _time.monotonic
    sleep = sleep or _time.sleep
    deadline = clock() + timeout
    while True:
        answer = read()
        if answer == expected:
            return answer, True
        if clock() >= deadline:
            return answer, False
        sleep(interval)
