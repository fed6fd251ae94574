"""Both supported Debian releases in one lab: each host runs the release of its image (lab_suite), at least one
broker, the InfluxDB host and the monitor host on Debian 13 (the JVM of each release: test_kafka.py)."""
from __future__ import annotations

testinfra_hosts = ["ansible://all"]

SUITES = {"bookworm": "12", "trixie": "13"}


def os_release(host):
    return dict(line.split("=", 1) for line in host.file("/etc/os-release").content_string.splitlines() if "=" in line)


def test_the_host_runs_a_supported_debian_release(host):
    release = os_release(host)
    assert release["ID"] == "debian" and SUITES.get(release["VERSION_CODENAME"]) == release["VERSION_ID"].strip('"')


def test_the_lab_runs_both_releases(lab_host):
    codenames = {name: os_release(lab_host(name))["VERSION_CODENAME"] for name in ("kafka1", "kafka3", "influxdb1", "monitor")}
    assert codenames == {"kafka1": "bookworm", "kafka3": "trixie", "influxdb1": "trixie", "monitor": "trixie"}
