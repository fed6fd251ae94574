"""make bench's converge_rerun_ssh_vs_docker row: the docker connection reaches the bench lab's hosts only.

bench.py passed it as extra variables (`ansible_host: "{{ lab_container }}"`), which also reach the tasks a play
delegates to localhost: site.yml failed at the pki role's "CA | Create the CA directory" ('lab_container' is
undefined), and no row after it was measured. It is an extra inventory source of host variables now; the real
ansible-playbook below shows localhost keeps its local connection while a lab host gets its container."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_main", ROOT / "bench" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_overlay_names_each_lab_hosts_container_and_leaves_localhost_alone():
    overlay = bench.docker_overlay({"kafka1": {"lab_container": "isobar-bench-kafka1"}, "localhost": {"lab_container": "x"},
                                    "outside": {"lab_container": None}})
    assert overlay == {"all": {"hosts": {"kafka1": {"ansible_connection": "community.docker.docker", "ansible_user": "root",
                                                    "ansible_host": "isobar-bench-kafka1"}}}}
    assert "{{" not in json.dumps(overlay)


def test_an_inventory_without_lab_hosts_is_refused():
    with pytest.raises(ValueError, match="no host of the bench inventory has a lab_container"):
        bench.docker_overlay({"localhost": {}})


def test_a_play_delegating_to_localhost_keeps_the_local_connection(tmp_path):
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {"kafka1": {"lab_container": "isobar-bench-kafka1"}}}}))
    (tmp_path / "overlay.yml").write_text(json.dumps(bench.docker_overlay({"kafka1": {"lab_container": "isobar-bench-kafka1"}})))
    (tmp_path / "play.yml").write_text(json.dumps([{
        "name": "Like the pki role: a task of a lab host's play delegated to the controller", "hosts": "kafka1",
        "gather_facts": False,
        "tasks": [
            {"name": "On the controller", "ansible.builtin.command": "true", "delegate_to": "localhost",
             "changed_when": False, "vars": {"ansible_python_interpreter": sys.executable}},
            {"name": "The lab host's own connection", "ansible.builtin.assert": {"that": [
                "ansible_connection == 'community.docker.docker'", "ansible_host == 'isobar-bench-kafka1'"]}},
            {"name": "The controller's", "ansible.builtin.assert": {"that": [
                "hostvars['localhost'] is not defined or hostvars['localhost'].ansible_connection | default('local') == 'local'"]}},
        ]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    run = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "hosts.yml"),
                          "-i", str(tmp_path / "overlay.yml"), str(tmp_path / "play.yml")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]
