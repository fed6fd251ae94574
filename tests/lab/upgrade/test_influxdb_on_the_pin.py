"""The default scenario's InfluxDB checks again, after the upgrade: the test lab converged one release behind the
influxdb role's pin (tools/artifacts/upgrade-targets.yml influxdb_from, molecule/shared/inventory), so this is where
make test checks the pinned release (HTTPS, hardened service, firewall, least-privilege tokens, inject, alert chain)."""
from __future__ import annotations

# Every test and fixture of the default scenario's module, collected again here, on the upgraded host.
from lab.default.test_influxdb import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from lab.default.test_influxdb import installed_version
from lab.upgrade.test_upgrade import INFLUXDB_TO


def test_the_host_runs_the_pinned_release(host):
    assert installed_version(host) == INFLUXDB_TO
