"""docs/deploy-real-vms.md as a new user follows it (issue 12.6): every command of its shell blocks is run here, in a
copy of the checkout, in the order of the document. Only two things differ from a person at a terminal:
`--vault-id prod@prompt` reads the same password from a 0600 file (the form the document gives next to it), and the
playbook commands list their hosts and tasks (`--list-tasks`) instead of connecting: the example inventory's hosts
are not ours to reach. The same playbooks run for real over SSH as a sudo user on the test lab (Molecule: converge,
idempotence, the rotation), under an identity of its own.

A command added to the document without being handled here fails the test, so the document cannot drift.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "deploy-real-vms.md"
BIN = Path(sys.executable).parent
LAB_PASSWORD_FILE = ROOT / "inventories" / "lab" / "vault-password.txt"
# what a copy of the checkout does not need (and must not share: caches, the venv is used from its place)
SKIP = shutil.ignore_patterns(".git", ".venv", ".reports", ".pytest_cache", "__pycache__", ".private-lab", ".lock-venv",
                              "results")


def doc_lines() -> list[tuple[str, str | None]]:
    """The document's ```bash blocks as (command, the output its trailing ` # ` comment promises or None), in order."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append((command, line.split(" # ", 1)[1].strip() if " # " in line else None))
    return lines


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    work = tmp_path_factory.mktemp("deploy-doc")
    tree = work / "isobar"
    shutil.copytree(ROOT, tree, symlinks=True, ignore=SKIP)
    for generated in ("vault.yml", "vault_generated.yml"):  # a fresh checkout has neither in the example
        (tree / "inventories" / "example" / "group_vars" / "all" / generated).unlink(missing_ok=True)
    password = work / "prod.pass"
    password.write_text("a-prod-password-nobody-published\n", encoding="utf-8")
    password.chmod(0o600)
    # Nothing from this machine's Ansible settings: only the checkout's ansible.cfg, as in a fresh clone.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(tree / "ansible.cfg"), PATH=f"{BIN}:{env.get('PATH', '')}",
               ANSIBLE_LOCAL_TEMP=str(work / "tmp"), ANSIBLE_HOME=str(work / "ansible-home"))
    return {"tree": tree, "password": password, "env": env}


def run(checkout, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=checkout["tree"], env=checkout["env"], capture_output=True, text=True, timeout=300)


def fill_vault_values(path: Path) -> None:
    """What `$EDITOR vault.yml` does in the document: every placeholder replaced with a generated secret."""
    import secrets

    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return secrets.token_urlsafe(24)

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(fill(data), default_flow_style=False), encoding="utf-8")


def test_every_command_of_the_document_runs_as_written(checkout):
    handled = []
    lines = doc_lines()
    for command, promised in lines:
        argv = shlex.split(command.replace("prod@prompt", f"prod@{checkout['password']}"))
        if argv[0] == "cp":
            proc = run(checkout, argv)
        elif argv[0] == "$EDITOR":
            fill_vault_values(checkout["tree"] / argv[1])
            handled.append(command)
            continue
        elif argv[0] == "ansible-vault":
            proc = run(checkout, [str(BIN / "ansible-vault")] + argv[1:])
        elif argv[0] == "head":
            proc = run(checkout, argv)
            assert promised and proc.stdout.strip() == promised, f"{command}: {proc.stdout.strip()!r}, the document says {promised!r}"
        elif argv[0] == "ansible-playbook":
            # The example hosts are not ours: list what would run instead of connecting. Parsing the playbook with the
            # copied inventory and its vault (decrypted with the prod identity) is what this proves.
            proc = run(checkout, [str(BIN / "ansible-playbook")] + argv[1:] + ["--list-tasks"])
            assert "play #1" in proc.stdout, f"{command}: no play listed: {proc.stdout[-1000:]}"
            if argv[1] == "site.yml":
                assert "Preflight" in proc.stdout, f"{command}: no preflight task listed: {proc.stdout[-1000:]}"
        else:
            pytest.fail(f"docs/deploy-real-vms.md has a command this test does not run: {command}")
        assert proc.returncode == 0, f"{command} failed (rc {proc.returncode}): {proc.stderr[-1500:]}"
        handled.append(command)
    assert handled == [command for command, _ in lines]
    assert len([c for c in handled if c.startswith("ansible-playbook")]) >= 3, "the deploy and patch commands were not found"


def test_the_prod_vault_opens_with_its_own_identity_only(checkout):
    """After the document's steps the vault is a prod vault: its password opens it, the lab's published one does not."""
    vault = checkout["tree"] / "inventories" / "prod" / "group_vars" / "all" / "vault.yml"
    assert vault.read_text(encoding="utf-8").startswith("$ANSIBLE_VAULT;1.2;AES256;prod\n")
    opened = run(checkout, [str(BIN / "ansible-vault"), "view", "--vault-id", f"prod@{checkout['password']}", str(vault)])
    assert opened.returncode == 0 and "changeme" not in opened.stdout, opened.stderr[-500:]
    refused = run(checkout, [str(BIN / "ansible-vault"), "view", "--vault-id", f"lab@{LAB_PASSWORD_FILE}", str(vault)])
    assert refused.returncode != 0 and "Decryption failed" in refused.stderr, refused.stderr[-500:]
