"""playbooks/patch.yml's broker half on a lab (issue 12.5): the brokers' packages are upgraded one broker at a time,
each between two health checks of the cluster (the rolling restart's: registered, quorum, ISR, SCRAM logins), and a
run on an unhealthy cluster stops before any broker is touched. Runs after the upgrade verify (file order: the
refusal stops and starts a broker) in make test and make test-upgrade; against any converged lab by hand:

    pytest tests/lab/upgrade/test_upgrade_then_patch.py --ansible-inventory <inventory>   (ANSIBLE_BECOME=true)
"""
from __future__ import annotations

import time

import pytest
from fixtures.playbook_run import run_playbook

UPGRADE_TASK = "Upgrade | Upgrade the packages"
REPORT_TASK = "Upgrade | Report"
HEALTH_GATE = "Health | Stop the play unless the cluster is healthy"
BROKERS_PLAY = "Patch the Kafka brokers one at a time"
# The health check polls; a refusal need not wait its usual 60 x 5 s.
QUICK_HEALTH = {"kafka_health_retries": 3, "kafka_health_delay": 2}


@pytest.fixture(scope="module")
def brokers(inventory_vars):
    return inventory_vars("localhost", "groups")["groups"]["kafka_brokers"]


def steps(play):
    """(task name's end after the role prefix, hosts that ran it) of a play, in order; skipped hosts left out."""
    out = []
    for task in play["tasks"]:
        ran = [h for h, r in task["hosts"].items() if not r.get("skipped")]
        if ran:
            out.append((task["name"].split(" : ", 1)[-1], ran))
    return out


def wait_active(host, unit, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if host.run(f"systemctl is-active {unit}").stdout.strip() == "active":
            return
        time.sleep(2)
    raise AssertionError(f"{unit} did not come back within {seconds} s")


def test_an_unhealthy_cluster_is_refused_before_any_broker_is_touched(inventory_path, brokers, lab_host):
    stopped = lab_host(brokers[-1])
    stopped.run_expect([0], "systemctl stop kafka")
    try:
        run = run_playbook(inventory_path, "patch.yml", QUICK_HEALTH, limit=brokers)
    finally:
        stopped.run_expect([0], "systemctl start kafka")
        wait_active(stopped, "kafka")
    assert run.rc != 0, "patch.yml went on with a broker down"
    messages = " ".join(str(m) for m in run.failed.values())
    assert f"not healthy before patching {brokers[0]}" in messages, run.failed
    touched = [name for play in run.plays for name, _ in steps(play) if name.startswith("Upgrade |")]
    assert not touched, f"a broker's packages were touched on an unhealthy cluster: {touched}"


def test_the_brokers_are_patched_one_at_a_time_between_health_checks_and_again_changes_nothing(inventory_path, brokers):
    # The refusal above restarted a broker: patch.yml's first check waits for the cluster to be whole again.
    run = run_playbook(inventory_path, "patch.yml", limit=brokers).assert_ok()
    batches = [play for play in run.plays if play["name"] == BROKERS_PLAY]
    assert len(batches) == len(brokers), [p["name"] for p in run.plays]  # serial: 1, one play per broker
    for broker, play in zip(brokers, batches):
        names = [name for name, _ in steps(play)]
        upgraded = [hosts for name, hosts in steps(play) if name == UPGRADE_TASK]
        assert upgraded == [[broker]], (broker, steps(play))
        gates = [i for i, name in enumerate(names) if name.startswith(HEALTH_GATE)]
        upgrade_at = names.index(UPGRADE_TASK)
        assert gates and gates[0] < upgrade_at < gates[-1], (broker, names)  # healthy before and after
    print({host: result["msg"] for host, result in run.hosts(REPORT_TASK).items()})
    again = run_playbook(inventory_path, "patch.yml", limit=brokers).assert_ok()
    assert not again.changed, again.changed
    reports = again.hosts(REPORT_TASK)
    assert all("nothing to upgrade" in r["msg"] for r in reports.values()), reports
