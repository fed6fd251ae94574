"""Grafana dashboards generated from code (issue 17.4): the generator's panels and queries, and the grafana_dashboard
module writing them idempotently (check mode, diff, bad input refused before anything is written).

The queries themselves are run against the live InfluxDB and Prometheus by tests/lab/default/test_dashboards.py."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.isobar.pipeline.plugins.module_utils import grafana_dashboards as gd

ROOT = Path(__file__).resolve().parents[2]
CHECKS = [{"name": "weather-temperature", "field": "temperature",
           "thresholds": [{"level": "crit", "type": "greater", "value": "35"},
                          {"level": "warn", "type": "lesser", "value": -10}]}]


def test_weather_dashboard_has_a_panel_per_field_with_the_checks_thresholds():
    board = gd.weather_dashboard("isobar-influxdb", "weather", checks=CHECKS)
    titles = [p["title"] for p in board["panels"]]
    assert titles[:4] == ["Temperature per station", "Humidity per station", "Pressure per station",
                          "Wind speed per station"]
    temperature = board["panels"][0]
    steps = temperature["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == [(None, "green"), (-10.0, "orange"), (35.0, "red")]
    assert temperature["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    assert board["panels"][1]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "off"
    queries = gd.panel_queries(board)
    assert {kind for _, kind, _ in queries} == {"influxdb"}
    assert all('from(bucket: "weather")' in q for _, _, q in queries)
    assert 'r._field == "wind_speed"' in queries[3][2]


def test_panels_are_placed_without_overlap_and_ids_are_stable():
    for board in (gd.weather_dashboard("u", "weather"), gd.platform_dashboard("p", ["weather"])):
        cells = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24
            area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & area, panel["title"]
            cells |= area
        assert [p["id"] for p in board["panels"]] == list(range(1, len(board["panels"]) + 1))
        assert gd.render(board) == gd.render(json.loads(gd.render(board)))


def test_platform_dashboard_selects_the_pipeline_topics_and_adds_lag_only_with_the_exporter():
    board = gd.platform_dashboard("isobar-prometheus", ["weather", "weather-telegraf", "a.b"])
    exprs = [q for _, kind, q in gd.panel_queries(board) if kind == "prometheus"]
    assert 'kafka_topic:messages_in:rate1m{topic=~"weather|weather-telegraf|a\\\\.b"}' in " ".join(exprs)
    assert not any("isobar_" in e or "pipeline_group" in e for e in exprs)
    with_lag = gd.panel_queries(gd.platform_dashboard("p", with_pipeline_exporter=True))
    assert {"Consumer lag per group and topic", "Producer lag behind InfluxDB"} <= {t for t, _, _ in with_lag}
    assert not any("internal_" in e for e in exprs)
    with_telegraf = gd.panel_queries(gd.platform_dashboard("p", with_telegraf_metrics=True))
    assert {"Telegraf: metrics written per output", "Telegraf: buffered metrics per output"} <= {t for t, _, _ in with_telegraf}


def test_the_platform_queries_use_only_metrics_the_rules_record_or_the_exporters_serve():
    """Recording rules a panel reads must exist in the monitoring role's rules (a renamed rule empties a panel)."""
    rules = " ".join(p.read_text() for p in (ROOT / "roles" / "monitoring" / "files" / "rules").glob("*.rules.yml"))
    for _, _, expr in gd.panel_queries(gd.platform_dashboard("p", with_pipeline_exporter=True, with_telegraf_metrics=True)):
        for name in re.findall(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", expr):
            assert f"record: {name}" in rules, name


def test_macros_are_replaced_for_a_concrete_run():
    flux = gd.concrete_flux(gd.panel_queries(gd.weather_dashboard("u", "weather"))[0][2], start="-15m", window="30s")
    assert "v." not in flux and "range(start: -15m, stop: now())" in flux and "every: 30s" in flux
    prom = gd.concrete_promql('rate(x[$__rate_interval]) + y[$__range] + z[$__interval]')
    assert prom == "rate(x[1m]) + y[1h] + z[15s]"


@pytest.mark.parametrize("kwargs, message", [
    ({"datasource_uid": "u", "bucket": 'weather") |> drop('}, "bucket must be letters"),
    ({"datasource_uid": "u", "bucket": "weather", "checks": [{"field": "temperature", "thresholds": [{"value": "hot"}]}]},
     "threshold without a numeric value"),
])
def test_unsafe_or_wrong_settings_are_refused(kwargs, message):
    with pytest.raises(gd.DashboardError, match=message):
        gd.weather_dashboard(**kwargs)


def test_unknown_dashboard_is_refused():
    with pytest.raises(gd.DashboardError, match="unknown dashboard"):
        gd.build("kafka", {})


# -- the module, run by Ansible on this machine --------------------------------------------------------------------
def run_module(tmp_path, *args, check=False, diff=False):
    cmd = [str(Path(sys.executable).with_name("ansible")), "localhost", "-c", "local", "-i", "localhost,",
           "-e", f"ansible_python_interpreter={sys.executable}", "-m", "isobar.pipeline.grafana_dashboard", "-a", " ".join(args)]
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_module_writes_once_then_changes_nothing(tmp_path):
    dest = tmp_path / "weather.json"
    args = (f"dashboard=weather dest={dest} datasource_uid=isobar-influxdb bucket=weather mode=0644",)
    rc, out = run_module(tmp_path, *args, check=True)
    assert rc == 0 and "CHANGED" in out and not dest.exists(), out
    rc, out = run_module(tmp_path, *args, diff=True)
    assert rc == 0 and "CHANGED" in out and '"uid": "isobar-weather"' in out, out
    assert json.loads(dest.read_text())["uid"] == "isobar-weather" and oct(dest.stat().st_mode & 0o777) == "0o644"
    rc, out = run_module(tmp_path, *args)
    assert rc == 0 and "SUCCESS" in out and "CHANGED" not in out, out
    dest.write_text(dest.read_text().replace("Temperature per station", "edited by hand"))
    rc, out = run_module(tmp_path, *args)
    assert rc == 0 and "CHANGED" in out and "edited by hand" not in dest.read_text(), out


@pytest.mark.parametrize("args, message", [
    ("dashboard=weather datasource_uid=u", "bucket is required"),
    ("dashboard=platform datasource_uid=u bucket=weather", "bucket do not apply to the platform dashboard"),
    ("dashboard=weather datasource_uid=u bucket=weather topics=weather", "topics do not apply"),
    ("dashboard=weather datasource_uid='u x' bucket=weather", "datasource_uid must be"),
])
def test_module_refuses_bad_input_and_writes_nothing(tmp_path, args, message):
    dest = tmp_path / "board.json"
    rc, out = run_module(tmp_path, f"dest={dest} {args}")
    assert rc != 0 and message in out, out
    assert not dest.exists()


def test_module_refuses_a_missing_directory(tmp_path):
    rc, out = run_module(tmp_path, f"dashboard=platform dest={tmp_path / 'missing' / 'p.json'} datasource_uid=p")
    assert rc != 0 and "does not exist" in out, out
