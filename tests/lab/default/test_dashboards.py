"""The Grafana dashboards (issue 17.4) answer on the live lab: every panel's query, as Grafana would send it for the
last hour, returns data from the lab's InfluxDB (Flux, with a read-only token on the weather bucket, as the weather
data source has) and from its Prometheus (PromQL, through its TLS + password front). Grafana itself cannot be
installed here; the dashboards are the ones the grafana_dashboard module writes for an inventory's grafana group,
built with the lab's names. A panel that shows nothing here is a wrong query or a missing metric.

The dashboards (JSON, importable in Grafana) are left under .reports/dashboards/ for a person to look at."""
from __future__ import annotations

import base64
import json
import ssl
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from fixtures.metrics_endpoint import telegraf_publishes_metrics

from ansible_collections.isobar.pipeline.plugins.module_utils import grafana_dashboards as gd

testinfra_hosts = ["ansible://monitoring"]
ROOT = Path(__file__).resolve().parents[3]
REPORTS = ROOT / ".reports" / "dashboards"


@pytest.fixture(scope="module")
def lab(inventory_vars, lab_host):
    groups = inventory_vars("localhost", "groups")["groups"]
    monitor = groups["monitoring"][0]
    facts = inventory_vars(monitor, "isobar_address", "monitoring_enabled", "monitoring_prometheus_port",
                           "monitoring_basic_auth_user", "monitoring_basic_auth_password", "kafka_ca_file",
                           "influxdb_url", "influxdb_org", "influxdb_bucket", "influxdb_client_tokens",
                           "kafka_weather_topic", "kafka_telegraf_topic")
    if not facts["monitoring_enabled"]:
        pytest.skip("monitoring_enabled is false in this inventory: no Prometheus for the platform dashboard")
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(lab_host(monitor).file(facts["kafka_ca_file"]).content_string)
    facts["ca_file"] = handle.name
    # Where the pipeline exporter runs (its unit on the producer host), the lag panels are in and must show data: a
    # consumer of the group reads and commits first, as the pipeline's consumers do.
    producer = lab_host(groups["pipeline"][0])
    facts["with_exporter"] = producer.file("/etc/systemd/system/isobar-pipeline-exporter.service").exists
    if facts["with_exporter"]:
        assert producer.run("weather-consumer --json").rc == 0
    # Where a Telegraf agent publishes its own metrics, the Telegraf panels are in and must show data.
    agent = groups["telegraf"][0]
    facts["with_telegraf_metrics"] = telegraf_publishes_metrics(lab_host(agent))
    facts["prometheus"] = f"https://{facts['isobar_address']}:{facts['monitoring_prometheus_port']}"
    yield facts
    Path(handle.name).unlink(missing_ok=True)


def dashboards(lab):
    # The alert checks change only the thresholds drawn, never a query: the lab's dashboards without them.
    boards = {
        "weather": gd.weather_dashboard("isobar-influxdb", lab["influxdb_bucket"]),
        "platform": gd.platform_dashboard("isobar-prometheus", [lab["kafka_weather_topic"], lab["kafka_telegraf_topic"]],
                                          with_pipeline_exporter=lab["with_exporter"],
                                          with_telegraf_metrics=lab["with_telegraf_metrics"]),
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    for name, board in boards.items():
        (REPORTS / f"{name}.json").write_text(gd.render(board))
    return boards


def flux_rows(lab, query):
    from influxdb_client import InfluxDBClient

    with InfluxDBClient(url=lab["influxdb_url"], token=lab["influxdb_client_tokens"]["producer"],
                        org=lab["influxdb_org"], ssl_ca_cert=lab["ca_file"], timeout=60_000) as client:
        return [record.values for table in client.query_api().query(query) for record in table.records]


def promql(lab, expr):
    url = lab["prometheus"] + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    credentials = f"{lab['monitoring_basic_auth_user']}:{lab['monitoring_basic_auth_password']}"
    request = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()})
    context = ssl.create_default_context(cafile=lab["ca_file"])
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_every_weather_panel_shows_the_stations(lab):
    empty, stations = [], set()
    for title, kind, query in gd.panel_queries(dashboards(lab)["weather"]):
        assert kind == "influxdb"
        rows = flux_rows(lab, gd.concrete_flux(query, start="-1h", window="1m"))
        if not rows:
            empty.append(title)
        stations |= {row["station"] for row in rows if "station" in row}
        if title == "Stations reporting (last 5 min)" and rows:
            assert rows[0]["_value"] >= 1, rows
    assert not empty, f"weather panels with no data over the last hour: {empty}"
    print(f"weather dashboard: every panel has data; stations seen: {sorted(stations)}")
    assert stations


def test_every_platform_panel_has_a_series(lab):
    """A panel shows something when one of its queries returns a series (bytes out of a topic exist only once
    something consumes it). Recording rules over 1 or 5 minutes need two scrapes after a restart: up to 90 s."""
    queries = gd.panel_queries(dashboards(lab)["platform"])
    assert {kind for _, kind, _ in queries} == {"prometheus"}
    pending = {}
    for title, _, expr in queries:
        pending.setdefault(title, []).append(gd.concrete_promql(expr))
    deadline = time.monotonic() + 90
    while pending:
        pending = {title: exprs for title, exprs in pending.items() if not any(promql(lab, e) for e in exprs)}
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not pending, f"platform panels with no series: {pending}"


def test_the_pipeline_throughput_panel_counts_the_weather_topic(lab):
    """The live producer publishes every second: the panel's weather series is above zero."""
    title, _, expr = next(row for row in gd.panel_queries(dashboards(lab)["platform"])
                          if row[0].startswith("Pipeline throughput"))
    deadline = time.monotonic() + 90
    while True:
        series = {s["metric"].get("topic"): float(s["value"][1]) for s in promql(lab, gd.concrete_promql(expr))}
        if series.get(lab["kafka_weather_topic"], 0) > 0 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert series.get(lab["kafka_weather_topic"], 0) > 0, f"{title}: {series}"
