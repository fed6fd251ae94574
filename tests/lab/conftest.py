"""Helpers for the testinfra verify tests of the lab scenarios (tests/lab/<scenario>/test_*.py).

``inventory_vars`` reads variables as Ansible resolves them for a host (templated, vault decrypted),
from the inventory testinfra was given (``--ansible-inventory``; Molecule passes it), so tests never
hard-code addresses or secrets::

    def test_x(inventory_vars):
        facts = inventory_vars("kafka1", "kafka_bootstrap_servers", "kafka_scram_passwords")
        facts["kafka_bootstrap_servers"]

``lab_host(name)`` gives a testinfra host for one inventory host (e.g. to read a file from it in a
test that is not parametrized over hosts). Values are kept in memory only; never print secrets.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from fixtures.ansible_env import ansible_env

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INVENTORY = ROOT / "inventories" / "lab"


def _inventory(config) -> str:
    value = None
    try:
        value = config.getoption("ansible_inventory")
    except ValueError:  # testinfra's plugin not loaded
        pass
    return str(value or DEFAULT_INVENTORY)


def _ansible_playbook() -> str:
    candidate = Path(sys.executable).with_name("ansible-playbook")
    return str(candidate) if candidate.exists() else "ansible-playbook"


@pytest.fixture(scope="session")
def inventory_path(request) -> str:
    return _inventory(request.config)


@pytest.fixture(scope="session")
def inventory_vars(inventory_path):
    """inventory_vars(host, *names) -> {name: value} as Ansible resolves them for host."""
    cache: dict[tuple[str, str], object] = {}

    def read(host: str, *names: str) -> dict:
        missing = [n for n in names if (host, n) not in cache]
        if missing:
            expression = "{{ {" + ", ".join(f"'{n}': {n}" for n in missing) + "} | to_json }}"
            # A play with the topology role: the pipeline's names are its defaults, not inventory variables.
            playbook = Path(tempfile.mkdtemp(prefix="isobar-vars-")) / "read.yml"
            playbook.write_text(yaml.safe_dump([{
                "name": "Read variables", "hosts": host, "gather_facts": False,
                "roles": [{"role": "isobar.pipeline.topology"}],
                "tasks": [{"name": "Show", "ansible.builtin.debug": {"msg": expression}}],
            }]))
            try:
                proc = subprocess.run([_ansible_playbook(), "-i", inventory_path, str(playbook)],
                                      cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=120)
            finally:
                shutil.rmtree(playbook.parent, ignore_errors=True)
            try:
                result = json.loads(proc.stdout)["plays"][0]["tasks"][-1]["hosts"][host]
                values = json.loads(result["msg"]) if isinstance(result["msg"], str) else result["msg"]
            except (ValueError, KeyError, IndexError, TypeError):
                # stdout may hold secrets: report only the command's shape and stderr.
                raise AssertionError(f"could not read {missing} for {host} from {inventory_path} "
                                     f"(rc={proc.returncode}): {proc.stderr[-2000:]}") from None
            for name in missing:
                cache[(host, name)] = values[name]
        return {name: cache[(host, name)] for name in names}

    return read


@pytest.fixture(scope="session")
def lab_host(inventory_path):
    """lab_host(name) -> a testinfra host for that inventory host."""
    import testinfra

    hosts = {}

    def get(name: str):
        if name not in hosts:
            hosts[name] = testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory_path}")
        return hosts[name]

    return get
