"""The grafana role provisions the pipeline's data sources and dashboards into a directory tree shaped like Grafana's
(Grafana's server is not obtainable here, so the files are what can be checked): a real ansible-playbook run on this
machine, converging then changing nothing, secrets only in the 0640 data source file and never in the output, and a
host without Grafana or without a token refused before anything is written."""
from __future__ import annotations

import grp
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "grafana-read-token-for-the-test"
PASSWORD = "prometheus-password-for-the-test"

PLAYBOOK = """
- name: Provision Grafana the way playbooks/monitoring.yml does
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: isobar.pipeline.grafana
"""


@pytest.fixture()
def tree(tmp_path):
    provisioning = tmp_path / "provisioning"
    for sub in ("datasources", "dashboards"):
        (provisioning / sub).mkdir(parents=True)
    ca = tmp_path / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "ca.key"), "-out", str(ca), "-subj", "/CN=isobar test CA", "-days", "2"],
                   check=True, capture_output=True)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    return tmp_path


def settings(tree, **override):
    values = {
        "grafana_provisioning_dir": str(tree / "provisioning"), "grafana_dashboards_dir": str(tree / "dashboards"),
        "grafana_group": grp.getgrgid(os.getgid()).gr_name, "grafana_ca_file": str(tree / "ca.crt"),
        "grafana_influxdb_token": TOKEN, "grafana_prometheus_password": PASSWORD,
        "grafana_prometheus_url": "https://127.0.0.1:9090",
        "grafana_weather_checks": [{"name": "weather-temperature", "field": "temperature",
                                    "thresholds": [{"level": "crit", "type": "greater", "value": 35}]}],
        "ansible_python_interpreter": sys.executable,
    }
    values.update(override)
    return values


def run(tree, extra, *options):
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), str(tree / "play.yml"), "-i", "localhost,",
           "-e", json.dumps(extra), *options]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def changed(stdout):
    return json.loads(stdout)["stats"]["localhost"]["changed"]


def test_converges_then_changes_nothing_and_keeps_secrets_out_of_the_output(tree):
    rc, out, err = run(tree, settings(tree))
    assert rc == 0, (out[-3000:], err[-2000:])
    assert changed(out) >= 4
    assert TOKEN not in out + err and PASSWORD not in out + err

    sources = tree / "provisioning" / "datasources" / "isobar.yaml"
    assert oct(sources.stat().st_mode & 0o777) == "0o640"
    parsed = yaml.safe_load(sources.read_text())
    by_type = {s["type"]: s for s in parsed["datasources"]}
    influx, prom = by_type["influxdb"], by_type["prometheus"]
    assert influx["uid"] == "isobar-influxdb" and influx["jsonData"]["version"] == "Flux"
    assert influx["secureJsonData"]["token"] == TOKEN and influx["url"].startswith("https://")
    assert prom["basicAuth"] is True and prom["secureJsonData"]["basicAuthPassword"] == PASSWORD
    assert influx["secureJsonData"]["tlsCACert"] == (tree / "ca.crt").read_text()

    provider = yaml.safe_load((tree / "provisioning" / "dashboards" / "isobar.yaml").read_text())["providers"][0]
    assert provider["options"]["path"] == str(tree / "dashboards") and provider["type"] == "file"
    weather = json.loads((tree / "dashboards" / "weather.json").read_text())
    platform = json.loads((tree / "dashboards" / "platform.json").read_text())
    assert weather["uid"] == "isobar-weather" and platform["uid"] == "isobar-platform"
    temperature = weather["panels"][0]
    assert {"value": 35.0, "color": "red"} in temperature["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert all(t["datasource"]["uid"] == "isobar-prometheus" for p in platform["panels"] for t in p["targets"])

    rc, out, err = run(tree, settings(tree))
    assert rc == 0 and changed(out) == 0, out[-3000:]


@pytest.mark.parametrize("override, message", [
    ({"grafana_influxdb_token": ""}, "no read-only InfluxDB token"),
    ({"grafana_prometheus_url": "http://127.0.0.1:9090"}, "must be HTTPS URLs"),
    ({"grafana_ca_file": "/nonexistent/ca.crt"}, "/nonexistent/ca.crt missing"),
    ({"grafana_group": "no-such-group-isobar"}, "group no-such-group-isobar does not exist"),
])
def test_bad_settings_are_refused_before_anything_is_written(tree, override, message):
    rc, out, err = run(tree, settings(tree, **override))
    assert rc != 0 and message in out + err, (out[-3000:], err[-1000:])
    assert not list((tree / "provisioning").rglob("*.yaml")) and not (tree / "dashboards").exists()


def test_a_host_without_grafana_is_refused(tree):
    rc, out, err = run(tree, settings(tree, grafana_provisioning_dir=str(tree / "absent")))
    assert rc != 0 and "install Grafana" in out + err, out[-3000:]
    assert not (tree / "dashboards").exists()
