"""Every lab host: base and pki roles (firewall, time zone, journald, certificates)."""

from fixtures.ansible_env import ansible_env

testinfra_hosts = ["ansible://all"]


def test_systemd_is_pid1(host):
    assert host.process.get(pid=1).comm == "systemd"


def test_firewall_drops_by_default(host):
    ruleset = host.check_output("nft list table inet isobar")
    assert "policy drop" in ruleset
    assert host.service("nftables").is_enabled


def test_time_zone(host):
    assert host.file("/etc/localtime").is_symlink
    assert host.file("/etc/timezone").content_string.strip() == "Etc/UTC"


def test_journald_is_capped(host):
    conf = host.file("/etc/systemd/journald.conf.d/60-isobar.conf")
    assert conf.exists and "SystemMaxUse=" in conf.content_string


def test_host_key_is_private(host):
    key = host.file("/etc/isobar/pki/host.key")
    assert key.user == "root" and key.mode == 0o600


def test_host_certificate_verifies_against_ca(host):
    out = host.run("openssl verify -CAfile /etc/isobar/pki/ca.crt /etc/isobar/pki/host.crt")
    assert out.rc == 0, out.stderr


def test_ca_is_in_system_trust(host):
    assert host.file("/etc/ssl/certs/isobar-ca.pem").exists


def test_no_compiler_toolchain(host):
    """No C compiler on a pipeline host: nothing here builds code, and a compiler helps an intruder more than anyone.
    The client venv once installed python3-pip with its recommended build-essential and python3-dev."""
    present = [name for name in ("build-essential", "gcc", "python3-dev") if host.package(name).is_installed]
    assert not present, f"compiler toolchain packages installed: {present}"
    assert not host.exists("gcc") and not host.exists("cc"), "a C compiler is on the PATH"


def test_lab_info_prints_the_endpoints(inventory_path, inventory_vars):
    """`make lab` ends with lab/info.yml: it must resolve the inventory's endpoints (a green converge once hid
    that it could not)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    env = ansible_env()
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", inventory_path,
                           str(root / "lab" / "info.yml")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    lines = [line for play in report["plays"] for task in play["tasks"] for result in task["hosts"].values()
             for line in result.get("msg", [])]
    influxdb_host = inventory_vars("localhost", "groups")["groups"]["influxdb"][0]
    url = inventory_vars(influxdb_host, "influxdb_url")["influxdb_url"]
    assert any(url in line for line in lines), lines


def test_reached_over_ssh_as_a_sudo_user_on_the_inventory_port(host, inventory_vars):
    """The lab hosts are reached like VMs (issue 12): SSH as deploy with sudo, on the inventory's port, which
    sshd serves and the firewall opens (the test lab uses a non-default port)."""
    name = host.backend.host
    port = int(inventory_vars(name, "ansible_port")["ansible_port"])
    assert host.backend.ansible_runner.get_host(name).backend.NAME == "ssh"
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert f"tcp dport {port} accept" in host.check_output("nft list table inet isobar")
    assert host.user("deploy").exists and host.user("deploy").uid != 0
    assert host.file("/etc/sudoers.d/isobar-deploy").mode == 0o440
