"""Facts are not injected as top-level variables (ansible.cfg and every Molecule scenario: inject_facts_as_vars =
false, which makes each task cheaper to prepare), so nothing the project runs may read a fact that way: roles,
playbooks, templates, lab and Molecule playbooks read ``ansible_facts['...']``. The fact names are those of a real
``setup`` run on this machine."""
from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["roles", "playbooks", "lab", "molecule", "plugins", "site.yml", "inventories"]
SUFFIXES = {".yml", ".yaml", ".j2", ".py"}


@pytest.fixture(scope="module")
def fact_variables():
    """ansible_<name> of every fact setup gathers here (ansible_facts['<name>'])."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible")), "localhost", "-c", "local", "-i",
                           "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", "-m",
                           "ansible.builtin.setup"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    facts = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]["ansible_facts"]
    names = {name if name.startswith("ansible_") else f"ansible_{name}" for name in facts}
    assert {"ansible_distribution", "ansible_architecture", "ansible_env"} <= names, sorted(names)[:20]
    return names


def uses(text, names):
    """Fact variables read at the top level in text (ansible_facts['x'] and longer names do not count)."""
    return sorted({match for match in re.findall(r"\bansible_[a-z0-9_]+\b", text) if match in names})


def test_the_scan_finds_a_top_level_fact():
    names = {"ansible_distribution", "ansible_python"}
    assert uses("when: ansible_distribution == 'Debian'", names) == ["ansible_distribution"]
    assert uses("ansible_facts['distribution'] ansible_python_interpreter", names) == []


def test_facts_are_not_injected_anywhere_we_run_ansible():
    config = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#",))
    config.read(ROOT / "ansible.cfg")
    assert config.getboolean("defaults", "inject_facts_as_vars") is False
    for scenario in sorted((ROOT / "molecule").glob("*/molecule.yml")):
        defaults = yaml.safe_load(scenario.read_text())["ansible"]["cfg"]["defaults"]
        assert defaults.get("inject_facts_as_vars") is False, scenario


def test_nothing_reads_a_fact_as_a_top_level_variable(fact_variables):
    found = {}
    for entry in SCANNED:
        path = ROOT / entry
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()]
        for file in files:
            names = uses(file.read_text(errors="replace"), fact_variables)
            if names:
                found[str(file.relative_to(ROOT))] = names
    assert found == {}, f"read them as ansible_facts['<name>']: {found}"
