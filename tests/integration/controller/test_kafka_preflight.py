"""The kafka role refuses settings a cluster cannot run with, every problem named in one message, before any host is
touched; settings that can run pass on to the first task that reaches a host (a real ansible-playbook run of the role's
preflight). And the role does not repeat that preflight in the play that ran it first (playbooks/kafka.yml).

The hosts are reached over SSH at 127.0.0.1:<closed port>: the settings check runs on the controller, so a refused
host ends 'failed' with the message; a check that let a host through makes the next task (is Kafka running here?)
try to connect: 'unreachable'."""
from __future__ import annotations

from pathlib import Path

import yaml

from fixtures.offline_hosts import TESTED_PLAY, run_offline
from fixtures.playbook_run import results_by_host

ROOT = Path(__file__).resolve().parents[3]
PLAY = """
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


def run_preflight(tmp_path, **settings):
    hosts = {f"kafka{index}": {"kafka_node_id": index, "isobar_address": "127.0.0.1"} for index in (1, 2, 3)}
    variables = {"release": "bookworm", "version": "12.12", "kafka_client_networks": ["127.0.0.0/8"],
                 "kafka_cluster_id_vault_file": str(tmp_path / "v.yml"),
                 "kafka_scram_passwords": {user: "p" * 20 for user in ("admin", "telegraf", "producer", "kafdrop",
                                                                       "exporter", "consumer")}}
    variables.update(settings)
    run = run_offline(tmp_path, PLAY, variables, children={"kafka_brokers": {"hosts": hosts}})
    return run, run.stats, results_by_host(run, TESTED_PLAY)


def test_settings_a_cluster_can_run_pass_on_to_the_hosts(tmp_path):
    run, stats, results = run_preflight(tmp_path)
    assert run.rc != 0  # the hosts cannot be reached: that is where the preflight let them through
    for host in ("kafka1", "kafka2", "kafka3"):
        assert stats[host]["failures"] == 0 and stats[host]["unreachable"] == 1, stats
        checked = dict(results[host])[SETTINGS_TASK]
        assert not checked.get("failed") and not checked.get("skipped"), checked


def test_every_wrong_setting_is_named_and_no_host_is_reached(tmp_path):
    run, stats, results = run_preflight(tmp_path, kafka_replication_port=9092, kafka_heap_size="lots",
                                        kafka_min_insync_replicas=3, kafka_sasl_enabled_mechanisms=["PLAIN"])
    assert run.rc == 2, run.failed
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
