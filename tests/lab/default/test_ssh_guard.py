"""The lock-out guard of the base role on a real lab host reached over SSH (issue 12.3). One host is enough: the
check runs a real base play."""
import subprocess
import sys
from pathlib import Path

from fixtures.ansible_env import ansible_env

testinfra_hosts = ["ansible://influxdb"]


def test_a_firewall_that_excludes_the_controller_is_refused(host, inventory_path):
    """The lock-out guard on a real host over SSH: SSH sources without the controller stop the base play in
    preflight, nothing changes, and the host still answers SSH."""
    name = host.backend.host
    root = Path(__file__).resolve().parents[3]
    before = host.check_output("nft list table inet isobar")
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", inventory_path,
                           str(root / "playbooks" / "base.yml"), "--limit", name,
                           "-e", '{"base_firewall_ssh_sources": ["127.0.0.1/32"]}'],
                          cwd=root, env=ansible_env(json_callback=False), capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Refusing to load a firewall that would lock this controller out" in proc.stdout, proc.stdout[-3000:]
    assert "which is not in base_firewall_ssh_sources ['127.0.0.1/32']" in proc.stdout
    assert "changed=0" in proc.stdout.rsplit("PLAY RECAP", 1)[-1]
    assert host.check_output("nft list table inet isobar") == before
