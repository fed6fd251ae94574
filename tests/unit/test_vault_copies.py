"""A task copying a vault file from the controller keeps it encrypted (decrypt: false). ansible.builtin.copy
decrypts a vaulted source by default: bench/create.yml's "Copy the lab vault" wrote the bench lab's secrets in clear
into its inventory (0600, but no longer a vault), and the secret rotation then refused to write to that file ("exists
but is not vault encrypted"), seen on the bench lab on 2026-12-05 at the end of a CA renewal."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_DIRS = ["bench", "lab", "molecule", "playbooks", "roles"]
# isobar.pipeline.copy_file is ansible.builtin.copy with a check first: it decrypts the same way
COPY_ACTIONS = ("ansible.builtin.copy", "copy", "isobar.pipeline.copy_file")


def tasks_of(node):
    """Every task mapping in a loaded playbook or task file (plays' tasks, blocks, handlers)."""
    if isinstance(node, list):
        for item in node:
            yield from tasks_of(item)
    elif isinstance(node, dict):
        if any(k in node for k in COPY_ACTIONS):
            yield node
        for key in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always"):
            if key in node:
                yield from tasks_of(node[key])


def vault_copies():
    for top in PLAYBOOK_DIRS:
        for path in sorted((ROOT / top).rglob("*.yml")):
            if "/inventory/" in str(path) or "vault" in path.name:
                continue
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError:
                continue
            for task in tasks_of(data):
                args = next((task[k] for k in COPY_ACTIONS if k in task), None) or {}
                if isinstance(args, dict) and "vault" in str(args.get("src", "")):
                    yield pytest.param(path, task, id=f"{path.relative_to(ROOT)}: {task.get('name')}")


COPIES = list(vault_copies())


def test_the_vault_copies_are_found():
    assert len(COPIES) >= 2  # bench/create.yml and molecule/shared/create.yml copy the lab vault


@pytest.mark.parametrize(("path", "task"), COPIES)
def test_a_vault_file_is_copied_encrypted(path, task):
    args = next(task[k] for k in COPY_ACTIONS if k in task)
    assert args.get("decrypt") is False, f"{path.relative_to(ROOT)}: '{task.get('name')}' copies a vault in clear: add decrypt: false"
