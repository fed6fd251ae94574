"""The environment's secrets are written under its own vault identity (issue 12.2).

The test lab is deployed as a real environment would be: its identity is ``isobar_vault_id`` (staging) and the lab's
published identity is loaded too, so a write that took the first loaded secret would land under ``lab``. After the
converge (which writes the generated vault) both vault files must carry the environment's id in their header, and
the lab's published password must not open them.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LAB_PASSWORD_FILE = ROOT / "inventories" / "lab" / "vault-password.txt"


@pytest.fixture(scope="module")
def environment(inventory_vars):
    # an inventory host: the vault paths are relative to its inventory_dir, which the implicit localhost lacks
    host = inventory_vars("localhost", "groups")["groups"]["all"][0]
    return inventory_vars(host, "isobar_vault_id", "isobar_lab_environment", "isobar_vault_file",
                          "isobar_generated_vault_file")


@pytest.mark.parametrize("which", ["isobar_vault_file", "isobar_generated_vault_file"])
def test_vault_files_carry_the_environments_identity(environment, which):
    path = Path(environment[which])
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("$ANSIBLE_VAULT;1.2;AES256;"), f"{path}: not a labelled whole-file vault: {header}"
    assert header.rsplit(";", 1)[1] == environment["isobar_vault_id"], f"{path}: {header}"


@pytest.mark.parametrize("which", ["isobar_vault_file", "isobar_generated_vault_file"])
def test_the_lab_password_opens_the_lab_only(environment, which, tmp_path):
    """Another environment's vault refuses the lab's published password; the lab's own vault (this inventory being
    the lab, `make lab`) is meant to open with it."""
    # Only the lab identity is offered: no ansible.cfg or environment variable may add the environment's own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(tmp_path / "none.cfg")
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-vault")), "view", "--vault-id",
                           f"lab@{LAB_PASSWORD_FILE}", environment[which]], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)
    if environment["isobar_lab_environment"]:
        assert proc.returncode == 0, f"the lab's vault {environment[which]} does not open with its password: {proc.stderr[-300:]}"
        return
    assert proc.returncode != 0, f"{environment[which]} opened with the lab's published password"
    assert "Decryption failed" in proc.stderr or "no vault secrets" in proc.stderr.lower(), proc.stderr[-300:]
