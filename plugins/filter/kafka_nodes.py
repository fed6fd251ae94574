# Copyright: Isobar contributors
# Apache-2.0
"""Node roles of the Kafka hosts (KRaft process.roles): which hosts are brokers, which are controllers, and whether the
layout is one a cluster can run and grow with (pure Python: Jinja only renders).

Each host of the Kafka group says ``kafka_process_roles`` in the inventory: ``[broker, controller]`` (the default,
every host of a small cluster), ``[broker]`` (a broker-only node: the cluster grows without touching the quorum) or
``[controller]`` (a dedicated controller)."""

from __future__ import annotations

NODE_ROLES = ("broker", "controller")
DEFAULT_ROLES = ["broker", "controller"]


class LayoutError(ValueError):
    """A kafka_process_roles value that is not a list of node roles."""


def kafka_node_roles(value):
    """The host's roles in Kafka's order (broker before controller); None/undefined: both."""
    if value is None or value == "":
        return list(DEFAULT_ROLES)
    items = [value] if isinstance(value, str) else list(value)
    roles = [str(item).strip().lower() for item in items]
    wrong = [role for role in roles if role not in NODE_ROLES]
    if wrong or not roles or len(set(roles)) != len(roles):
        raise LayoutError(f"kafka_process_roles must list 'broker' and/or 'controller' once each, got {value!r}")
    return [role for role in NODE_ROLES if role in roles]


def _roles_of(host, hostvars):
    return kafka_node_roles((hostvars.get(host) or {}).get("kafka_process_roles"))


def kafka_nodes_with(hosts, hostvars, role):
    """The hosts (in inventory order) whose roles include ``role``."""
    if role not in NODE_ROLES:
        raise LayoutError(f"a node role is 'broker' or 'controller', got {role!r}")
    return [host for host in hosts or [] if role in _roles_of(host, hostvars)]


def kafka_layout_problems(hosts, hostvars, minimum_controllers=3, replication_factor=1):
    """Why the layout cannot run (one sentence each; empty when it can).

    The controllers form the metadata quorum: an odd number of them (an even one tolerates no more failures than the
    odd number below it), at least ``minimum_controllers``. At least ``replication_factor`` brokers hold the data.
    """
    problems, roles = [], {}
    for host in hosts or []:
        try:
            roles[host] = _roles_of(host, hostvars)
        except LayoutError as exc:
            problems.append(f"{host}: {exc}")
    if problems:
        return problems
    controllers = [host for host, r in roles.items() if "controller" in r]
    brokers = [host for host, r in roles.items() if "broker" in r]
    if len(controllers) % 2 == 0:
        problems.append(f"the metadata quorum needs an odd number of controllers, got {len(controllers)}: "
                        f"{controllers}")
    if len(controllers) < int(minimum_controllers):
        problems.append(f"at least {minimum_controllers} controllers are needed (kafka_controller_minimum), got "
                        f"{len(controllers)}: {controllers}")
    if len(brokers) < max(int(replication_factor), 1):
        problems.append(f"kafka_default_replication_factor {replication_factor} needs as many brokers, got "
                        f"{len(brokers)}: {brokers}")
    return problems


class FilterModule:
    """Kafka node roles."""

    def filters(self):
        return {"kafka_node_roles": kafka_node_roles, "kafka_nodes_with": kafka_nodes_with,
                "kafka_layout_problems": kafka_layout_problems}
