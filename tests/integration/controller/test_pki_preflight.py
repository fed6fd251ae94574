"""The pki role refuses a weak CA passphrase (the example vault's "changeme") before it creates or touches anything,
as the other roles refuse short passwords: a real ansible-playbook run of the role's preflight, and the role runs that
preflight first."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = """
- name: The pki role's checks
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Preflight of the pki role
      ansible.builtin.include_role:
        name: isobar.pipeline.pki
        tasks_from: preflight
"""


def _run(tmp_path, passphrase):
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "vars.json").write_text(json.dumps({"pki_ca_passphrase": passphrase}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    return subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), str(tmp_path / "play.yml"),
                           "-i", "localhost,", "-e", f"@{tmp_path / 'vars.json'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("weak", ["changeme", "CHANGEME", "short-phrase"])
def test_a_weak_ca_passphrase_is_refused(tmp_path, weak):
    proc = _run(tmp_path, weak)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "must have 16 characters or more" in proc.stdout, proc.stdout[-2000:]
    assert weak not in proc.stdout + proc.stderr  # the refused value is not printed


def test_a_strong_ca_passphrase_passes(tmp_path):
    proc = _run(tmp_path, "a-long-passphrase-nobody-guesses")
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_the_role_checks_before_it_creates_the_ca():
    tasks = yaml.safe_load((ROOT / "roles" / "pki" / "tasks" / "main.yml").read_text())
    assert tasks[0].get("ansible.builtin.import_tasks") == "preflight.yml", tasks[0]
