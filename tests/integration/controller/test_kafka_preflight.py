"""The kafka role refuses settings a cluster cannot run with, every problem named in one message, before any host is
touched; settings that can run pass on to the first task that reaches a host (a real ansible-playbook run of the role's
preflight). And the role does not repeat that preflight in the play that ran it first (playbooks/kafka.yml).

The hosts are reached over SSH at 127.0.0.1:<closed port>: the settings check runs on the controller, so a refused
host ends 'failed' with the message; a check that let a host through makes the next task (is Kafka running here?)
try to connect: 'unreachable'."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = """
- name: Give the hosts the facts of their release
  hosts: kafka_brokers
  gather_facts: false
  tasks:
    - name: Set the distribution facts (no connection)
      ansible.builtin.set_fact:
        ansible_distribution: Debian
        ansible_os_family: Debian
        ansible_architecture: x86_64
        ansible_distribution_release: bookworm
        ansible_distribution_version: "12.12"
        ansible_distribution_major_version: "12"
        cacheable: true

- name: The kafka role's preflight
  hosts: kafka_brokers
  gather_facts: false
  tasks:
    - name: Run the preflight
      ansible.builtin.include_role:
        name: isobar.pipeline.kafka
        tasks_from: preflight.yml
"""
SETTINGS_TASK = ("isobar.pipeline.kafka : Preflight | Check the Kafka settings (layout, node roles, replication, ports, "
                 "release, SASL, cluster id, ACLs)")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_preflight(tmp_path, **settings):
    hosts = {f"kafka{index}": {"kafka_node_id": index, "isobar_address": "127.0.0.1"} for index in (1, 2, 3)}
    variables = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": closed_port(),
                 "ansible_ssh_common_args": "-o ConnectTimeout=2", "kafka_cluster_id_vault_file": str(tmp_path / "v.yml"),
                 "kafka_client_networks": ["127.0.0.0/8"],
                 "kafka_scram_passwords": {user: "p" * 20 for user in ("admin", "telegraf", "producer", "kafdrop",
                                                                       "exporter", "consumer")}}
    variables.update(settings)
    inventory = {"all": {"vars": variables, "children": {"kafka_brokers": {"hosts": hosts}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "hosts.yml"),
                           str(tmp_path / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    start = proc.stdout.find("\n{\n") + 1  # the JSON report, between profile_tasks' lines (ansible.cfg)
    report = json.JSONDecoder().raw_decode(proc.stdout[start:])[0]
    results = {}
    for task in report["plays"][1]["tasks"]:
        for host, result in task["hosts"].items():
            results.setdefault(host, []).append((task["task"]["name"], result))
    return proc, report["stats"], results


def test_settings_a_cluster_can_run_pass_on_to_the_hosts(tmp_path):
    proc, stats, results = run_preflight(tmp_path)
    assert proc.returncode != 0  # the hosts cannot be reached: that is where the preflight let them through
    for host in ("kafka1", "kafka2", "kafka3"):
        assert stats[host]["failures"] == 0 and stats[host]["unreachable"] == 1, stats
        checked = dict(results[host])[SETTINGS_TASK]
        assert not checked.get("failed") and not checked.get("skipped"), checked


def test_every_wrong_setting_is_named_and_no_host_is_reached(tmp_path):
    proc, stats, results = run_preflight(tmp_path, kafka_replication_port=9092, kafka_heap_size="lots",
                                         kafka_min_insync_replicas=3, kafka_sasl_enabled_mechanisms=["PLAIN"])
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    for host in ("kafka1", "kafka2", "kafka3"):
        assert stats[host]["failures"] == 1 and stats[host]["unreachable"] == 0, stats
        name, refused = results[host][-1]
        assert name == SETTINGS_TASK and refused["failed"], refused
        message = refused["msg"]
        assert message.startswith("The kafka role cannot set up this cluster: "), message
        for expected in ("kafka_min_insync_replicas (3) below it", "must be three different ports (got 9092/9093/9092)",
                         "kafka_heap_size must be like 512m or 2g (got lots)",
                         "kafka_sasl_enabled_mechanisms must list SCRAM-SHA-512 and/or SCRAM-SHA-256 (got ['PLAIN'])"):
            assert expected in message, message


def test_the_role_does_not_repeat_the_preflight_its_play_ran():
    main = yaml.safe_load((ROOT / "roles" / "kafka" / "tasks" / "main.yml").read_text())
    assert main[0] == {"name": "Validate variables", "ansible.builtin.import_tasks": "preflight.yml",
                       "when": "not kafka_preflight_done"}, main[0]
    play = yaml.safe_load((ROOT / "playbooks" / "kafka.yml").read_text())[0]
    assert play["pre_tasks"][0]["ansible.builtin.include_role"] == {"name": "isobar.pipeline.kafka",
                                                                   "tasks_from": "preflight.yml"}
    kafka = [role for role in play["roles"] if role["role"] == "isobar.pipeline.kafka"]
    assert kafka == [{"role": "isobar.pipeline.kafka", "vars": {"kafka_preflight_done": True}}], kafka
    defaults = yaml.safe_load((ROOT / "roles" / "kafka" / "defaults" / "main.yml").read_text())
    assert defaults["kafka_preflight_done"] is False  # every other caller of the role checks
