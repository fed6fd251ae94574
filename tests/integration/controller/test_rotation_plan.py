"""The rotation's plan (playbooks/rotate-secrets.yml, first play: entry point plan of the role
isobar.pipeline.secret_rotation, on the controller) names the users and clients it will rotate: a real
ansible-playbook run in check mode against the lab inventory, limited to the controller, so no host is contacted and
nothing is changed.

Regression: the plan read the Kafka principals from the first host's hostvars, where the pipeline's names (role
isobar.pipeline.topology's defaults) are not: `-e rotate=kafka_scram` rotated the admin only, and the Molecule rotation
scenario found the old passwords of telegraf, producer, consumer and kafdrop still accepted."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.ansible_env import ansible_env

ROOT = Path(__file__).resolve().parents[3]
SERVICE_USERS = ["telegraf", "producer", "consumer", "kafdrop"]  # the lab's principals (topology defaults)


def plan(tmp_path, *extra):
    """(rc, the plan's message or None, the failed tasks' messages)."""
    controller = tmp_path / "controller.yml"
    controller.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    env = ansible_env(ANSIBLE_VAULT_IDENTITY_LIST=f"lab@{ROOT / 'inventories' / 'lab' / 'vault-password.txt'}")
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), str(ROOT / "playbooks" / "rotate-secrets.yml"),
           "-i", str(ROOT / "inventories" / "lab"), "-i", str(controller), "--limit", "localhost", "--check", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"rc={proc.returncode}, no JSON report: {proc.stderr[-2000:]}")
    message, failed = None, []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get("localhost", {})
            # the plan is a task of the role isobar.pipeline.secret_rotation: the callback prefixes it with the role
            if task["task"]["name"].split(" : ", 1)[-1] == "Plan | Say what this run rotates (names only)":
                message = result.get("msg")
            if result.get("failed"):
                failed.append(result.get("msg", "(hidden)"))
    return proc.returncode, message, failed


def test_kafka_scram_rotates_the_admin_and_every_service_principal(tmp_path):
    rc, message, failed = plan(tmp_path, "-e", "rotate=kafka_scram")
    assert rc == 0 and not failed, failed
    assert f"kafka_scram: {', '.join(['admin'] + SERVICE_USERS)}." in message, message


def test_one_service_principal_can_be_named(tmp_path):
    rc, message, failed = plan(tmp_path, "-e", "rotate=kafka_scram", "-e", "rotate_kafka_users=producer")
    assert rc == 0 and not failed, failed
    assert "kafka_scram: producer." in message, message


def test_an_unknown_principal_is_refused_with_the_known_ones(tmp_path):
    rc, message, failed = plan(tmp_path, "-e", "rotate=kafka_scram", "-e", "rotate_kafka_users=nobody")
    assert rc != 0 and message is None
    assert any("Unknown Kafka users nobody (known: " + ", ".join(["admin"] + SERVICE_USERS) + ")" in m for m in failed), failed
