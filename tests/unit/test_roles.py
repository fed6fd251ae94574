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
