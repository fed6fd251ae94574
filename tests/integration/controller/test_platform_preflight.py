"""Each role refuses a host on an unsupported Debian release with a clear message, before anything is changed, and one
such host stops the play for every host (a real ansible-playbook run of each role).

The hosts of these runs can be checked but not changed: their facts are set on the controller (set_fact), and they are
reached over SSH at 127.0.0.1:<closed port>. platform_check runs on the controller, so a refused host ends 'failed'
with the message; a check that let a host through would make the role's next task try to connect ('unreachable')."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
# base runs first on every host (site.yml); kafka and kafdrop load release-specific values after the check. That every
# other role checks first too is tests/unit/test_platform_support.py's (its first task); each run here costs ~15 s.
ROLES = ["base", "kafka", "kafdrop"]

PLAYBOOK = """
- name: Give the hosts the facts of their release
  hosts: all
  gather_facts: false
  tasks:
    - name: Set the distribution facts (no connection)
      ansible.builtin.set_fact:
        ansible_distribution: Debian
        ansible_os_family: Debian
        ansible_architecture: x86_64
        ansible_distribution_release: "{{ release }}"
        ansible_distribution_version: "{{ version }}"
        ansible_distribution_major_version: "{{ version.split('.')[0] }}"
        cacheable: true

- name: Apply the role
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the role
      ansible.builtin.include_role:
        name: "isobar.pipeline.{{ role_under_test }}"
"""


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_role(tmp_path, role, hosts):
    port = closed_port()
    inventory = {"all": {"vars": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": port,
                                  "ansible_ssh_common_args": "-o ConnectTimeout=2", "role_under_test": role,
                                  # required options of the roles, so that their argument specs pass
                                  "kafka_node_id": 1, "pki_ca_passphrase": "x" * 24, "isobar_address": "127.0.0.1"},
                         "hosts": hosts}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "hosts.yml"),
                           str(tmp_path / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    # the JSON report, between profile_tasks' lines (ansible.cfg)
    start = proc.stdout.find("\n{\n") + 1
    return proc, json.JSONDecoder().raw_decode(proc.stdout[start:])[0]


def role_results(report):
    """{host: [task results]} of the role's play."""
    play = report["plays"][1]
    results = {}
    for task in play["tasks"]:
        for host, result in task["hosts"].items():
            results.setdefault(host, []).append((task["task"]["name"], result))
    return results


@pytest.mark.parametrize("role", ROLES)
def test_debian_11_is_refused_and_stops_every_host_unchanged(tmp_path, role):
    proc, report = run_role(tmp_path, role, {"old": {"release": "bullseye", "version": "11.11"},
                                             "new": {"release": "trixie", "version": "13.2"}})
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    stats = report["stats"]
    assert stats["old"]["failures"] == 1 and stats["old"]["unreachable"] == 0, stats
    # the supported host was checked, then stopped with the play: it was never connected to, nothing changed
    assert stats["new"]["failures"] == 0 and stats["new"]["unreachable"] == 0, stats
    assert stats["old"]["changed"] == 0 and stats["new"]["changed"] == 0, stats
    results = role_results(report)
    name, refused = results["old"][-1]
    assert "platform_check" in refused.get("action", name) or "release this role supports" in name
    assert refused["msg"] == (
        f"old runs Debian 11.11 (bullseye), which the {role} role does not support. Supported: Debian 12 (bookworm),"
        f" Debian 13 (trixie) (roles/{role}/meta/main.yml). Use a supported release (docs/deploy-real-vms.md)."
        " Nothing was changed.")
    assert results["new"][-1][1]["platform"] == "Debian 13 (trixie)"
