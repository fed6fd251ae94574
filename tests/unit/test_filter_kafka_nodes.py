"""Kafka node roles (filter kafka_nodes): which hosts are brokers and controllers, and which layouts are refused."""
from __future__ import annotations

import pytest

from ansible_collections.isobar.pipeline.plugins.filter.kafka_nodes import (
    LayoutError, kafka_layout_problems, kafka_node_roles, kafka_nodes_with)

HOSTS = ["kafka1", "kafka2", "kafka3", "kafka4"]


def hostvars(**roles):
    return {host: ({"kafka_process_roles": roles[host]} if host in roles else {}) for host in HOSTS}


def test_roles_default_to_both_and_come_in_kafkas_order():
    assert kafka_node_roles(None) == ["broker", "controller"]
    assert kafka_node_roles(["Controller", "broker"]) == ["broker", "controller"]
    assert kafka_node_roles("broker") == ["broker"]


@pytest.mark.parametrize("value", [[], ["broker", "broker"], ["zookeeper"], ["broker", "voter"]])
def test_anything_else_is_refused(value):
    with pytest.raises(LayoutError, match="kafka_process_roles must list 'broker' and/or 'controller'"):
        kafka_node_roles(value)


def test_a_broker_only_node_grows_the_brokers_not_the_quorum():
    variables = hostvars(kafka4=["broker"])
    assert kafka_nodes_with(HOSTS, variables, "broker") == HOSTS
    assert kafka_nodes_with(HOSTS, variables, "controller") == HOSTS[:3]
    assert kafka_layout_problems(HOSTS, variables, 3, 3) == []


def test_an_even_quorum_is_refused():
    problems = kafka_layout_problems(HOSTS, hostvars(), 3, 3)
    assert problems == ["the metadata quorum needs an odd number of controllers, got 4: "
                        "['kafka1', 'kafka2', 'kafka3', 'kafka4']"]


def test_too_few_controllers_or_brokers_are_refused():
    variables = hostvars(kafka1=["controller"], kafka2=["broker"], kafka3=["broker"], kafka4=["broker"])
    assert kafka_layout_problems(HOSTS, variables, 3, 3) == [
        "at least 3 controllers are needed (kafka_controller_minimum), got 1: ['kafka1']"]
    assert kafka_layout_problems(HOSTS, variables, 1, 3) == []
    dedicated = hostvars(kafka1=["controller"], kafka2=["controller"], kafka3=["controller"], kafka4=["broker"])
    assert kafka_layout_problems(HOSTS, dedicated, 3, 3) == [
        "kafka_default_replication_factor 3 needs as many brokers, got 1: ['kafka4']"]


def test_a_wrong_value_is_named_with_its_host():
    assert kafka_layout_problems(HOSTS, hostvars(kafka2=["leader"]), 3, 1) == [
        "kafka2: kafka_process_roles must list 'broker' and/or 'controller' once each, got ['leader']"]
