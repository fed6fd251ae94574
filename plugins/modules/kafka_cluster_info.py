#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Ansible module: health of a KRaft cluster (brokers, quorum, under-replicated partitions)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_cluster_info
short_description: Report the health of a Kafka KRaft cluster over SASL_SSL
description:
  - Reads the registered brokers (DescribeCluster, fenced ones included), the KRaft metadata quorum
    (DescribeQuorum, with the leader, the voters and how far each lags) and every partition's replicas and ISR.
  - Computes C(healthy) and C(problems) against the expectations given (brokers that must be registered
    and unfenced, quorum voters, maximum quorum lag, no under-replicated or offline partition). Rolling
    restarts poll it with C(until) before taking the next broker down.
  - Read-only; it never changes anything, so C(changed) is always false.
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.kafka_connection
  - isobar.pipeline.attributes
options:
  expected_brokers:
    description: Node ids that must be registered and not fenced for C(healthy).
    type: list
    elements: int
    default: []
  expected_voters:
    description: Node ids that must be quorum voters (each within O(max_quorum_lag) of the high watermark).
    type: list
    elements: int
    default: []
  max_quorum_lag:
    description: Largest accepted distance (records) between the quorum's high watermark and a voter's log end.
    type: int
    default: 100
  check_logins:
    description:
      - Also log in as O(sasl_username) on every registered, unfenced broker, one at a time; a broker that rejects
        the login (or cannot be reached) makes the cluster unhealthy and is listed in RV(login_failures).
      - Catches a restarted broker that came back without the SCRAM credentials while the rest of the cluster
        looks fine (it leads nothing yet, so nothing is under-replicated), before the next broker goes down.
    type: bool
    default: false
  sasl_username:
    description: SCRAM user to authenticate as (needs DESCRIBE on the cluster and topics, e.g. a super user).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Wait until broker 2 is back and nothing is under-replicated
  kafka_cluster_info:
    expected_brokers: [1, 2, 3]
    expected_voters: [1, 2, 3]
    bootstrap_servers: ["172.30.10.11:9092", "172.30.10.12:9092", "172.30.10.13:9092"]
    sasl_username: admin
    sasl_password: "{{ kafka_scram_passwords['admin'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt
    api_version: "4.3"
  register: kafka_health
  until: kafka_health.healthy
  retries: 60
  delay: 5
"""

RETURN = r"""
healthy:
  description: True when every expectation holds and no partition is under-replicated or offline.
  returned: always
  type: bool
problems:
  description: What is wrong, one sentence each (empty when healthy).
  returned: always
  type: list
  elements: str
cluster_id:
  description: The cluster id.
  returned: always
  type: str
controller_id:
  description: Node id of the active controller (the quorum leader).
  returned: always
  type: int
brokers:
  description: Registered brokers with C(id), C(host), C(port), C(fenced).
  returned: always
  type: list
  elements: dict
quorum:
  description: C(leader_id), C(leader_epoch), C(high_watermark), C(voters) and C(observers) (each C(id), C(log_end_offset), C(lag)).
  returned: always
  type: dict
topics:
  description: Number of topics (internal ones included).
  returned: always
  type: int
partitions:
  description: Number of partitions.
  returned: always
  type: int
under_replicated_partitions:
  description: Partitions whose ISR is smaller than their replica set (C(topic), C(partition), C(replicas), C(isr)).
  returned: always
  type: list
  elements: dict
offline_partitions:
  description: Partitions without a leader.
  returned: always
  type: list
  elements: dict
leaders_per_broker:
  description:
    - Number of partitions each node leads, keyed by node id (as a string); every registered broker is listed, with 0
      when it leads nothing. A node that is not registered but still named as a leader is listed too.
  returned: always
  type: dict
  sample: {"1": 3, "2": 0, "3": 3}
login_failures:
  description: With O(check_logins), the brokers that rejected the login (C(id), C(address), C(error)); else empty.
  returned: always
  type: list
  elements: dict
preferred_leader_mismatches:
  description:
    - Partitions led by another replica than their preferred one (the first of C(replicas)); empty after a successful
      preferred leader election with every broker in sync. Offline partitions are not listed here.
  returned: always
  type: list
  elements: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import KAFKA_CONNECTION_ARGS, close_quietly, connect, describe_exception, try_login


def _replica(entry, high_watermark):
    end = entry.get("log_end_offset")
    return {"id": entry.get("replica_id"), "log_end_offset": end,
            "lag": (high_watermark - end) if end is not None and end >= 0 and high_watermark is not None else None}


