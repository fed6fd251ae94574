#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Ansible module: balance partition replicas and leaders over a KRaft cluster's brokers, or drain brokers."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_rebalance
short_description: Balance Kafka partition replicas and leaders over the brokers, under a replication throttle
description:
  - Reads every partition's replicas and the registered brokers, plans an assignment in which each broker holds the
    same number of replicas within one and is the preferred leader of the same number of partitions within one, with
    as few copies as possible, and applies it with the Kafka AlterPartitionReassignments API.
  - Data moves run under a replication throttle (the broker and topic configs C(kafka-reassign-partitions --throttle)
    sets); the module waits until every reassignment has finished, then removes the throttle and elects the
    preferred leaders. A run that times out leaves the throttle on (the copy continues, throttled) and fails; running
    it again waits for the rest, then removes the throttle and elects.
  - With O(drain), the named brokers are emptied (before they are stopped and removed). Refused, with nothing
    changed, when the remaining brokers cannot hold a topic's replication factor, when a replica sits on a broker
    that is neither registered nor drained, or when a registered broker is fenced.
  - A balanced cluster with preferred leaders in place and no throttle left gives C(changed=false), so a second run
    moves nothing.
version_added: "1.1.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.kafka_connection
  - isobar.pipeline.attributes
options:
  drain:
    description: Node ids whose replicas (and leadership) move to the other brokers.
    type: list
    elements: int
    default: []
  topics:
    description: Topics to balance; by default every topic, internal ones included (a drained broker must hold none).
    type: list
    elements: str
  throttle:
    description:
      - Replication throttle for the copy, in bytes per second per broker (leader and follower side); V(0) copies
        unthrottled.
    type: int
    default: 10485760
  timeout:
    description: Seconds to wait for the reassignments to finish.
    type: int
    default: 600
  elect_leaders:
    description: Elect the preferred leaders afterwards (also when only the replica order changed).
    type: bool
    default: true
  sasl_username:
    description: SCRAM user to authenticate as (needs ALTER on the cluster and topics, e.g. a super user).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Spread the partitions over the grown cluster (a second run moves nothing)
  isobar.pipeline.kafka_rebalance:
    throttle: 20971520
  module_defaults:
    group/isobar.pipeline.kafka: "{{ kafka_admin_connection }}"

- name: Empty broker 4 before it is stopped and removed
  isobar.pipeline.kafka_rebalance:
    drain: [4]
  register: kafka_drain
"""

RETURN = r"""
moves:
  description: Partitions whose replica list changed (or would change in check mode), with C(before) and C(after).
  returned: always
  type: list
  elements: dict
  sample: [{"topic": "weather", "partition": 0, "before": [1, 2, 3], "after": [4, 2, 3], "copies": true}]
copies:
  description: Number of replicas copied to a broker that did not hold them.
  returned: always
  type: int
