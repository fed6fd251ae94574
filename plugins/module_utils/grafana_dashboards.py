# Copyright: Isobar contributors
# Apache-2.0
"""Grafana dashboards of the pipeline, generated from code: the weather itself (InfluxDB, Flux) and the platform
(brokers, pipeline throughput, hosts, InfluxDB; Prometheus, PromQL).

Pure functions from settings to dashboard JSON (Grafana's dashboard model, schemaVersion 39), used by the
grafana_dashboard module (which writes them for Grafana's file provisioning) and by the lab test that runs every
panel's query against the live InfluxDB and Prometheus (panel_queries, concrete_flux, concrete_promql): a panel whose
query returns nothing there is a defect of the dashboard, not of Grafana.
"""

from __future__ import annotations

import json
import re

SCHEMA_VERSION = 39
DASHBOARDS = ("weather", "platform")
# What the simulated stations and a real station report (plugins/module_utils/weather_simulation.py FIELDS), with the
# Grafana unit of each.
WEATHER_FIELDS = {"temperature": "celsius", "humidity": "humidity", "pressure": "pressurehpa", "wind_speed": "velocityms"}
THRESHOLD_COLOURS = {"crit": "red", "warn": "orange", "info": "blue", "ok": "green"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_FLUX_MACROS = ("v.timeRangeStart", "v.timeRangeStop", "v.windowPeriod")
_PROM_MACROS = ("$__rate_interval", "$__interval", "$__range")


class DashboardError(ValueError):
    """Settings no dashboard can be made from (the module reports the message as is)."""


def _check_name(kind, value):
    if not isinstance(value, str) or not _NAME.match(value):
        raise DashboardError(f"{kind} must be letters, digits, '_', '.' or '-' (it is written into queries): {value!r}")
    return value


def _flux_string(value):
    return json.dumps(value)  # a Flux string literal has JSON's escapes


def _grid(panels, width=12, height=8):
    """Place panels two per row, in order (Grafana needs gridPos; ids are positions, stable across runs)."""
    placed = []
    for index, panel in enumerate(panels):
        panel = dict(panel, id=index + 1)
        w = panel.pop("_width", width)
        h = panel.pop("_height", height)
        placed.append((panel, w, h))
    x = y = row_height = 0
    for panel, w, h in placed:
        if x + w > 24:
            x, y, row_height = 0, y + row_height, 0
        panel["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        x += w
        row_height = max(row_height, h)
    return [panel for panel, dummy, dummy in placed]


def _dashboard(uid, title, tags, panels, refresh="30s", time_from="now-6h"):
    return {
        "uid": uid, "title": title, "tags": sorted(tags), "editable": False, "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": refresh, "timezone": "utc",
        "time": {"from": time_from, "to": "now"}, "templating": {"list": []}, "annotations": {"list": []},
        "panels": _grid(panels),
    }


def _thresholds(steps):
    """Grafana threshold steps from [(value, colour)], the base step first."""
    ordered = sorted(steps, key=lambda step: step[0])
    return {"mode": "absolute",
            "steps": [{"color": "green", "value": None}] + [{"color": colour, "value": value} for value, colour in ordered]}


def field_thresholds(checks, field):
    """[(value, colour)] of the InfluxDB threshold checks on field (the influxdb role's influxdb_checks entries)."""
    steps = []
    for check in checks or ():
        if check.get("field") != field:
            continue
        for threshold in check.get("thresholds") or ():
            try:
                value = float(threshold["value"])
            except (KeyError, TypeError, ValueError):
                raise DashboardError(f"check {check.get('name')!r}: threshold without a numeric value: {threshold!r}")
            steps.append((value, THRESHOLD_COLOURS.get(threshold.get("level"), "red")))
    return sorted(set(steps))


def weather_dashboard(datasource_uid, bucket, measurement="weather", station_tag="station", checks=(),
                      uid="isobar-weather", title="Isobar - weather"):
    """Per-station temperature, humidity, pressure and wind (with the alert checks' thresholds drawn as lines), the
    stations reporting in the last 5 minutes and each station's latest reading."""
    for kind, value in (("datasource_uid", datasource_uid), ("bucket", bucket), ("measurement", measurement),
                        ("station_tag", station_tag)):
        _check_name(kind, value)
    source = {"type": "influxdb", "uid": datasource_uid}
    base = (f"from(bucket: {_flux_string(bucket)})\n"
            "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
            f"  |> filter(fn: (r) => r._measurement == {_flux_string(measurement)}")
    panels = []
    for field, unit in WEATHER_FIELDS.items():
        steps = field_thresholds(checks, field)
        query = (base + f" and r._field == {_flux_string(field)})\n"
                 f"  |> keep(columns: [\"_time\", \"_value\", {_flux_string(station_tag)}])\n"
                 "  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)")
        panels.append({
            "type": "timeseries", "title": f"{field.replace('_', ' ').capitalize()} per station", "datasource": source,
            "targets": [{"refId": "A", "datasource": source, "query": query}],
            "fieldConfig": {"defaults": {
                "unit": unit, "displayName": f"${{__field.labels.{station_tag}}}",
                "thresholds": _thresholds(steps),
                "custom": {"thresholdsStyle": {"mode": "line" if steps else "off"}}}, "overrides": []},
            "description": ("Lines: the alert thresholds of the InfluxDB checks on this field." if steps
                            else "No InfluxDB check watches this field."),
        })
    reporting = (f"from(bucket: {_flux_string(bucket)})\n  |> range(start: -5m)\n"
                 f"  |> filter(fn: (r) => r._measurement == {_flux_string(measurement)} and r._field == \"temperature\")\n"
                 f"  |> group()\n  |> distinct(column: {_flux_string(station_tag)})\n  |> count()")
    panels.append({"type": "stat", "title": "Stations reporting (last 5 min)", "datasource": source,
                   "targets": [{"refId": "A", "datasource": source, "query": reporting}], "_width": 6,
                   "fieldConfig": {"defaults": {"unit": "none", "thresholds": _thresholds([])}, "overrides": []}})
    latest = (base + ")\n  |> last()\n"
              f"  |> group(columns: [{_flux_string(station_tag)}])\n"
              f"  |> pivot(rowKey: [{_flux_string(station_tag)}], columnKey: [\"_field\"], valueColumn: \"_value\")\n"
              f"  |> group()\n  |> keep(columns: [{_flux_string(station_tag)}, "
              + ", ".join(_flux_string(f) for f in WEATHER_FIELDS) + "])")
    panels.append({"type": "table", "title": "Latest reading per station", "datasource": source,
                   "targets": [{"refId": "A", "datasource": source, "query": latest}], "_width": 18,
                   "fieldConfig": {"defaults": {}, "overrides": []}})
    return _dashboard(uid, title, ["isobar", "weather"], panels)


def platform_dashboard(datasource_uid, topics=(), uid="isobar-platform", title="Isobar - platform",
                       with_pipeline_exporter=False, with_telegraf_metrics=False):
    """Brokers (controller, partitions at risk, traffic per topic, requests, ISR changes), the pipeline's throughput
    on its topics, the hosts (CPU, memory, disk, targets up) and InfluxDB's API. The consumer-lag and producer-lag
    panels need the pipeline exporter (roles/pipeline/files/pipeline_exporter.py) scraped as job pipeline: with_pipeline_exporter;
    the Telegraf panels need the agents' own metrics (telegraf role, telegraf_metrics_enabled) scraped as job telegraf."""
    _check_name("datasource_uid", datasource_uid)
    selector = ""
    if topics:
        # Topic names are [A-Za-z0-9._-]: only the dot is special in the regex, escaped for PromQL's string too.
        selector = '{topic=~"' + "|".join(_check_name("topic", t).replace(".", "\\\\.") for t in topics) + '"}'
    source = {"type": "prometheus", "uid": datasource_uid}

    def panel(title, exprs, unit="short", kind="timeseries", width=12, description=None):
        targets = [{"refId": chr(ord("A") + i), "datasource": source, "expr": expr, "legendFormat": legend}
                   for i, (expr, legend) in enumerate(exprs)]
        result = {"type": kind, "title": title, "datasource": source, "targets": targets, "_width": width,
                  "fieldConfig": {"defaults": {"unit": unit, "thresholds": _thresholds([])}, "overrides": []}}
        if description:
            result["description"] = description
        return result

    panels = [
        panel("Active controllers", [("sum(kafka_controller_kafkacontroller_activecontrollercount)", "active")],
              kind="stat", width=6, description="Exactly 1 in a healthy KRaft cluster (alert KafkaActiveControllerCount)."),
        panel("Under-replicated partitions",
              [("sum(kafka_server_replicamanager_underreplicatedpartitions)", "under-replicated")], kind="stat", width=6,
              description="Above 0 while a broker is down (alert KafkaUnderReplicatedPartitions after 1 min)."),
        panel("Offline partitions", [("sum(kafka_controller_kafkacontroller_offlinepartitionscount)", "offline")],
              kind="stat", width=6),
        panel("Scrape targets up", [("sum(up)", "up"), ("count(up)", "targets")], kind="stat", width=6),
        panel("Pipeline throughput (messages in per topic)",
              [(f"sum by (topic) (kafka_topic:messages_in:rate1m{selector})", "{{topic}}")], unit="cps",
              description="Messages the brokers accept on the pipeline's topics (leaders' count)."),
        panel("Bytes in and out per topic",
              [(f"sum by (topic) (kafka_topic:bytes_in:rate1m{selector})", "in {{topic}}"),
               (f"sum by (topic) (kafka_topic:bytes_out:rate1m{selector})", "out {{topic}}")], unit="Bps"),
        # The recording rules keep the target's instance label (address:port), not host.
        panel("Requests per broker", [("sum by (instance) (kafka_broker:requests:rate1m)", "{{instance}}")],
              unit="reqps"),
        panel("ISR shrinks and expands",
              [("kafka_broker:isr_shrinks:rate5m", "shrinks {{instance}}"),
               ("kafka_broker:isr_expands:rate5m", "expands {{instance}}")], unit="ops"),
        panel("CPU busy per host",
              [('1 - avg by (host) (rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))', "{{host}}")],
              unit="percentunit"),
        panel("Memory available per host", [("node_memory_MemAvailable_bytes", "{{host}}")], unit="bytes"),
        # The fullest filesystem of each host, with the disk alert's exclusions (containers have no "/" of their own).
        panel("Fullest filesystem per host",
              [('max by (host) (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"}'
                ' / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"})', "{{host}}")], unit="percentunit"),
        panel("InfluxDB API requests",
              [('sum by (host, status) (rate(http_api_requests_total{job="influxdb"}[$__rate_interval]))',
                "{{host}} {{status}}")], unit="reqps"),
    ]
    if with_pipeline_exporter:
        panels += [
            panel("Consumer lag per group and topic", [("pipeline_group:lag:sum", "{{group}} {{topic}}")],
                  description="Log end offset - committed offset, as kafka-consumer-groups.sh --describe prints it."),
            panel("Producer lag behind InfluxDB", [("isobar_producer_lag_seconds", "producer")], unit="s"),
        ]
    if with_telegraf_metrics:
        panels += [
            panel("Telegraf: metrics written per output",
                  [('sum by (host, output) (rate(internal_write_metrics_written{job="telegraf"}[$__rate_interval]))',
                    "{{host}} {{output}}")], unit="cps",
                  description="What each agent delivers to Kafka and InfluxDB (alerts TelegrafOutputFailing, "
                              "TelegrafDroppingMetrics)."),
            panel("Telegraf: buffered metrics per output",
                  [('max by (host, output) (internal_write_buffer_size{job="telegraf"})', "{{host}} {{output}}")],
                  description="Metrics waiting for their output; they grow while it cannot write."),
        ]
    return _dashboard(uid, title, ["isobar", "kafka", "platform"], panels, refresh="15s", time_from="now-1h")


def build(kind, settings):
    """The dashboard named kind from the module's settings."""
    settings = dict(settings or {})
    if kind == "weather":
        return weather_dashboard(**settings)
    if kind == "platform":
        return platform_dashboard(**settings)
    raise DashboardError(f"unknown dashboard {kind!r}: one of {', '.join(DASHBOARDS)}")


def render(dashboard):
    """The file content: stable key order and a final newline, so an unchanged dashboard is an unchanged file."""
    return json.dumps(dashboard, indent=2, sort_keys=True) + "\n"


def panel_queries(dashboard):
    """[(panel title, datasource type, query)] of every target of every panel."""
    rows = []
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            kind = (target.get("datasource") or panel.get("datasource") or {}).get("type")
            rows.append((panel["title"], kind, target.get("query") if kind == "influxdb" else target.get("expr")))
    return rows


def concrete_flux(query, start="-1h", stop="now()", window="1m"):
    """The Flux Grafana would send for a time range: its macros replaced (what the lab test runs)."""
    out = query
    for macro, value in zip(_FLUX_MACROS, (start, stop, window)):
        out = out.replace(macro, value)
    return out


def concrete_promql(expr, rate_interval="1m", interval="15s", range_="1h"):
    """The PromQL Grafana would send: $__rate_interval, $__interval and $__range replaced."""
    out = expr
    for macro, value in zip(_PROM_MACROS, (rate_interval, interval, range_)):
        out = out.replace(macro, value)
    return out
