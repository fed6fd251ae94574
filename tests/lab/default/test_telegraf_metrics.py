"""Telegraf's own metrics for Prometheus (telegraf role, telegraf_metrics_enabled; issue 17.2): the agent serves its
statistics, and only them, over HTTPS with its own 0600 copy of the host certificate, refuses plain HTTP, lets only
the monitoring hosts through its firewall, and the figures say it delivers: metrics written to Kafka (and InfluxDB),
none dropped. The monitoring hosts' Prometheus scrapes it as job telegraf (test_monitoring.py), the platform
dashboard's Telegraf panels read it (test_dashboards.py)."""
from __future__ import annotations

import socket
import time

import pytest
from fixtures import metrics_endpoint
from fixtures.metrics_endpoint import labels

testinfra_hosts = ["ansible://telegraf"]


@pytest.fixture(scope="module")
def endpoint(host, inventory_vars):
    if not metrics_endpoint.telegraf_publishes_metrics(host):
        pytest.skip("the agent does not publish its metrics here (telegraf_metrics_enabled is false in this inventory)")
    name = host.backend.get_hostname()
    facts = inventory_vars(name, "isobar_address", "kafka_ca_file", "telegraf_metrics_port", "groups")
    facts["url"] = f"https://{facts['isobar_address']}:{facts['telegraf_metrics_port']}/metrics"
    facts["config"] = host.file("/etc/telegraf/telegraf.conf").content_string
    return facts


def test_its_certificate_copies_are_private_to_the_agent(host, endpoint):
    tls = host.file("/etc/telegraf/tls")
    assert (tls.user, tls.group, tls.mode) == ("root", "telegraf", 0o750)
    for name in ("metrics.crt", "metrics.key"):
        copy = host.file(f"/etc/telegraf/tls/{name}")
        assert (copy.user, copy.group, copy.mode) == ("telegraf", "telegraf", 0o600), name
    # The same certificate as the host's (the rotation's TLS step renews both).
    assert host.file("/etc/telegraf/tls/metrics.crt").content_string == host.file("/etc/isobar/pki/host.crt").content_string


def test_serves_only_the_agents_statistics_and_they_show_delivery(host, endpoint):
    outputs = {"kafka"} | ({"influxdb_v2"} if "[[outputs.influxdb_v2]]" in endpoint["config"] else set())
    # The counters start at 0 with the agent and are gathered every interval: an agent restarted a moment ago (the
    # verify's own test_pending_restart restarts it) serves nothing, then 0, until its first gathers and flushes; a
    # minute is several of both.
    deadline = time.monotonic() + 60
    while True:
        out = metrics_endpoint.fetch(host, endpoint["url"], endpoint["kafka_ca_file"], 60)
        values = metrics_endpoint.parse(out.stdout) if out.rc == 0 else {}
        written = {labels(s)["output"]: v for s, v in values.items() if s.startswith("internal_write_metrics_written{")}
        if (outputs <= set(written) and all(written[o] > 0 for o in outputs)) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert out.rc == 0, f"GET {endpoint['url']}: {out.stderr[-2000:]}"
    names = {series.split("{")[0] for series in values}
    assert names and all(name.startswith("internal_") for name in names), sorted(names - {
        n for n in names if n.startswith("internal_")})[:10]
    dropped = {labels(s)["output"]: v for s, v in values.items() if s.startswith("internal_write_metrics_dropped{")}
    assert outputs <= set(written), written
    assert all(written[o] > 0 for o in outputs), f"an output wrote nothing within a minute: {written}"
    assert all(v == 0 for v in dropped.values()), f"metrics dropped (buffer overflow): {dropped}"
    gathered = [v for s, v in values.items() if s.startswith("internal_agent_metrics_gathered")]
    assert gathered and sum(gathered) > 0


def test_plain_http_is_refused(host, endpoint):
    out = metrics_endpoint.plain_http(host, endpoint["url"])
    assert metrics_endpoint.refused_plain_http(out), out.stderr[-1000:]


def test_port_is_closed_to_this_machine(endpoint):
    """This machine is not a monitoring host: the firewall drops it (only telegraf_metrics_scrapers get in)."""
    with pytest.raises(OSError):
        socket.create_connection((endpoint["isobar_address"], endpoint["telegraf_metrics_port"]), timeout=3).close()


def test_a_monitoring_host_gets_through(lab_host, endpoint):
    monitors = endpoint["groups"].get("monitoring", [])
    if not monitors:
        pytest.skip("no monitoring host in this inventory")
    values = metrics_endpoint.scrape(lab_host(monitors[0]), endpoint["url"], endpoint["kafka_ca_file"])
    assert any(s.startswith("internal_write_metrics_written{") for s in values)