bytes_moved:
  description: Size on disk of the copied replicas (each copied partition's size on its current leader).
  returned: always
  type: int
replicas_before:
  description: Replicas per broker id (as a string) before the run.
  returned: always
  type: dict
replicas_after:
  description: Replicas per broker id after the run (planned, in check mode).
  returned: always
  type: dict
leaders_before:
  description: Partitions actually led per broker id before the run.
  returned: always
  type: dict
leaders_after:
  description: Preferred leaders per broker id after the run (the actual leaders once elected).
  returned: always
  type: dict
elected:
  description: Partitions whose preferred leader was elected (C(topic-partition)).
  returned: always
  type: list
  elements: str
throttle_removed:
  description: Whether throttle configs (of this run or one that timed out before) were removed.
  returned: always
  type: bool
waited_seconds:
  description: Seconds spent waiting for the reassignments.
  returned: always
  type: float
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_balance import (
    BalanceError,
    plan,
    replicas_per_broker,
    throttled_replicas,
)
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import (
    KAFKA_CONNECTION_ARGS,
    NOTHING_CHANGED,
    KafkaModuleError,
    close_quietly,
    connect,
)

try:
    from kafka import TopicPartition
    from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType
    from kafka.errors import EligibleLeadersNotAvailableError, PreferredLeaderNotAvailableError
    NOT_YET_ELECTABLE = (EligibleLeadersNotAvailableError, PreferredLeaderNotAvailableError)
except ImportError:  # reported by connect()
    NOT_YET_ELECTABLE = ()

# Upper bound on waiting for the brokers' metadata to show the new replicas led by their preferred leader.
LEADER_SETTLE_SECONDS = 120
BROKER_THROTTLES = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
TOPIC_THROTTLES = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")


def validate_params(params):
    """Problems with the options, before anything is contacted."""
    problems = []
    if any(node < 0 for node in params["drain"]):
        problems.append(f"drain must list node ids (>= 0), got {params['drain']}")
    if params["throttle"] < 0:
        problems.append(f"throttle must be >= 0 bytes/s, got {params['throttle']}")
    if params["timeout"] <= 0:
        problems.append(f"timeout must be > 0 seconds, got {params['timeout']}")
    if params["topics"] is not None and not params["topics"]:
        problems.append("topics, when given, must name at least one topic")
    return problems


def read_assignment(client, topics):
    """{(topic, partition): replicas}, {(topic, partition): leader} of the chosen topics (all by default)."""
    described = client.describe_topics(topics)
    assignment, leaders = {}, {}
    for topic in described:
        if topic.get("error_code"):
            raise KafkaModuleError(f"topic {topic.get('name')!r} cannot be described (error code "
                                   f"{topic['error_code']}). {NOTHING_CHANGED}")
        for part in topic.get("partitions") or []:
            key = (topic["name"], part["partition_index"])
            assignment[key] = list(part["replica_nodes"])
            leaders[key] = part["leader_id"]
    return assignment, leaders


def actual_leaders(leaders, brokers):
    counts = {str(b): 0 for b in brokers}
    for leader in leaders.values():
        if leader is not None and leader >= 0:
            counts[str(leader)] = counts.get(str(leader), 0) + 1
    return dict(sorted(counts.items(), key=lambda item: int(item[0])))


def keyed(counts):
    return {str(broker): count for broker, count in sorted(counts.items())}


def throttle_configs(client, brokers, topics):
    """The throttle configs set now: {("broker"|"topic", name): [config names]}."""
    # One request: kafka-python sends each broker its own resource and the topics together.
    described = client.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(b)) for b in brokers]
                                        + [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    found = {}
    for kind, names in (("broker", BROKER_THROTTLES), ("topic", TOPIC_THROTTLES)):
        for name, entries in sorted((described.get(kind) or {}).items()):
            dynamic = [config for config in names if config in entries
                       and str(entries[config].get("config_source", "")).startswith("DYNAMIC")
                       and entries[config].get("value") not in (None, "")]
            if dynamic:
                found[kind, name] = dynamic
    return found


def _check(response, what):
    for kind, results in (response or {}).items():
        for name, result in results.items():
            if result != "OK":
                raise KafkaModuleError(f"{what} on {kind} {name} failed: {result}")


def set_throttle(client, moves, rate):
    brokers = sorted({b for before, after in moves.values() for b in set(before) | set(after)})
    resources = [ConfigResource(ConfigResourceType.BROKER, str(b),
                                configs={name: (AlterConfigOp.SET, str(rate)) for name in BROKER_THROTTLES})
                 for b in brokers]
    resources += [ConfigResource(ConfigResourceType.TOPIC, topic,
                                 configs={name: (AlterConfigOp.SET, value) for name, value in configs.items() if value})
                  for topic, configs in throttled_replicas(moves).items()]
    _check(client.alter_configs(resources, raise_on_unknown=False, incremental=True), "setting the throttle")


def remove_throttle(client, found):
    resources = [ConfigResource(ConfigResourceType.BROKER if kind == "broker" else ConfigResourceType.TOPIC, name,
                                configs={config: (AlterConfigOp.DELETE, None) for config in configs})
                 for (kind, name), configs in sorted(found.items())]
    if resources:
        _check(client.alter_configs(resources, raise_on_unknown=False, incremental=True), "removing the throttle")


def wait_for_reassignments(client, keys, timeout):
    """Seconds waited until none of keys (or, with keys None, no partition at all) is being reassigned."""
    started = time.monotonic()
    while True:
        ongoing = client.list_partition_reassignments()
        pending = [tp for tp in ongoing if keys is None or (tp.topic, tp.partition) in keys]
        if not pending:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            names = ", ".join(f"{tp.topic}-{tp.partition}" for tp in sorted(pending)[:10])
            raise KafkaModuleError(
                f"{len(pending)} reassignment(s) still running after {timeout} s ({names}); the throttle stays on "
                "while they copy. Run the module again to wait for them: it removes the throttle and elects leaders "
                "once they are done.")
        time.sleep(1)


def partition_sizes(client, keys):
    """{(topic, partition): largest size any replica reports}, for the bytes the copy moves."""
    by_topic = {}
    for topic, partition in keys:
        by_topic.setdefault(topic, []).append(partition)
    sizes = {}
    if not by_topic:
        return sizes
    for broker in client.describe_log_dirs(topic_partitions=by_topic):
        for log_dir in broker.get("log_dirs") or []:
            for topic in log_dir.get("topics") or []:
                for part in topic.get("partitions") or []:
                    key = (topic.get("name"), part.get("partition_index"))
                    sizes[key] = max(sizes.get(key, 0), int(part.get("partition_size") or 0))
    return sizes


def elect(client, keys):
    """Preferred-leader election of keys ({(topic, partition)}); partitions already led by it are not an error."""
    topic_partitions = {}
    for topic, partition in sorted(keys):
        topic_partitions.setdefault(topic, []).append(partition)
    client.elect_leaders(0, topic_partitions=topic_partitions)


def settle_leaders(client, target, topics, timeout, poll=0.5):
    """Elect target's first replica as leader wherever it is not, until the metadata shows it everywhere.

    Returns (elected keys, leaders, assignment) as last read. Right after the controller reports the reassignments
    done, a broker's metadata can still show a partition's old replicas: an election decided on that view elects
    nothing, so a partition counts as settled only once its replicas read as target's and its leader as their first.
    """
    started = time.monotonic()
    elected = set()
    while True:
        current, leaders = read_assignment(client, topics)
        # A partition missing from the view was deleted meanwhile: nothing to settle for it.
        lagging = sorted(key for key, replicas in target.items() if key in current and current[key] != replicas)
        unled = {key for key, replicas in target.items()
                 if current.get(key) == replicas and leaders.get(key) != replicas[0]}
        if not lagging and not unled:
            return sorted(elected), leaders, current
        if time.monotonic() - started > timeout:
            names = ", ".join(f"{t}-{p}" for t, p in (lagging + sorted(unled))[:10])
            raise KafkaModuleError(
                f"after {timeout} s, {len(lagging)} partition(s) do not show their new replicas yet and {len(unled)} "
                f"are not led by their preferred replica ({names}); the reassignments are done and the throttle is "
                "removed. Run the module again to elect the leaders.")
        if unled:
            try:
                elect(client, unled)
            except NOT_YET_ELECTABLE:
                pass  # the preferred replica is not in sync yet: the next round asks again
            elected |= unled
        time.sleep(poll)


def run(module, client):
    params = module.params
    cluster = client.describe_cluster()
    registered = sorted(b["broker_id"] for b in cluster.get("brokers") or [])
    # A drained broker may be down already (a removal that stopped it, then failed): its replicas still move.
    fenced = sorted(b["broker_id"] for b in cluster.get("brokers") or []
                    if b.get("is_fenced") and b["broker_id"] not in params["drain"])
    if fenced:
        raise KafkaModuleError(f"broker(s) {fenced} are fenced: bring every broker up before a rebalance. "
                               f"{NOTHING_CHANGED}")
    # An earlier run that timed out: let its copies finish first (they hold the throttle this run removes).
    waited = 0.0 if module.check_mode else wait_for_reassignments(client, None, params["timeout"])
    assignment, leaders = read_assignment(client, params["topics"])
    try:
        result = plan(assignment, registered, params["drain"])
    except BalanceError as exc:
        raise KafkaModuleError(f"{exc} {NOTHING_CHANGED}")
    if result["absent"]:
        module.warn(f"drain names broker(s) {result['absent']}, which are neither registered nor hold any replica: "
                    "nothing to move for them (already removed, or a wrong id).")
    moves, data_moves = result["moves"], result["data_moves"]
    new = result["assignment"]
    to_elect = {key for key, replicas in new.items() if leaders.get(key) != replicas[0]}
    topics = sorted({topic for topic, dummy in assignment})
    throttles = throttle_configs(client, registered, topics)
    sizes = partition_sizes(client, data_moves)
    copies = sum(len(set(after) - set(before)) for before, after in data_moves.values())
    report = {
        "moves": [{"topic": topic, "partition": partition, "before": before, "after": after,
                   "copies": (topic, partition) in data_moves}
                  for (topic, partition), (before, after) in moves.items()],
        "copies": copies,
        "bytes_moved": sum(sizes.get(key, 0) * len(set(after) - set(before))
                           for key, (before, after) in data_moves.items()),
        "replicas_before": keyed(result["replicas_before"]),
        "replicas_after": keyed(result["replicas_after"]),
        "leaders_before": actual_leaders(leaders, registered),
        "leaders_after": keyed(result["leaders_after"]),
        "elected": [],
        "throttle_removed": False,
        "waited_seconds": round(waited, 1),
    }
    changed = bool(moves or throttles or (params["elect_leaders"] and to_elect))
    if module._diff:
        report["diff"] = {"before": {"replicas_per_broker": report["replicas_before"],
                                     "leaders_per_broker": report["leaders_before"]},
                          "after": {"replicas_per_broker": report["replicas_after"],
                                    "leaders_per_broker": report["leaders_after"]}}
    if module.check_mode or not changed:
        if module.check_mode and params["elect_leaders"]:
            report["elected"] = [f"{t}-{p}" for t, p in sorted(to_elect)]
        report["throttle_removed"] = bool(throttles) and module.check_mode
        return changed, report
    if data_moves and params["throttle"] > 0:
        set_throttle(client, data_moves, params["throttle"])
    if moves:
        answer = client.alter_partition_reassignments(
            {TopicPartition(topic, partition): after for (topic, partition), (dummy, after) in moves.items()})
        refused = {f"{tp.topic}-{tp.partition}": error.__name__ for tp, error in answer.items() if error}
        if refused:
            raise KafkaModuleError(f"the controller refused the reassignment of {refused}; the partitions not listed "
                                   "were reassigned. Run again once the cause is fixed.")
        report["waited_seconds"] = round(waited + wait_for_reassignments(client, set(moves), params["timeout"]), 1)
    # Read again: this run's own throttle, and one an earlier, timed-out run left, go together.
    remove_throttle(client, throttle_configs(client, registered, topics))
    report["throttle_removed"] = bool(throttles or (data_moves and params["throttle"] > 0))
    final = new
    if params["elect_leaders"]:
        elected, leaders, final = settle_leaders(client, new, params["topics"],
                                                 min(params["timeout"], LEADER_SETTLE_SECONDS))
        report["elected"] = [f"{topic}-{partition}" for topic, partition in elected]
        report["leaders_after"] = actual_leaders(leaders, [b for b in registered if b not in params["drain"]])
    report["replicas_after"] = keyed(replicas_per_broker(final, registered))
    return True, report


def main():
    argument_spec = dict(
        drain=dict(type="list", elements="int", default=[]),
        topics=dict(type="list", elements="str"),
        throttle=dict(type="int", default=10485760),
        timeout=dict(type="int", default=600),
        elect_leaders=dict(type="bool", default=True),
    )
    argument_spec.update(KAFKA_CONNECTION_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    problems = validate_params(module.params)
    if problems:
        module.fail_json(msg="Invalid options: " + "; ".join(problems) + ". " + NOTHING_CHANGED)
    client = connect(module)
    try:
        changed, report = run(module, client)
    except KafkaModuleError as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_rebalance: {exc}")
    except Exception as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_rebalance: {type(exc).__name__}: {exc}", exception=traceback.format_exc())
    close_quietly(client)
    module.exit_json(changed=changed, **report)


if __name__ == "__main__":
    main()
