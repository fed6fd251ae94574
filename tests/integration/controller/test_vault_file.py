"""vault_file writes each environment's secrets with that environment's vault identity (a real ansible-playbook run
with two identities loaded, as `--vault-id prod@...` next to the lab's identity): never the first one loaded, never
the lab's published one."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
LAB_PASSWORD_FILE = ROOT / "inventories" / "lab" / "vault-password.txt"

PLAYBOOK = """
- name: Write secrets the way the roles do
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Merge a generated secret into the environment's vault
      isobar.pipeline.vault_file:
        path: "{{ target }}"
        values: {vault_token: new-value}
      no_log: true
"""


@pytest.fixture()
def env(tmp_path):
    prod_password = tmp_path / "prod.pass"
    prod_password.write_text("a-prod-password-nobody-published\n")
    prod_password.chmod(0o600)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    return tmp_path


def _run(tmp_path, identities, extra_vars):
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), str(tmp_path / "play.yml"), "-i", "localhost,"]
    for identity in identities:
        cmd += ["--vault-id", identity]
    cmd += ["-e", yaml.safe_dump(extra_vars, default_flow_style=True).strip()]
    environ = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    return subprocess.run(cmd, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)


def _header(path):
    return path.read_text().split("\n", 1)[0]


def _opens_with(path, identity):
    environ = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-vault")), "view", "--vault-id", identity, str(path)],
                          cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
    return proc.returncode == 0


def _encrypt(path, identity, content):
    path.write_text(content)
    environ = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    subprocess.run([str(Path(sys.executable).with_name("ansible-vault")), "encrypt", "--vault-id", identity,
                    "--encrypt-vault-id", identity.split("@")[0], str(path)],
                   cwd=ROOT, env=environ, check=True, capture_output=True, timeout=60)


def test_two_identities_loaded_new_file_gets_the_environment_identity(env):
    target = env / "vault_generated.yml"
    proc = _run(env, [f"lab@{LAB_PASSWORD_FILE}", f"prod@{env / 'prod.pass'}"],
                {"target": str(target), "isobar_vault_id": "prod"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert _header(target) == "$ANSIBLE_VAULT;1.2;AES256;prod"
    assert not _opens_with(target, f"lab@{LAB_PASSWORD_FILE}"), "the published lab password opens a prod secret"
    assert _opens_with(target, f"prod@{env / 'prod.pass'}")


def test_two_identities_loaded_prod_file_stays_prod(env):
    target = env / "vault.yml"
    _encrypt(target, f"prod@{env / 'prod.pass'}", "---\nvault_admin: old\n")
    proc = _run(env, [f"lab@{LAB_PASSWORD_FILE}", f"prod@{env / 'prod.pass'}"], {"target": str(target)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert _header(target) == "$ANSIBLE_VAULT;1.2;AES256;prod"
    assert not _opens_with(target, f"lab@{LAB_PASSWORD_FILE}")


def test_two_identities_loaded_and_none_named_is_refused_and_writes_nothing(env):
    target = env / "vault_generated.yml"
    proc = _run(env, [f"lab@{LAB_PASSWORD_FILE}", f"prod@{env / 'prod.pass'}"], {"target": str(target)})
    assert proc.returncode != 0
    assert "2 vault identities are loaded (lab, prod)" in proc.stdout and "isobar_vault_id" in proc.stdout
    assert not target.exists()


def test_the_lab_identity_is_refused_outside_the_lab(env):
    target = env / "vault_generated.yml"
    proc = _run(env, [f"lab@{LAB_PASSWORD_FILE}"], {"target": str(target)})
    assert proc.returncode != 0 and "published" in proc.stdout
    assert not target.exists()
    proc = _run(env, [f"lab@{LAB_PASSWORD_FILE}"], {"target": str(target), "isobar_lab_environment": True})
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert _header(target) == "$ANSIBLE_VAULT;1.2;AES256;lab"
