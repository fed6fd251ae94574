"""A restart is not lost when a run stops part-way (issue 14.2).

A role's handlers restart its service at the end of the play. Here a run writes the service's files with a changed
setting through the role's own tasks (which notify its restart handler) and then fails before the handlers run. The
next run of the role, with the same setting, finds its files unchanged: it must still restart the service (Kafka:
one broker at a time, the cluster checked after each). Afterwards the inventory's settings are put back (one more
restart). The restart a failed run left pending is found by the roles' restart_pending check (tasks/pending_restart.yml).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from fixtures.ansible_env import ansible_env

ROOT = Path(__file__).resolve().parents[3]


def failing_play(role, group, limit):
    """The role's own preflight and config tasks, then a failure before the handlers run (a run failing part-way)."""
    return [{
        "name": f"Write the files of {role}, then stop",
        "hosts": limit or group,
        "become": True,
        "roles": [{"role": "isobar.pipeline.topology"}],
        "tasks": [
            {"name": "The role's preflight", "ansible.builtin.include_role": {
                "name": f"isobar.pipeline.{role}", "tasks_from": "preflight.yml"}},
            {"name": "The role's config tasks (they notify its restart handler)", "ansible.builtin.include_role": {
                "name": f"isobar.pipeline.{role}", "tasks_from": "config.yml"}},
            {"name": "Stop before the handlers run", "ansible.builtin.fail": {
                "msg": "simulated failure after the files were written"}},
        ],
    }]


# (role, inventory group, playbook of the role, unit, a setting that changes a file the unit reads, hosts to change)
CASES = [
    ("telegraf", "telegraf", "telegraf.yml", "telegraf", {"telegraf_flush_interval": "11s"}, None),
    # Two brokers: enough to see the restarts one at a time, gated by the cluster check, at the cost of two.
    ("kafka", "kafka_brokers", "kafka.yml", "kafka", {"kafka_log_retention_hours": 169}, "kafka1,kafka2"),
]


def run_playbook(inventory, playbook, extra=None, limit=None):
    """ansible-playbook with the JSON callback: (rc, {task name: {host: result}}, {host: task: failure message})."""
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", inventory, str(playbook)]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    if limit:
        cmd += ["--limit", limit]
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=1800)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"{playbook}: rc={proc.returncode}, no JSON report: {proc.stderr[-2000:]}") from None
    tasks, failed = {}, {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                tasks.setdefault(task["task"]["name"], {})[host] = result
                if result.get("failed") and not result.get("ignore_errors"):
                    failed[f"{host}: {task['task']['name']}"] = result.get("msg", "(hidden)")
    return proc.returncode, tasks, failed


def main_starts(lab_host, hosts, unit):
    """{host: ExecMainStartTimestampMonotonic (microseconds)}: changes with every start of the unit's main process."""
    return {h: int(lab_host(h).check_output(f"systemctl show -P ExecMainStartTimestampMonotonic {unit}"))
            for h in hosts}


@pytest.mark.parametrize(("role", "group", "playbook", "unit", "extra", "limit"), CASES, ids=[c[0] for c in CASES])
def test_a_restart_left_pending_by_a_failed_run_happens_on_the_next_run(inventory_path, inventory_vars, lab_host, role,
                                                                       group, playbook, unit, extra, limit):
    hosts = limit.split(",") if limit else inventory_vars("localhost", "groups")["groups"][group]
    before = main_starts(lab_host, hosts, unit)
    assert all(before.values()), f"{unit} is not running everywhere: {before}"
    with tempfile.TemporaryDirectory(prefix="isobar-pending-") as tmp:
        failing = Path(tmp) / "fail-after-config.yml"
        failing.write_text(yaml.safe_dump(failing_play(role, group, limit), sort_keys=False))
        rc, tasks, failed = run_playbook(inventory_path, failing, extra)
    assert rc != 0 and failed and all("simulated failure" in msg for msg in failed.values()), failed
    changed = sorted(name for name, results in tasks.items() if any(r.get("changed") for r in results.values()))
    assert changed, "the failing run changed no file: the test would prove nothing"
    assert main_starts(lab_host, hosts, unit) == before, f"{unit} restarted although the run failed"

    try:
        started = time.monotonic()
        rc, tasks, failed = run_playbook(inventory_path, ROOT / "playbooks" / playbook, extra, limit)
        assert rc == 0 and not failed, failed
        print(f"{role}: the re-run took {time.monotonic() - started:.0f} s")
        after = main_starts(lab_host, hosts, unit)
        not_restarted = [h for h in hosts if after[h] == before[h]]
        assert not not_restarted, (f"{unit} still runs the files of before the failed run on {not_restarted} "
                                   f"(the failed run changed: {changed})")
        if role == "kafka":
            # One broker at a time, the next only after the cluster check (tasks/restart_broker.yml): seconds apart.
            starts = sorted(after.values())
            gaps = [round((b - a) / 1e6, 1) for a, b in zip(starts, starts[1:])]
            print(f"kafka: brokers restarted {gaps} s apart")
            assert all(gap > 5 for gap in gaps), f"brokers restarted together: {gaps} s apart"
    finally:
        rc, _, failed = run_playbook(inventory_path, ROOT / "playbooks" / playbook, None, limit)
        assert rc == 0 and not failed, f"putting the inventory's settings back failed: {failed}"
