"""The brokers' JMX exporter agent (kafka role): served over HTTPS only with the host certificate, firewalled to
the monitoring hosts, and exposing every Kafka metric the alert rules of roles/monitoring use, with the values a
healthy cluster has (one active controller, nothing offline or under-replicated, traffic on the weather topic).

Scraped from each broker itself (loopback is always allowed; this machine is not a monitoring host)."""
from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import yaml
from fixtures import metrics_endpoint

testinfra_hosts = ["ansible://kafka_brokers"]
ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "roles" / "monitoring" / "files" / "rules" / "kafka.rules.yml"
# A role default, not a pipeline name (the inventory reader resolves the topology role's names only).
PORT = yaml.safe_load((ROOT / "roles" / "kafka" / "defaults" / "main.yml").read_text())["kafka_jmx_exporter_port"]



def agent_enabled(node):
    return "-javaagent:" in node.file("/etc/systemd/system/kafka.service").content_string


@pytest.fixture
def broker(host, inventory_vars):
    if not agent_enabled(host):
        pytest.skip("the JMX exporter agent is not on this broker's command line (kafka_jmx_exporter_enabled: false)")
    name = host.backend.get_hostname()
    facts = inventory_vars(name, "isobar_address", "kafka_ca_file", "groups")
    facts["url"] = f"https://{facts['isobar_address']}:{PORT}/metrics"
    return facts


def scrape(host, broker):
    return metrics_endpoint.scrape(host, broker["url"], broker["kafka_ca_file"], timeout=30)


def test_agent_serves_the_metrics_the_rules_use_over_https(host, broker):
    values = scrape(host, broker)
    names = {key.split("{")[0] for key in values}
    used = set(re.findall(r"\bkafka_(?:server|controller|network)_[a-z_]+", RULES.read_text()))
    assert used and used <= names, f"rules use metrics this broker does not export: {sorted(used - names)}"
    assert values["kafka_server_replicamanager_underreplicatedpartitions"] == 0
    assert values["kafka_server_replicamanager_offlinereplicacount"] == 0


def test_one_active_controller_and_weather_traffic_across_the_brokers(lab_host, inventory_vars):
    controllers, weather_bytes_in = 0, 0
    topic = inventory_vars("kafka1", "kafka_weather_topic")["kafka_weather_topic"]
    for name in inventory_vars("kafka1", "groups")["groups"]["kafka_brokers"]:
        if not agent_enabled(lab_host(name)):
            pytest.skip(f"the JMX exporter agent is not on {name}'s command line (kafka_jmx_exporter_enabled: false)")
        facts = inventory_vars(name, "isobar_address", "kafka_ca_file")
        values = scrape(lab_host(name), {"url": f"https://{facts['isobar_address']}:{PORT}/metrics",
                                         "kafka_ca_file": facts["kafka_ca_file"]})
        controllers += values.get("kafka_controller_kafkacontroller_activecontrollercount", 0)
        weather_bytes_in += values.get(f'kafka_server_brokertopicmetrics_bytesinpersec_total{{topic="{topic}"}}', 0)
    assert controllers == 1
    assert weather_bytes_in > 0, "the producer's writes to the weather topic are not counted per topic"


def test_plain_http_is_refused(host, broker):
    out = metrics_endpoint.plain_http(host, broker["url"])
    assert metrics_endpoint.refused_plain_http(out), out.stderr[-1000:]


def test_metrics_port_is_closed_to_other_hosts(broker):
    """This machine is not a monitoring host: the firewall drops it."""
    if broker["groups"].get("monitoring"):
        pytest.skip("the inventory has monitoring hosts; this machine's access depends on their addresses")
    with socket.socket() as sock:
        sock.settimeout(3)
        assert sock.connect_ex((broker["isobar_address"], PORT)) != 0