def assess(cluster, quorum, topics, expected_brokers, expected_voters, max_quorum_lag):
    """Pure: the facts and problems from the three describe answers."""
    brokers = sorted(({"id": b["broker_id"], "host": b.get("host"), "port": b.get("port"),
                       "fenced": bool(b.get("is_fenced"))} for b in cluster.get("brokers") or []),
                     key=lambda b: b["id"])
    partition = ((quorum.get("topics") or [{}])[0].get("partitions") or [{}])[0]
    high_watermark = partition.get("high_watermark")
    quorum_view = {
        "leader_id": partition.get("leader_id"),
        "leader_epoch": partition.get("leader_epoch"),
        "high_watermark": high_watermark,
        "voters": [_replica(v, high_watermark) for v in partition.get("current_voters") or []],
        "observers": [_replica(o, high_watermark) for o in partition.get("observers") or []],
    }
    under, offline, mismatched, count = [], [], [], 0
    leaders = {str(b["id"]): 0 for b in brokers}
    for topic in topics:
        for part in topic.get("partitions") or []:
            count += 1
            entry = {"topic": topic["name"], "partition": part["partition_index"],
                     "replicas": part["replica_nodes"], "isr": part["isr_nodes"], "leader": part["leader_id"]}
            if part["leader_id"] is None or part["leader_id"] < 0:
                offline.append(entry)
            else:
                leaders[str(part["leader_id"])] = leaders.get(str(part["leader_id"]), 0) + 1
                if part["replica_nodes"] and part["leader_id"] != part["replica_nodes"][0]:
                    mismatched.append(dict(entry, preferred=part["replica_nodes"][0]))
            if len(part["isr_nodes"]) < len(part["replica_nodes"]):
                under.append(entry)

    problems = []
    by_id = {b["id"]: b for b in brokers}
    for node in expected_brokers:
        if node not in by_id:
            problems.append(f"broker {node} is not registered")
        elif by_id[node]["fenced"]:
            problems.append(f"broker {node} is fenced")
    if quorum_view["leader_id"] is None or quorum_view["leader_id"] < 0:
        problems.append("the metadata quorum has no leader")
    voters = {v["id"]: v for v in quorum_view["voters"]}
    for node in expected_voters:
        if node not in voters:
            problems.append(f"node {node} is not a quorum voter")
        elif voters[node]["lag"] is None or voters[node]["lag"] > max_quorum_lag:
            problems.append(f"quorum voter {node} lags by {voters[node]['lag']} records (max {max_quorum_lag})")
    if under:
        problems.append(f"{len(under)} under-replicated partition(s): "
                        + ", ".join(f"{u['topic']}-{u['partition']}" for u in under[:10]))
    if offline:
        problems.append(f"{len(offline)} offline partition(s): "
                        + ", ".join(f"{o['topic']}-{o['partition']}" for o in offline[:10]))
    return {
        "healthy": not problems,
        "problems": problems,
        "cluster_id": cluster.get("cluster_id"),
        "controller_id": quorum_view["leader_id"],
        "brokers": brokers,
        "quorum": quorum_view,
        "topics": len(topics),
        "partitions": count,
        "under_replicated_partitions": under,
        "offline_partitions": offline,
        "leaders_per_broker": leaders,
        "preferred_leader_mismatches": mismatched,
    }


def main():
    argument_spec = dict(
        expected_brokers=dict(type="list", elements="int", default=[]),
        expected_voters=dict(type="list", elements="int", default=[]),
        max_quorum_lag=dict(type="int", default=100),
        check_logins=dict(type="bool", default=False),
    )
    argument_spec.update(KAFKA_CONNECTION_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    client = connect(module)
    try:
        cluster = client.describe_cluster()
        quorum = client.describe_metadata_quorum()
        topics = client.describe_topics()
    except Exception as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_cluster_info: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    close_quietly(client)
    result = assess(cluster, quorum, topics, p["expected_brokers"], p["expected_voters"], p["max_quorum_lag"])
    result["login_failures"] = check_broker_logins(p, result["brokers"]) if p["check_logins"] else []
    if result["login_failures"]:
        result["problems"] = result["problems"] + [
            f"broker {f['id']} ({f['address']}) rejects the login of {p['sasl_username']!r}: {f['error']}"
            for f in result["login_failures"]]
        result["healthy"] = False
    module.exit_json(changed=False, **result)


def check_broker_logins(params, brokers):
    """Log in on each registered, unfenced broker alone; the ones that refuse, with the reason."""
    failures = []
    for broker in brokers:
        if broker["fenced"] or not broker.get("host"):
            continue
        address = f"{broker['host']}:{broker['port']}"
        single = dict(params, bootstrap_servers=[address])
        error = try_login(single, params["sasl_username"], params["sasl_password"])
        if error is not None:
            failures.append({"id": broker["id"], "address": address,
                             "error": describe_exception(error, single)})
    return failures


if __name__ == "__main__":
    main()
