# Copyright: Isobar contributors
# Apache-2.0
"""What in the kafka role's settings stops a cluster from being set up (pure Python: Jinja only renders).

The role's preflight asks this once per host and fails with every problem found, instead of one assert task per
family of settings: on a converged cluster each task costs the play a round of templating on every host, and the
preflight runs on every deploy. Passwords are not checked here (their task hides its output)."""

from __future__ import annotations

import re

from ansible_collections.isobar.pipeline.plugins.filter.kafka_nodes import (
    LayoutError, kafka_layout_problems, kafka_nodes_with)

SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
HEAP_PATTERN = re.compile(r"^[0-9]+[kKmMgG]$")
NETWORK_PATTERN = re.compile(r"^[0-9a-fA-F:.]+(/[0-9]+)?$")
PRINCIPAL_PATTERN = re.compile(r"^User:[^\s;,]+$")
NODE_ID_PATTERN = re.compile(r"^[0-9]+$")

# Keys of the settings mapping the role passes (tasks/preflight.yml), each the value of the kafka_* variable named.
SETTINGS = ("host", "hosts", "group", "controller_minimum", "replication_factor", "min_insync_replicas",
            "num_partitions", "client_port", "controller_port", "replication_port", "heap_size", "client_networks",
            "release", "metadata_version_level", "sasl_mechanisms", "cluster_id", "cluster_id_vault_file",
            "cluster_id_pattern", "acls")


def _int(value):
    """The value as an int, or None when it is not one (Jinja's int filter would say 0)."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _layout(settings, hosts, variables, brokers, controllers):
    node_ids = [variables[host].get("kafka_node_id") for host in hosts]
    integers = all(node_id is not None and NODE_ID_PATTERN.match(str(node_id)) for node_id in node_ids)
    problems = []
    if (settings["host"] not in hosts or not integers or len({int(str(node_id)) for node_id in node_ids}) != len(hosts)
            or any(variables[host].get("isobar_address") is None for host in hosts)):
        problems.append(f"every host of group {settings['group']} needs a unique integer kafka_node_id and an "
                        f"isobar_address (got node ids {node_ids} for {hosts})")
    roles_problems = kafka_layout_problems(hosts, variables, settings["controller_minimum"],
                                           _int(settings["replication_factor"]) or 1)
    problems += [f"the node roles (kafka_process_roles) cannot run: {problem}" for problem in roles_problems]
    if not roles_problems and not [host for host in brokers if host in controllers]:
        problems.append("the node roles (kafka_process_roles) cannot run: no node is both broker and controller: "
                        "the role authorizes broker-only nodes through a combined node, so dedicated controllers "
                        "with broker-only nodes alone are not supported yet")
    return problems


def _replication(settings, brokers):
    factor = _int(settings["replication_factor"])
    min_isr = _int(settings["min_insync_replicas"])
    partitions = _int(settings["num_partitions"])
    fits = (factor is not None and 1 <= factor <= brokers and min_isr is not None and min_isr >= 1
            and (min_isr < factor or factor == 1) and partitions is not None and partitions >= 1)
    if fits:
        return []
    return [f"kafka_default_replication_factor ({settings['replication_factor']}) must be between 1 and the {brokers} "
            f"brokers, kafka_min_insync_replicas ({settings['min_insync_replicas']}) below it, so that one broker can "
            f"restart without refusing acks=all writes, and kafka_num_partitions ({settings['num_partitions']}) at "
            "least 1"]


def _ports_heap_networks(settings):
    ports = [_int(settings[key]) for key in ("client_port", "controller_port", "replication_port")]
    networks = settings["client_networks"]
    networks_ok = (isinstance(networks, (list, tuple)) and len(networks) > 0
                   and all(NETWORK_PATTERN.match(str(network)) for network in networks))
    problems = []
    if None in ports or len(set(ports)) != 3:
        problems.append("kafka_client_port, kafka_controller_port and kafka_replication_port must be three different "
                        f"ports (got {settings['client_port']}/{settings['controller_port']}/"
                        f"{settings['replication_port']})")
    if not HEAP_PATTERN.match(str(settings["heap_size"])):
        problems.append(f"kafka_heap_size must be like 512m or 2g (got {settings['heap_size']})")
    if not networks_ok:
        problems.append(f"kafka_client_networks must be a non-empty list of addresses or CIDRs (got {networks})")
    return problems


def _release(settings):
    if (_int(settings["metadata_version_level"]) or 0) > 0:
        return []
    return [f"Kafka {settings['release']}: its metadata.version level is not in kafka_metadata_versions (vars/main.yml);"
            f" add it (FeatureCommand version-mapping --release-version {settings['release']} prints it)"]


def _sasl(settings):
    mechanisms = settings["sasl_mechanisms"] or []
    if mechanisms and all(mechanism in SASL_MECHANISMS for mechanism in mechanisms):
        return []
    return [f"kafka_sasl_enabled_mechanisms must list SCRAM-SHA-512 and/or SCRAM-SHA-256 (got {mechanisms})"]


def _cluster_id(settings):
    cluster_id = str(settings["cluster_id"] or "")
    if cluster_id and not re.match(settings["cluster_id_pattern"], cluster_id):
        return ["kafka_cluster_id must be a base64url UUID of 22 characters as 'StorageTool random-uuid' prints it "
                "(a hand-typed one is normalised by Kafka and then no longer matches)"]
    if not cluster_id and not settings["cluster_id_vault_file"]:
        return ["kafka_cluster_id is empty and kafka_cluster_id_vault_file is not set: the role needs one of them to "
                "generate and keep the cluster id"]
    return []


def _acls(settings):
    entries = settings["acls"] or []
    if all(isinstance(entry, dict) and "acls" in entry and PRINCIPAL_PATTERN.match(str(entry.get("principal", "")))
           for entry in entries):
        return []
    return ["each kafka_acls entry needs a principal 'User:<name>' and a list acls (see defaults/main.yml)"]


def kafka_settings_problems(settings, hostvars):
    """Why the kafka role cannot set up this host's cluster with these settings (one sentence each; empty when it
    can). ``settings`` holds the keys of SETTINGS; ``hostvars`` gives each host's kafka_node_id, isobar_address and
    kafka_process_roles."""
    missing = [key for key in SETTINGS if key not in settings]
    if missing:
        raise ValueError(f"kafka_settings_problems: missing settings {missing}")
    hosts = list(settings["hosts"] or [])
    variables = {host: (hostvars.get(host) or {}) for host in hosts}
    try:
        brokers = kafka_nodes_with(hosts, variables, "broker")
        controllers = kafka_nodes_with(hosts, variables, "controller")
    except LayoutError:
        brokers = controllers = []  # a wrong kafka_process_roles: reported by the layout check
    return (_layout(settings, hosts, variables, brokers, controllers) + _replication(settings, len(brokers))
            + _ports_heap_networks(settings) + _release(settings) + _sasl(settings) + _cluster_id(settings)
            + _acls(settings))


class FilterModule:
    """The kafka role's settings check."""

    def filters(self):
        return {"kafka_settings_problems": kafka_settings_problems}
