"""A restart is not lost when a run stops part-way (issue 14.2).

A role's handlers restart a service at the end of the play. Here a run writes a service's files with the role's own
config tasks (which notify the handler) and then fails before the handlers run; the next run of the role sees
unchanged files, and must still restart the service (Kafka: rolling, one broker at a time, the cluster checked
after each). Each case puts the inventory's settings back afterwards (one more restart).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fixtures.ansible_env import ansible_env

ROOT = Path(__file__).resolve().parents[3]

FAIL_AFTER_CONFIG = """
- name: Write the files of {role}, then stop (a run failing part-way)
  hosts: {group}
  become: true
  gather_facts: false
  roles:
    - role: isobar.pipeline.topology
  tasks:
    - name: The role's own config tasks (they notify its restart handler)
      ansible.builtin.include_role:
        name: isobar.pipeline.{role}
        tasks_from: config.yml

    - name: Stop before the handlers run
      ansible.builtin.fail:
        msg: simulated failure after the files were written
"""

# (role, inventory group, playbook of the role, unit, a setting that changes a file the unit reads)
CASES = [
    ("telegraf", "telegraf", "telegraf.yml", "telegraf", {"telegraf_flush_interval": "11s"}),
    ("kafka", "kafka_brokers", "kafka.yml", "kafka", {"kafka_log_retention_hours": 169}),
]


def run_playbook(inventory, playbook, extra=None):
    """ansible-playbook with the JSON callback: (rc, {task name: {host: result}}, {host/task: failure message})."""
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", inventory, str(playbook)]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=3600)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"{playbook}: rc={proc.returncode}, no JSON report: {proc.stderr[-2000:]}") from None
    tasks, failed = {}, {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                tasks.setdefault(task["task"]["name"], {})[host] = result
                if result.get("failed"):
                    failed[f"{host}: {task['task']['name']}"] = result.get("msg", "(hidden)")
    return proc.returncode, tasks, failed


def main_pid_starts(lab_host, hosts, unit):
    """{host: ExecMainStartTimestampMonotonic} - changes with every start of the unit's main process."""
    return {h: int(lab_host(h).check_output(f"systemctl show -P ExecMainStartTimestampMonotonic {unit}"))
            for h in hosts}


@pytest.mark.parametrize(("role", "group", "playbook", "unit", "extra"), CASES, ids=[c[0] for c in CASES])
def test_restart_left_pending_by_a_failed_run_happens_on_the_next_run(inventory_path, inventory_vars, lab_host,
                                                                     role, group, playbook, unit, extra):
    hosts = inventory_vars("localhost", "groups")["groups"][group]
    before = main_pid_starts(lab_host, hosts, unit)
    assert all(before.values()), f"{unit} is not running everywhere: {before}"
    with tempfile.TemporaryDirectory(prefix="isobar-pending-") as tmp:
        failing = Path(tmp) / "fail-after-config.yml"
        failing.write_text(FAIL_AFTER_CONFIG.format(role=role, group=group))
        rc, tasks, failed = run_playbook(inventory_path, failing, extra)
    assert rc != 0 and all("simulated failure" in msg for msg in failed.values()), failed
    changed = [name for name, results in tasks.items() if any(r.get("changed") for r in results.values())]
    assert changed, "the failing run changed no file: the test proves nothing"
    assert main_pid_starts(lab_host, hosts, unit) == before, f"{unit} restarted although the run failed"

    try:
        rc, tasks, failed = run_playbook(inventory_path, ROOT / "playbooks" / playbook, extra)
        assert rc == 0 and not failed, failed
        after = main_pid_starts(lab_host, hosts, unit)
        not_restarted = [h for h in hosts if after[h] == before[h]]
        assert not not_restarted, f"{unit} still runs the files of before the failed run on {not_restarted}"
        if role == "kafka":
            # One broker at a time, the next only after the cluster check (tasks/restart_broker.yml): the brokers'
            # starts lie seconds apart, never together.
            starts = sorted(after.values())
            gaps = [(b - a) / 1e6 for a, b in zip(starts, starts[1:])]
            assert all(gap > 5 for gap in gaps), f"brokers restarted together: {gaps} s apart"
    finally:
        rc, _, failed = run_playbook(inventory_path, ROOT / "playbooks" / playbook)
        assert rc == 0 and not failed, f"putting the inventory's settings back failed: {failed}"
