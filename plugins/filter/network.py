# Copyright: Isobar contributors
# Apache-2.0
"""Address checks the roles' preflights need (pure Python: Jinja only renders).

``ssh_session_guard`` reads the SSH session a play runs in (``$SSH_CONNECTION`` as the host sees it) and says
whether the firewall about to be loaded would still let that session's client in: a controller must never be
locked out of a host by the firewall it deploys."""

from __future__ import annotations

import ipaddress


def _network(text):
    return ipaddress.ip_network(str(text).strip(), strict=False)


def ip_in_networks(address, networks):
    """True when ``address`` is inside one of ``networks`` (addresses or CIDRs, IPv4 and IPv6).

    An IPv4-mapped IPv6 address (``::ffff:10.0.0.5``, what a dual-stack sshd may report) counts as its IPv4 address.
    """
    ip = ipaddress.ip_address(str(address).strip())
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in (_network(n) for n in networks or []))


def ssh_session_guard(ssh_connection, sources, port):
    """'' when an SSH session ``ssh_connection`` ("client_ip client_port server_ip server_port") stays allowed by
    a firewall opening ``port`` to ``sources``; else the reason it would be cut off. No session (empty): ''."""
    fields = str(ssh_connection or "").split()
    if not fields:
        return ""
    if len(fields) != 4:
        return f"cannot read SSH_CONNECTION {ssh_connection!r} (expected 'client_ip client_port server_ip server_port')"
    client, _client_port, _server, server_port = fields
    reasons = []
    if not ip_in_networks(client, sources):
        reasons.append(f"this controller reaches the host from {client}, which is not in base_firewall_ssh_sources "
                       f"{list(sources or [])}")
    if str(server_port) != str(port):
        reasons.append(f"sshd serves this session on port {server_port} but the firewall would open base_ssh_port {port} "
                       "(set ansible_port or base_ssh_port to the port sshd listens on)")
    return "; ".join(reasons)


class FilterModule:
    """Network filters of isobar.pipeline."""

    def filters(self):
        return {"ip_in_networks": ip_in_networks, "ssh_session_guard": ssh_session_guard}
