"""The kafka role's settings check (filter kafka_settings): the lab's settings pass, and each wrong setting is named
with what was given, every problem at once."""
from __future__ import annotations

import pytest

from ansible_collections.isobar.pipeline.plugins.filter.kafka_settings import SETTINGS, kafka_settings_problems

HOSTS = ["kafka1", "kafka2", "kafka3"]
PATTERN = "^[A-Za-z0-9_-]{21}[AQgw]$"


def lab_settings(**changes):
    settings = {
        "host": "kafka1", "hosts": list(HOSTS), "group": "kafka_brokers", "controller_minimum": 3,
        "replication_factor": 3, "min_insync_replicas": 2, "num_partitions": 3, "client_port": 9092,
        "controller_port": 9093, "replication_port": 9094, "heap_size": "512m", "client_networks": ["10.89.0.0/24"],
        "release": "4.3", "metadata_version_level": 30, "sasl_mechanisms": ["SCRAM-SHA-512"], "cluster_id": "",
        "cluster_id_vault_file": "/srv/vault_generated.yml", "cluster_id_pattern": PATTERN,
        "acls": [{"principal": "User:telegraf", "acls": []}],
    }
    settings.update(changes)
    return settings


def lab_hostvars(**overrides):
    variables = {host: {"kafka_node_id": index + 1, "isobar_address": f"10.89.0.{index + 10}"}
                 for index, host in enumerate(HOSTS)}
    for host, values in overrides.items():
        variables[host] = values
    return variables


def test_the_lab_settings_pass():
    assert kafka_settings_problems(lab_settings(), lab_hostvars()) == []


def test_every_setting_the_role_passes_is_known():
    with pytest.raises(ValueError, match=r"missing settings \['acls'\]"):
        kafka_settings_problems({key: None for key in SETTINGS if key != "acls"}, lab_hostvars())


@pytest.mark.parametrize("hostvars, expected", [
    (lab_hostvars(kafka3={"kafka_node_id": 2, "isobar_address": "10.89.0.12"}), "[1, 2, 2]"),
    (lab_hostvars(kafka3={"isobar_address": "10.89.0.12"}), "[1, 2, None]"),
    (lab_hostvars(kafka3={"kafka_node_id": "three", "isobar_address": "10.89.0.12"}), "[1, 2, 'three']"),
    (lab_hostvars(kafka3={"kafka_node_id": 3}), "[1, 2, 3]"),
])
def test_node_ids_and_addresses(hostvars, expected):
    assert kafka_settings_problems(lab_settings(), hostvars) == [
        "every host of group kafka_brokers needs a unique integer kafka_node_id and an isobar_address "
        f"(got node ids {expected} for ['kafka1', 'kafka2', 'kafka3'])"]


def test_a_host_outside_the_group_is_refused():
    problems = kafka_settings_problems(lab_settings(host="influxdb"), lab_hostvars())
    assert problems and problems[0].startswith("every host of group kafka_brokers needs")


def test_an_even_quorum_and_no_combined_node():
    even = lab_hostvars(kafka3={"kafka_node_id": 3, "isobar_address": "10.89.0.12", "kafka_process_roles": ["broker"]})
    assert kafka_settings_problems(lab_settings(controller_minimum=1, replication_factor=2, min_insync_replicas=1),
                                   even) == [
        "the node roles (kafka_process_roles) cannot run: the metadata quorum needs an odd number of controllers, "
        "got 2: ['kafka1', 'kafka2']"]
    split = lab_hostvars(**{host: {"kafka_node_id": index + 1, "isobar_address": f"10.89.0.{index + 10}",
                                   "kafka_process_roles": ["controller"] if index == 0 else ["broker"]}
                            for index, host in enumerate(HOSTS)})
    problems = kafka_settings_problems(lab_settings(controller_minimum=1, replication_factor=2, min_insync_replicas=1),
                                       split)
    assert problems == ["the node roles (kafka_process_roles) cannot run: no node is both broker and controller: the "
                        "role authorizes broker-only nodes through a combined node, so dedicated controllers with "
                        "broker-only nodes alone are not supported yet"]


@pytest.mark.parametrize("changes", [
    dict(replication_factor=4), dict(replication_factor=0), dict(min_insync_replicas=3), dict(min_insync_replicas=0),
    dict(num_partitions=0), dict(replication_factor="three"),
])
def test_replication_that_does_not_fit(changes):
    problems = kafka_settings_problems(lab_settings(**changes), lab_hostvars())
    assert any(problem.startswith("kafka_default_replication_factor (") and "between 1 and the 3 brokers" in problem
               for problem in problems), problems


def test_one_replica_needs_one_in_sync():
    assert kafka_settings_problems(lab_settings(replication_factor=1, min_insync_replicas=1), lab_hostvars()) == []


def test_ports_heap_and_networks_are_all_reported():
    problems = kafka_settings_problems(
        lab_settings(replication_port=9092, heap_size="512 MB", client_networks=["10.89.0.0/24", "lab network"]),
        lab_hostvars())
    assert problems == [
        "kafka_client_port, kafka_controller_port and kafka_replication_port must be three different ports "
        "(got 9092/9093/9092)",
        "kafka_heap_size must be like 512m or 2g (got 512 MB)",
        "kafka_client_networks must be a non-empty list of addresses or CIDRs (got ['10.89.0.0/24', 'lab network'])"]
    assert kafka_settings_problems(lab_settings(client_networks=[]), lab_hostvars()) == [
        "kafka_client_networks must be a non-empty list of addresses or CIDRs (got [])"]


def test_an_unknown_release():
    assert kafka_settings_problems(lab_settings(release="5.0", metadata_version_level=0), lab_hostvars()) == [
        "Kafka 5.0: its metadata.version level is not in kafka_metadata_versions (vars/main.yml); add it "
        "(FeatureCommand version-mapping --release-version 5.0 prints it)"]


@pytest.mark.parametrize("mechanisms", [[], ["PLAIN"], ["SCRAM-SHA-512", "GSSAPI"]])
def test_sasl_mechanisms(mechanisms):
    assert kafka_settings_problems(lab_settings(sasl_mechanisms=mechanisms), lab_hostvars()) == [
        f"kafka_sasl_enabled_mechanisms must list SCRAM-SHA-512 and/or SCRAM-SHA-256 (got {mechanisms})"]


def test_cluster_id():
    assert kafka_settings_problems(lab_settings(cluster_id="MkU3OEVBNTcwNTJENDM2Qg"), lab_hostvars()) == []
    assert "kafka_cluster_id must be a base64url UUID" in kafka_settings_problems(
        lab_settings(cluster_id="my-cluster"), lab_hostvars())[0]
    assert "the role needs one of them" in kafka_settings_problems(
        lab_settings(cluster_id_vault_file=""), lab_hostvars())[0]


@pytest.mark.parametrize("acls", [[{"principal": "telegraf", "acls": []}], [{"principal": "User:telegraf"}],
                                  [{"acls": []}], ["User:telegraf"], [{"principal": "User:a,b", "acls": []}]])
def test_acl_declarations(acls):
    assert kafka_settings_problems(lab_settings(acls=acls), lab_hostvars()) == [
        "each kafka_acls entry needs a principal 'User:<name>' and a list acls (see defaults/main.yml)"]
