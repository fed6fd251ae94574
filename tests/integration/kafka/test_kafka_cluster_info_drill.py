"""kafka_cluster_info's drill facts against a real Kafka (tests/fixtures/kafka_server.py): leaders per broker,
preferred-leader mismatches, and check_logins (every broker must accept the module's login)."""
from __future__ import annotations

import uuid

from conftest import run_module


def info(kafka_server, **args):
    return run_module("kafka_cluster_info", dict(kafka_server.connection_args(), **args))


def test_leaders_per_broker_and_no_mismatch_on_one_node(kafka_server):
    topic = f"it-{uuid.uuid4().hex[:10]}"
    created = run_module("kafka_topic", dict(kafka_server.connection_args(), name=topic, partitions=3, replication_factor=1))
    assert created["changed"], created
    try:
        result = info(kafka_server, expected_brokers=[1], expected_voters=[1])
        assert result["healthy"], result["problems"]
        assert result["leaders_per_broker"]["1"] >= 3  # the node leads every partition, internal topics included
        assert result["preferred_leader_mismatches"] == []
        assert result["login_failures"] == []  # not asked
    finally:
        run_module("kafka_topic", dict(kafka_server.connection_args(), name=topic, state="absent"))


def test_check_logins_on_a_healthy_node(kafka_server):
    result = info(kafka_server, expected_brokers=[1], expected_voters=[1], check_logins=True)
    assert result["healthy"] and result["login_failures"] == [], result["problems"]

