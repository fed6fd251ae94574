"""Address filters the base preflight uses (plugins/filter/network.py)."""
from __future__ import annotations

from ansible_collections.isobar.pipeline.plugins.filter.network import ip_in_networks, ssh_session_guard


def test_ip_in_networks_v4_v6_and_mapped():
    assert ip_in_networks("10.0.0.5", ["10.0.0.0/24"])
    assert ip_in_networks("10.0.0.5", ["10.0.0.5"])
    assert not ip_in_networks("10.0.1.5", ["10.0.0.0/24"])
    assert ip_in_networks("fd00::1", ["10.0.0.0/8", "fd00::/64"])
    assert not ip_in_networks("fd00::1", ["10.0.0.0/8"])
    assert ip_in_networks("::ffff:10.0.0.5", ["10.0.0.0/24"])
    assert not ip_in_networks("10.0.0.5", [])


def test_guard_no_session_is_fine():
    assert ssh_session_guard("", [], 22) == ""
    assert ssh_session_guard(None, ["10.0.0.0/8"], 22) == ""


def test_guard_allowed_session():
    assert ssh_session_guard("10.0.0.9 40000 10.0.0.5 2222", ["10.0.0.0/24"], "2222") == ""


def test_guard_reasons():
    reason = ssh_session_guard("192.0.2.1 40000 10.0.0.5 22", ["10.0.0.0/24"], 22)
    assert "192.0.2.1, which is not in base_firewall_ssh_sources ['10.0.0.0/24']" in reason
    reason = ssh_session_guard("10.0.0.9 40000 10.0.0.5 22", ["10.0.0.0/24"], 2222)
    assert "port 22 but the firewall would open base_ssh_port 2222" in reason
    assert "cannot read SSH_CONNECTION" in ssh_session_guard("garbage", ["10.0.0.0/24"], 22)
