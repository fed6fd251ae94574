"""Supported platforms: the platform_check decision (plugins/plugin_utils/platform_support.py) and the roles'
declarations (meta/main.yml platforms, and a vars/Debian-<N>.yml for each declared release where a role has them)."""
from __future__ import annotations

from itertools import dropwhile
from pathlib import Path

import pytest
import yaml
from ansible_collections.isobar.pipeline.plugins.plugin_utils.platform_support import (
    DEBIAN_NUMBERS, PlatformError, declared_platforms, platform_problem)

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "meta" / "main.yml").exists())
# Roles with values that differ by release (vars/Debian-<N>.yml, loaded by their preflight).
RELEASE_VARS_ROLES = [r for r in ROLES if list((r / "vars").glob("Debian-*.yml"))]
SUPPORTED = {"Debian": ["bookworm", "trixie"]}


def facts(major, codename, distribution="Debian"):
    return {"distribution": distribution, "distribution_major_version": major, "distribution_release": codename,
            "distribution_version": f"{major}.1"}


def test_both_supported_debian_releases_pass():
    assert platform_problem("kafka", SUPPORTED, facts("12", "bookworm")) is None
    assert platform_problem("kafka", SUPPORTED, facts("13", "trixie")) is None


def test_debian_11_is_refused_with_what_runs_and_what_is_supported():
    problem = platform_problem("kafka", SUPPORTED, facts("11", "bullseye"), host="kafka3")
    assert problem == (
        "kafka3 runs Debian 11.1 (bullseye), which the kafka role does not support. Supported: Debian 12 (bookworm),"
        " Debian 13 (trixie) (roles/kafka/meta/main.yml). Use a supported release (docs/deploy-real-vms.md)."
        " Nothing was changed.")


def test_another_distribution_with_a_supported_codename_is_refused():
    assert "Ubuntu 24.04" in platform_problem("base", SUPPORTED, {"distribution": "Ubuntu", "distribution_release":
                                                                   "trixie", "distribution_version": "24.04"})


def test_missing_facts_say_to_gather_them():
    assert "gather them" in platform_problem("base", SUPPORTED, {})


def test_a_declaration_without_platforms_is_an_error():
    with pytest.raises(PlatformError, match="no galaxy_info.platforms"):
        declared_platforms({"galaxy_info": {}})
    with pytest.raises(PlatformError, match="needs a name and versions"):
        declared_platforms({"galaxy_info": {"platforms": [{"name": "Debian"}]}})


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_role_declares_debian_12_and_13(role):
    declared = declared_platforms(yaml.safe_load((role / "meta" / "main.yml").read_text()))
    assert declared == SUPPORTED, f"{role.name}: meta/main.yml platforms should be {SUPPORTED}, got {declared}"


def test_the_java_roles_keep_release_specific_values():
    assert [r.name for r in RELEASE_VARS_ROLES] == ["kafdrop", "kafka"]


@pytest.mark.parametrize("role", RELEASE_VARS_ROLES, ids=lambda p: p.name)
def test_release_vars_cover_exactly_the_declared_releases(role):
    """A role that keeps release-specific values has one vars file per declared release, with the same keys."""
    files = sorted((role / "vars").glob("Debian-*.yml"))
    declared = declared_platforms(yaml.safe_load((role / "meta" / "main.yml").read_text()))
    assert [f.name for f in files] == sorted(f"Debian-{DEBIAN_NUMBERS[c]}.yml" for c in declared["Debian"])
    keys = [sorted(yaml.safe_load(f.read_text())) for f in files]
    assert all(k == keys[0] for k in keys), f"{role.name}: the release vars files set different names: {keys}"


@pytest.mark.parametrize("role", [r for r in ROLES if yaml.safe_load((r / "tasks" / "main.yml").read_text())],
                         ids=lambda p: p.name)
def test_every_role_with_tasks_checks_the_platform_first(role):
    """The first task the role runs (its preflight) is platform_check, so an unsupported host is refused unchanged. Only
    an end_role may come before it (client_venv's, which ends the role where this run already ran it whole)."""
    tasks = yaml.safe_load((role / "tasks" / "main.yml").read_text())
    first = next(dropwhile(lambda task: task.get("ansible.builtin.meta") == "end_role", tasks))
    while "ansible.builtin.import_tasks" in first:
        first = yaml.safe_load((role / "tasks" / first["ansible.builtin.import_tasks"]).read_text())[0]
    assert "isobar.pipeline.platform_check" in first, f"{role.name}: first task is {first.get('name')}"
