"""The monitoring role's preflight on this machine (no lab): the settings check accepts the role's defaults and
refuses a bad port with its message, before anything is changed. The first converge with monitoring on failed on the
defaults: the check read the names of the port variables instead of their values."""
from __future__ import annotations

import json
import sys

import pytest
from fixtures.playbook_run import run_playbook

SETTINGS_TASK = "isobar.pipeline.monitoring : Preflight | Check ports, networks and settings"
CERTIFICATES_TASK = "isobar.pipeline.monitoring : Preflight | Fail without the certificates"


def run_preflight(tmp_path, **overrides):
    """The role's preflight.yml on localhost: {task name: result} of the tasks that ran."""
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(json.dumps([{
        "name": "Monitoring preflight", "hosts": "localhost", "gather_facts": True,
        "roles": [{"role": "isobar.pipeline.topology"}],
        "tasks": [{"name": "Preflight", "ansible.builtin.include_role": {
            "name": "isobar.pipeline.monitoring", "tasks_from": "preflight.yml"}}]}]))
    settings = {"isobar_address": "127.0.0.1", "monitoring_basic_auth_password": "a-long-enough-password",
                "monitoring_ca_file": str(tmp_path / "missing-ca.crt"), "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable, **overrides}
    tasks = run_playbook("localhost,", playbook, settings).tasks
    return {name: hosts["localhost"] for name, hosts in tasks.items() if "localhost" in hosts}


def test_the_defaults_pass_the_settings_check(tmp_path):
    tasks = run_preflight(tmp_path)
    assert not tasks[SETTINGS_TASK].get("failed"), tasks[SETTINGS_TASK].get("msg")
    # It goes on to the next checks: here the certificates are missing, which is said and stops it.
    assert tasks[CERTIFICATES_TASK].get("failed") and "missing-ca.crt" in tasks[CERTIFICATES_TASK]["msg"]


@pytest.mark.parametrize("port", [0, 70000, "9090"])
def test_a_bad_or_clashing_port_is_refused_by_the_settings_check(tmp_path, port):
    tasks = run_preflight(tmp_path, monitoring_node_exporter_port=port)
    result = tasks[SETTINGS_TASK]
    assert result.get("failed") and "Invalid monitoring settings" in result["msg"], result
    assert f"9096, {port}" in result["msg"] and CERTIFICATES_TASK not in tasks
