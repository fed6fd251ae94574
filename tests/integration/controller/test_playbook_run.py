"""The tests' one ansible-playbook runner (tests/fixtures/playbook_run.py) against real playbook runs on this machine:
what the lab tests read from it (rc, the recap's changed counts, results per task and host, failures, a task found by
the end of its name) is what ansible-playbook reported."""
from __future__ import annotations

import json
import sys

import pytest
from fixtures.playbook_run import run_playbook


def write_play(tmp_path, tasks, hosts="localhost"):
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"name": "Runner check", "hosts": hosts, "gather_facts": False, "tasks": tasks}]))
    return playbook


LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def test_a_run_that_changes_and_skips(tmp_path):
    playbook = write_play(tmp_path, [
        {"name": "Role-like | Say hello", "ansible.builtin.command": "echo hello", "changed_when": True},
        {"name": "Skipped here", "ansible.builtin.command": "false", "when": False},
        {"name": "Ignored failure", "ansible.builtin.command": "false", "ignore_errors": True},
    ])
    run = run_playbook("localhost,", playbook, LOCAL)
    assert run.rc == 0
    assert run.changed == {"localhost": 2}  # the echo, and the ignored failure counts as changed (a command)
    assert run.task("Say hello")["stdout"] == "hello"
    assert "Skipped here" in run.tasks and "Skipped here" not in run.results
    # An ignored failure is listed (the callback does not mark it); the recap counts it as ignored.
    assert list(run.failed) == ["localhost: Ignored failure"] and run.stats["localhost"]["ignored"] == 1
    with pytest.raises(AssertionError, match="Ignored failure"):
        run.assert_ok()
    with pytest.raises(AssertionError, match="0 tasks named '...Nope' ran"):
        run.task("Nope")


def test_a_failed_run_and_check_mode(tmp_path):
    playbook = write_play(tmp_path, [
        {"name": "Would write", "ansible.builtin.copy": {"content": "x\n", "dest": str(tmp_path / "out.txt")}},
        {"name": "Stop here", "ansible.builtin.fail": {"msg": "simulated failure"}},
    ])
    run = run_playbook("localhost,", playbook, LOCAL, check=True)
    assert run.rc == 2 and run.failed == {"localhost: Stop here": "simulated failure"}
    assert run.task("Would write")["changed"] is True and not (tmp_path / "out.txt").exists()
    with pytest.raises(AssertionError, match="simulated failure"):
        run.assert_ok()


def test_limit_leaves_hosts_out(tmp_path):
    playbook = write_play(tmp_path, [{"name": "Who", "ansible.builtin.command": "true", "changed_when": False}],
                          hosts="all")
    hosts = {"a": dict(LOCAL), "b": dict(LOCAL)}
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    run = run_playbook(str(inventory), playbook, limit=["b"]).assert_ok()
    assert list(run.tasks["Who"]) == ["b"] and not run.changed
    assert list(run.hosts("ho")) == ["b"]  # by the end of its name, every host it ran on
    assert [(p["name"], [t["name"] for t in p["tasks"]]) for p in run.plays] == [("Runner check", ["Who"])]


def test_serial_batches_are_plays_in_order(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"name": "One at a time", "hosts": "all", "serial": 1, "gather_facts": False,
                                     "tasks": [{"name": "Who", "ansible.builtin.command": "true", "changed_when": False}]}]))
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"a": dict(LOCAL), "b": dict(LOCAL)}}}))
    run = run_playbook(str(inventory), playbook).assert_ok()
    assert [(p["name"], list(p["tasks"][0]["hosts"])) for p in run.plays] == [("One at a time", ["a"]),
                                                                              ("One at a time", ["b"])]
    assert sorted(run.hosts("Who")) == ["a", "b"]  # the batches' results of one task together
    with pytest.raises(AssertionError, match="0 tasks named '...Nope' ran"):
        run.hosts("Nope")


def test_no_report_is_an_error_naming_the_playbook(tmp_path):
    with pytest.raises(AssertionError, match=r"missing\.yml: rc=\d+, no JSON report"):
        run_playbook("localhost,", tmp_path / "missing.yml", LOCAL)
