# Copyright: Isobar contributors
# Apache-2.0
"""Write one of the pipeline's Grafana dashboards (generated from code) for Grafana's file provisioning."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_dashboard
short_description: Write a Grafana dashboard of the pipeline, generated from code, for file provisioning
version_added: "1.0.0"
author: Isobar contributors (@isobar)
requirements:
  - Python 3 on the managed host (no client library; Grafana reads the file, this module never calls it)
description:
  - Generates the dashboard named by O(dashboard) from the settings (plugins/module_utils/grafana_dashboards.py) and
    writes it as JSON to O(dest), the directory Grafana's dashboard provider reads. The same code gives the lab test the
    panels' queries, which it runs against the live InfluxDB and Prometheus.
  - C(weather) is the weather itself (the lab exercise's idea), from InfluxDB with Flux per station, with the alert
    checks' thresholds drawn on the fields they watch. C(platform) is the brokers, the pipeline's throughput, the
    hosts and InfluxDB from Prometheus.
  - The file is rewritten only when the generated content differs (stable key order), so a second run changes nothing.
  - Settings that cannot make a dashboard (an unknown key, a name that is not safe in a query, a non-numeric
    threshold) fail before anything is written.
options:
  dashboard:
    description: Which dashboard.
    type: str
    required: true
    choices: [weather, platform]
  dest:
    description: Path of the JSON file (its directory must exist).
    type: path
    required: true
  datasource_uid:
    description: UID of the Grafana data source the panels query (InfluxDB with Flux for C(weather), Prometheus for C(platform)).
    type: str
    required: true
  uid:
    description: UID of the dashboard (stable, so links and provisioning updates keep pointing at it). Default per dashboard.
    type: str
  title:
    description: Title of the dashboard. Default per dashboard.
    type: str
  bucket:
    description: InfluxDB bucket of the weather (C(weather) only; required there).
    type: str
  measurement:
    description: Measurement of the weather points (C(weather) only).
    type: str
    default: weather
  station_tag:
    description: Tag naming the station (C(weather) only).
    type: str
    default: station
  checks:
    description:
      - InfluxDB threshold checks (the influxdb role's C(influxdb_checks) entries, C(field) and C(thresholds) with
        C(level) and C(value)); their thresholds are drawn on the panel of their field (C(weather) only).
    type: list
    elements: dict
    default: []
  topics:
    description: Kafka topics of the pipeline whose throughput the C(platform) dashboard shows (empty = every topic).
    type: list
    elements: str
    default: []
  with_pipeline_exporter:
    description: Add the consumer-lag and producer-lag panels (the pipeline exporter must be scraped) (C(platform) only).
    type: bool
    default: false
  with_telegraf_metrics:
    description:
      - Add the Telegraf panels (metrics written and buffered per output; the agents' own metrics must be scraped as job
        C(telegraf)) (C(platform) only).
    type: bool
    default: false
extends_documentation_fragment:
  - files
  - isobar.pipeline.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Grafana | Weather dashboard
  isobar.pipeline.grafana_dashboard:
    dashboard: weather
    dest: /var/lib/grafana/dashboards/isobar/weather.json
    datasource_uid: isobar-influxdb
    bucket: weather
    checks: "{{ influxdb_checks }}"
    owner: root
    group: grafana
    mode: "0644"

- name: Grafana | Platform dashboard, lag panels included
  isobar.pipeline.grafana_dashboard:
    dashboard: platform
    dest: /var/lib/grafana/dashboards/isobar/platform.json
    datasource_uid: isobar-prometheus
    topics: [weather, weather-telegraf]
    with_pipeline_exporter: true
"""

RETURN = r"""
uid:
  description: UID of the dashboard written.
  returned: always
  type: str
  sample: isobar-weather
panels:
  description: Number of panels.
  returned: always
  type: int
  sample: 6
queries:
  description: Number of queries (targets) over all panels.
  returned: always
  type: int
  sample: 6
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes
from ansible_collections.isobar.pipeline.plugins.module_utils.grafana_dashboards import (
    DashboardError, build, panel_queries, render)

ARGUMENT_SPEC = dict(
    dashboard=dict(type="str", required=True, choices=["weather", "platform"]),
    dest=dict(type="path", required=True),
    datasource_uid=dict(type="str", required=True),
    uid=dict(type="str"),
    title=dict(type="str"),
    bucket=dict(type="str"),
    measurement=dict(type="str", default="weather"),
    station_tag=dict(type="str", default="station"),
    checks=dict(type="list", elements="dict", default=[]),
    topics=dict(type="list", elements="str", default=[]),
    with_pipeline_exporter=dict(type="bool", default=False),
    with_telegraf_metrics=dict(type="bool", default=False),
)
# Parameters of one dashboard only: the other dashboard refuses them when they differ from their defaults.
WEATHER_ONLY = ("bucket", "measurement", "station_tag", "checks")
PLATFORM_ONLY = ("topics", "with_pipeline_exporter", "with_telegraf_metrics")


def settings_of(params):
    """The generator's keyword arguments from the module's parameters (those of the other dashboard refused)."""
    kind = params["dashboard"]
    settings = {"datasource_uid": params["datasource_uid"]}
    for key in ("uid", "title"):
        if params[key]:
            settings[key] = params[key]
    own, other = (WEATHER_ONLY, PLATFORM_ONLY) if kind == "weather" else (PLATFORM_ONLY, WEATHER_ONLY)
    wrong = sorted(key for key in other if params[key] != ARGUMENT_SPEC[key].get("default"))
    if wrong:
        raise DashboardError(f"{', '.join(wrong)} do not apply to the {kind} dashboard")
    if kind == "weather" and not params["bucket"]:
        raise DashboardError("bucket is required for the weather dashboard")
    settings.update((key, params[key]) for key in own)
    return settings


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    try:
        dashboard = build(params["dashboard"], settings_of(params))
    except (DashboardError, TypeError) as exc:
        module.fail_json(msg=f"{params['dashboard']} dashboard: {exc}")
    content = render(dashboard)
    dest = params["dest"]
    directory = os.path.dirname(dest) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg=f"the directory of {dest} does not exist (the dashboard provider's path)")
    try:
        with open(dest, encoding="utf-8") as handle:
            before = handle.read()
    except FileNotFoundError:
        before = None
    changed = before != content
    result = dict(uid=dashboard["uid"], panels=len(dashboard["panels"]), queries=len(panel_queries(dashboard)))
    if module._diff:
        result["diff"] = {"before": before or "", "after": content, "before_header": dest, "after_header": dest}
    if changed and not module.check_mode:
        fd, tmp = tempfile.mkstemp(prefix=".dashboard-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(to_bytes(content))
            module.atomic_move(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    file_args = module.load_file_common_arguments(params, path=dest)
    if not module.check_mode or os.path.exists(dest):
        changed = module.set_fs_attributes_if_different(file_args, changed, diff=None)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
