"""isobar.pipeline.apt_present run by ansible-playbook on this machine (a Debian host with dpkg and python3-apt),
in check mode: nothing is installed.

Installed packages are answered by dpkg-query alone (apt does not run); a missing one goes to ansible.builtin.apt
(which, asked for a package no repository has, fails saying so); bad input stops before anything runs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not shutil.which("dpkg-query") or not Path("/usr/bin/python3").exists(),
                                reason="needs a Debian host (dpkg-query, /usr/bin/python3)")


def run(tmp_path, tasks):
    (tmp_path / "play.yml").write_text(json.dumps([{"name": "apt_present", "hosts": "localhost", "gather_facts": False,
                                                    "tasks": tasks}]))
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"), "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    env.pop("ANSIBLE_CONFIG", None)
    out = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                          "--check", "-e", "ansible_python_interpreter=/usr/bin/python3", str(tmp_path / "play.yml")],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.startswith("{"), out.stderr[-2000:]
    report = json.loads(out.stdout)
    return [task["hosts"]["localhost"] for task in report["plays"][0]["tasks"]]


def test_installed_packages_are_answered_without_apt(tmp_path):
    [result] = run(tmp_path, [{"name": "have", "isobar.pipeline.apt_present": {"name": ["dpkg", "bash"],
                                                                               "install_recommends": False}}])
    assert not result.get("failed") and result["changed"] is False
    assert result["apt"] is False and result["missing"] == [] and result["packages"] == ["dpkg", "bash"]


def test_a_missing_package_goes_to_apt(tmp_path):
    [result] = run(tmp_path, [{"name": "want", "isobar.pipeline.apt_present": {"name": "dpkg,isobar-no-such-package"},
                               "ignore_errors": True}])
    assert result["apt"] is True and result["missing"] == ["isobar-no-such-package"]
    assert result.get("failed") and "isobar-no-such-package" in result["msg"]


def test_bad_input_stops_before_anything_runs(tmp_path):
    [result] = run(tmp_path, [{"name": "bad", "isobar.pipeline.apt_present": {"name": ""}, "ignore_errors": True}])
    assert result.get("failed") and "name is required" in result["msg"] and "apt" not in result
