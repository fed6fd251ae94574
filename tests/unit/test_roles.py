"""Role conventions: every default is commented and declared in argument_specs; READMEs are in sync."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "defaults" / "main.yml").exists())


def spec_options(role):
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    names = set()
    for entry in specs.values():
        names.update((entry.get("options") or {}).keys())
    return names


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_default_is_declared_in_argument_specs(role):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    missing = sorted(set(defaults) - spec_options(role))
    assert not missing, f"{role.name}: add to meta/argument_specs.yml: {missing}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_default_has_a_comment_above_it(role):
    """A default, or the block of defaults it belongs to, sits right under a comment line."""
    lines = (role / "defaults" / "main.yml").read_text().splitlines()
    key = re.compile(r"^[a-z][a-z0-9_]*:")
    bare = []
    for number, line in enumerate(lines):
        if key.match(line):
            above = number - 1
            while above >= 0 and (key.match(lines[above]) or lines[above].startswith((" ", "-"))):
                above -= 1  # another key of the same block, or the previous key's value lines
            if above < 0 or not lines[above].startswith("#"):
                bare.append(line.split(":")[0])
    assert not bare, f"{role.name}: document these defaults with a comment line: {bare}"


def test_role_readmes_list_the_variables():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "role_readme.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# A role publishing a secret it has just generated (the first deploy's InfluxDB tokens) to the later plays of the same
# run: the generated vault gets the value in the same step, so the next run reads the same value from the inventory.
PUBLISHED_BY_THEIR_ROLE = {("influxdb", "influxdb_operator_token"), ("influxdb", "influxdb_client_tokens")}


def inventory_names():
    """Every variable an inventory of the project defines (group_vars, host_vars; vault files are encrypted)."""
    names = set()
    for pattern in ("inventories/*/group_vars/**/*.yml", "inventories/*/host_vars/**/*.yml",
                    "molecule/*/inventory/group_vars/**/*.yml", "molecule/*/inventory/host_vars/**/*.yml"):
        for path in ROOT.glob(pattern):
            data = yaml.safe_load(path.read_text())
            if isinstance(data, dict):
                names.update(data)
    return names


def set_fact_names(tasks):
    """Names set by set_fact in a list of tasks, blocks included."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always"):
            yield from set_fact_names(task.get(key))
        for module in ("ansible.builtin.set_fact", "set_fact"):
            if isinstance(task.get(module), dict):
                yield from (name for name in task[module] if name != "cacheable")


def task_lists():
    """(owner, tasks) of every task and handler file of the roles, and of every play of the playbooks."""
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")) + sorted(ROOT.glob("roles/*/handlers/*.yml")):
        yield path.parts[len(ROOT.parts) + 1], path, yaml.safe_load(path.read_text())
    for path in sorted(ROOT.glob("playbooks/**/*.yml")) + sorted(ROOT.glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, list):
            continue
        if any(isinstance(play, dict) and "hosts" in play for play in data):
            for play in data:
                for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                    yield "playbooks", path, play.get(key)
        else:
            yield "playbooks", path, data  # a task file included by a playbook


def test_no_set_fact_overwrites_an_inventory_name():
    """Issue 13.3: operations hand new values to roles as explicit inputs, never by overwriting an inventory name
    (kafka_scram_passwords, influxdb_client_tokens, ...) with set_fact for the rest of the run."""
    inventory = inventory_names()
    assert {"kafka_scram_passwords", "influxdb_client_tokens", "kafdrop_basic_auth_password"} <= inventory
    found = sorted({f"{path.relative_to(ROOT)}: {name}" for owner, path, tasks in task_lists()
                    for name in set_fact_names(tasks)
                    if name in inventory and (owner, name) not in PUBLISHED_BY_THEIR_ROLE})
    assert not found, f"set_fact overwrites inventory names: {found}"
