"""The base role never locks the controller out (issue 12.3): SSH opens on the inventory's port, an empty SSH source
list is refused, and preflight stops when the controller's own SSH session would be cut off by the firewall.

Real ansible-playbook runs of the role's own preflight and template on this machine (connection local). The SSH
session a play would run in is what the host sees in $SSH_CONNECTION; the runs set it as sshd would."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.prerequisites import missing

ROOT = Path(__file__).resolve().parents[3]

PREFLIGHT = """
- name: Base preflight
  hosts: localhost
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Run the preflight of the base role
      ansible.builtin.include_role:
        name: isobar.pipeline.base
        tasks_from: preflight.yml
"""

RENDER = """
- name: Render the ruleset
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Load the role defaults
      ansible.builtin.include_vars:
        file: "{{ playbook_dir_root }}/roles/base/defaults/main.yml"
    - name: Render nftables.conf
      ansible.builtin.template:
        src: "{{ playbook_dir_root }}/roles/base/templates/nftables.conf.j2"
        dest: "{{ out }}"
        mode: "0644"
"""


def _playbook(tmp_path, text, extra_vars, ssh_connection=None):
    play = tmp_path / "play.yml"
    play.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    if ssh_connection is not None:
        env["SSH_CONNECTION"] = ssh_connection
    variables = {"ansible_python_interpreter": sys.executable, **extra_vars}
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), str(play), "-i", "localhost,", "-c", "local",
         "-e", json.dumps(variables)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def _preflight(tmp_path, sources, ssh_connection=None, **extra):
    return _playbook(tmp_path, PREFLIGHT, {"base_firewall_ssh_sources": sources, **extra}, ssh_connection)


def _output(proc):
    return proc.stdout[-3000:] + proc.stderr[-2000:]


def test_the_ssh_rule_opens_the_inventorys_port(tmp_path):
    snippets = tmp_path / "nftables.d"
    snippets.mkdir()
    (snippets / "kafka.nft").write_text('ip saddr { 10.0.0.0/24 } tcp dport { 9092 } accept comment "kafka"\n')
    out = tmp_path / "nftables.conf"
    proc = _playbook(tmp_path, RENDER, {"playbook_dir_root": str(ROOT), "out": str(out), "ansible_port": 2222,
                                        "base_firewall_ssh_sources": ["10.0.0.0/24", "fd00::/64"],
                                        "base_firewall_snippet_dir": str(snippets)})
    assert proc.returncode == 0, _output(proc)
    ruleset = out.read_text()
    assert 'ip saddr { 10.0.0.0/24 } tcp dport 2222 accept comment "ssh"' in ruleset
    assert 'ip6 saddr { fd00::/64 } tcp dport 2222 accept comment "ssh"' in ruleset
    assert "dport 22 " not in ruleset
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if not Path(nft).exists():
        missing("nft is not installed on this machine: the ruleset's syntax is checked on the lab hosts")
    check = subprocess.run([nft, "--check", "--file", str(out)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_without_ansible_port_ssh_stays_on_22(tmp_path):
    out = tmp_path / "nftables.conf"
    proc = _playbook(tmp_path, RENDER, {"playbook_dir_root": str(ROOT), "out": str(out),
                                        "base_firewall_ssh_sources": ["10.0.0.0/24"]})
    assert proc.returncode == 0, _output(proc)
    assert "tcp dport 22 accept" in out.read_text()


def test_an_empty_ssh_source_list_is_refused(tmp_path):
    proc = _preflight(tmp_path, [])
    assert proc.returncode != 0
    assert "base_firewall_ssh_sources must list who may reach SSH" in proc.stdout, _output(proc)


def test_an_empty_ssh_source_list_is_fine_without_the_firewall(tmp_path):
    proc = _preflight(tmp_path, [], base_firewall_enabled=False)
    assert proc.returncode == 0, _output(proc)


def test_a_controller_outside_the_sources_is_refused(tmp_path):
    proc = _preflight(tmp_path, ["10.99.0.0/24"], ssh_connection="192.0.2.7 51234 10.99.0.5 22")
    assert proc.returncode != 0
    assert "would lock this controller out" in proc.stdout, _output(proc)
    assert "192.0.2.7, which is not in base_firewall_ssh_sources" in proc.stdout


def test_a_controller_inside_the_sources_passes(tmp_path):
    proc = _preflight(tmp_path, ["10.99.0.0/24", "192.0.2.0/28"], ssh_connection="192.0.2.7 51234 10.99.0.5 22")
    assert proc.returncode == 0, _output(proc)


def test_sshd_on_another_port_than_the_firewall_opens_is_refused(tmp_path):
    proc = _preflight(tmp_path, ["192.0.2.0/24"], ssh_connection="192.0.2.7 51234 10.99.0.5 2222")
    assert proc.returncode != 0
    assert "sshd serves this session on port 2222 but the firewall would open base_ssh_port 22" in proc.stdout, \
        _output(proc)
    ok = _preflight(tmp_path, ["192.0.2.0/24"], ssh_connection="192.0.2.7 51234 10.99.0.5 2222", ansible_port=2222)
    assert ok.returncode == 0, _output(ok)
