"""The inventories built from links to the lab inventory (Molecule's test lab, the bench lab) must see every
group_vars file of the lab inventory, and nothing else through their links."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab" / "group_vars"
LINKED = {
    "test lab": ROOT / "molecule" / "shared" / "inventory" / "group_vars",
    "bench lab": ROOT / "bench" / "inventory" / "group_vars",
}
GENERATED = {"vault_generated.yml", "vault.yml"}  # the linked inventories have their own copies


@pytest.mark.parametrize("name", sorted(LINKED))
def test_every_lab_group_vars_entry_is_linked(name):
    linked = LINKED[name]
    missing = []
    for entry in sorted(LAB.iterdir()):
        if entry.is_dir() and entry.name == "all":
            for item in sorted(entry.iterdir()):
                if item.name not in GENERATED and not (linked / "all" / item.name).exists():
                    missing.append(f"all/{item.name}")
        elif not (linked / entry.name).exists():
            missing.append(entry.name)
    assert not missing, f"link these into {linked.relative_to(ROOT)}: {missing}"


@pytest.mark.parametrize("name", sorted(LINKED))
def test_links_resolve_to_the_lab_files(name):
    for link in LINKED[name].rglob("*"):
        if link.is_symlink():
            # The link's own target (the lab's file may itself link to the example inventory's, which users copy).
            target = Path(os.path.normpath(link.parent / os.readlink(link)))
            assert target.is_relative_to(LAB), f"{link} points outside the lab inventory"
            assert link.resolve().exists(), f"{link} is dangling"


def test_the_pipeline_names_have_one_home():
    """Topics, principals, ports and URLs live in the topology role's defaults, not in an inventory (where the
    example and bench inventories had to link to the lab's copy)."""
    import yaml

    names = set(yaml.safe_load((ROOT / "roles" / "topology" / "defaults" / "main.yml").read_text()))
    redeclared = {}
    for base in (ROOT / "inventories", ROOT / "molecule" / "shared" / "inventory", ROOT / "bench" / "inventory"):
        for path in sorted(base.rglob("*.yml")):
            if path.name.startswith("vault") or path.is_symlink():
                continue
            data = yaml.safe_load(path.read_text()) or {}
            keys = set(data) | set((data.get("all") or {}).get("vars") or {}) if isinstance(data, dict) else set()
            if keys & names:
                redeclared[str(path.relative_to(ROOT))] = sorted(keys & names)
    assert not redeclared, f"set in roles/topology/defaults/main.yml instead: {redeclared}"


def test_the_lab_is_mixed_so_one_converge_covers_both_releases():
    """At least one broker, the InfluxDB host and the monitor host on Debian 13, the other brokers on 12 (issue 18);
    the test lab and the bench lab use the same hosts (their 00-lab.yml links to this file)."""
    import yaml
    hosts = yaml.safe_load((ROOT / "inventories" / "lab" / "hosts.yml").read_text())["all"]["children"]
    brokers = hosts["kafka_brokers"]["hosts"]
    suite = {name: (vars_ or {}).get("lab_suite") for group in hosts.values() for name, vars_ in group["hosts"].items()
             if vars_}
    assert {suite[b] for b in brokers} == {"bookworm", "trixie"}, suite
    assert suite["influxdb1"] == "trixie" and suite["monitor"] == "trixie", suite
    for layered in (ROOT / "molecule" / "shared" / "inventory", ROOT / "bench" / "inventory"):
        assert (layered / "00-lab.yml").resolve() == ROOT / "inventories" / "lab" / "hosts.yml", layered


SSH_INVENTORIES = {
    "dev lab": [ROOT / "inventories" / "lab" / "hosts.yml"],
    "test lab": [ROOT / "inventories" / "lab" / "hosts.yml", ROOT / "molecule" / "shared" / "inventory" / "90-molecule.yml"],
    "bench lab": [ROOT / "inventories" / "lab" / "hosts.yml", ROOT / "bench" / "inventory" / "90-bench.yml"],
}


def _layered_hosts(files):
    """{host: variables} of an inventory made of layered YAML files (all.vars, then each host's own), as Ansible
    merges them for the connection variables used here."""
    import yaml

    common, hosts = {}, {}

    def walk(group):
        for name, variables in (group.get("hosts") or {}).items():
            hosts.setdefault(name, {}).update(variables or {})
        for child in (group.get("children") or {}).values():
            walk(child or {})

    for path in files:
        top = yaml.safe_load(path.read_text())["all"]
        common.update(top.get("vars") or {})
        walk(top)
    return {name: {**common, **variables} for name, variables in hosts.items()}


@pytest.mark.parametrize("name", sorted(SSH_INVENTORIES))
def test_lab_hosts_are_reached_over_ssh_as_a_sudo_user(name):
    """Every lab reaches its hosts like VMs (issue 12): SSH as deploy, a container name for the lab engine, the
    lab's own key and known_hosts side by side (lab/create.yml writes both there). testinfra reads the inventory
    raw (ansible-inventory --list does not template), so what it connects with must be written out."""
    hosts = _layered_hosts(SSH_INVENTORIES[name])
    assert hosts
    keys = set()
    for host, variables in hosts.items():
        assert variables["ansible_connection"] == "ssh" and variables["ansible_user"] == "deploy", host
        assert variables["lab_container"].startswith("isobar-"), host
        assert variables["ansible_host"] == variables["isobar_address"], host
        for literal in ("ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file",
                        "ansible_ssh_common_args"):
            assert "{{" not in str(variables[literal]), f"{host}: testinfra cannot use a templated {literal}"
        key = variables["ansible_ssh_private_key_file"]
        known_hosts = str(Path(key).parent / "known_hosts")
        assert f"UserKnownHostsFile={known_hosts}" in variables["ansible_ssh_common_args"], host
        assert "StrictHostKeyChecking=yes" in variables["ansible_ssh_common_args"], host
        keys.add(key)
    assert len(keys) == 1, f"one key per lab: {keys}"


def test_each_lab_has_its_own_key_and_the_test_lab_a_non_default_port():
    keys = {name: next(iter(_layered_hosts(files).values()))["ansible_ssh_private_key_file"]
            for name, files in SSH_INVENTORIES.items()}
    assert len(set(keys.values())) == len(keys), keys
    ports = {v["ansible_port"] for v in _layered_hosts(SSH_INVENTORIES["test lab"]).values()}
    assert ports and 22 not in ports, "the test lab proves ansible_port reaches sshd and the firewall"
