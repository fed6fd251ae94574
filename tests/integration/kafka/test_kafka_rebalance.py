"""kafka_rebalance against a real (single-node) Kafka: a throttle an earlier run left is found and removed, a
balanced cluster is left alone, an impossible drain is refused. The moves themselves need several brokers: the
Molecule scale scenario (tests/lab/scale) covers them."""
from __future__ import annotations

import time
import uuid

from conftest import run_module

NOTHING = "Nothing was changed."


def throttles(admin, topic):
    from kafka.admin import ConfigResource

    described = admin.describe_configs([ConfigResource("BROKER", "1"), ConfigResource("TOPIC", topic)])
    return sorted(name for kind in ("broker", "topic") for entries in (described.get(kind) or {}).values()
                  for name, entry in entries.items()
                  if "replication.throttled" in name and str(entry.get("config_source", "")).startswith("DYNAMIC"))


def settled(read, expected, seconds=15):
    """read() once it equals expected (configs and new topics reach the broker's metadata a moment later), else its
    last value."""
    deadline = time.monotonic() + seconds
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.3)
    return value


def test_a_left_throttle_is_removed_once_and_a_balanced_cluster_is_left_alone(kafka_server, admin):
    from kafka.admin import AlterConfigOp, ConfigResource, NewTopic

    topic = f"it-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(topic, 2, 1)])
    assert settled(lambda: topic in admin.list_topics(), True)
    # What a run that timed out leaves: the broker rates and the topic's throttled replicas.
    admin.alter_configs([
        ConfigResource("BROKER", "1", configs={"leader.replication.throttled.rate": (AlterConfigOp.SET, "1048576"),
                                               "follower.replication.throttled.rate": (AlterConfigOp.SET, "1048576")}),
        ConfigResource("TOPIC", topic, configs={"leader.replication.throttled.replicas": (AlterConfigOp.SET, "0:1")}),
    ], raise_on_unknown=False, incremental=True)
    left = ["follower.replication.throttled.rate", "leader.replication.throttled.rate",
            "leader.replication.throttled.replicas"]
    assert settled(lambda: throttles(admin, topic), left) == left
    args = dict(kafka_server.connection_args(), topics=[topic])

    checked = run_module("kafka_rebalance", args, check=True)
    assert checked["changed"] is True and checked["throttle_removed"] is True and checked["moves"] == [], checked
    assert throttles(admin, topic) == left

    done = run_module("kafka_rebalance", args)
    assert done["changed"] is True and done["throttle_removed"] is True and done["moves"] == [], done
    assert settled(lambda: throttles(admin, topic), []) == []

    again = run_module("kafka_rebalance", args)
    assert again["changed"] is False and again["moves"] == [] and again["elected"] == [], again
    assert again["replicas_after"] == {"1": 2}


def test_draining_the_only_broker_is_refused(kafka_server):
    result = run_module("kafka_rebalance", dict(kafka_server.connection_args(), drain=[1]))
    assert result["failed"] and "no broker would be left" in result["msg"] and NOTHING in result["msg"], result
