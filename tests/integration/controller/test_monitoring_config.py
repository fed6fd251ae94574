"""The monitoring role's configuration files, rendered for the lab inventory's monitoring host with the role's own
templates, defaults and vars, pass the real checkers of Debian's packages (promtool check config / web-config,
amtool check-config) and say what the role promises: every scrape over HTTPS verified with the CA, a node exporter
target per host, the web config on the three command lines, no Alertmanager gossip port, alerts to the receiver.

No lab needed: the files are rendered on this machine (tests/lab/default/test_monitoring.py checks the running
services)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fixtures.prerequisites import missing

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "monitoring"
INVENTORY = ROOT / "inventories" / "lab"
FILES = ["prometheus.yml", "alertmanager.yml", "web-config.yml", "node-exporter-web.yml",
         "prometheus.default", "alertmanager.default", "node-exporter.default"]
HASH = "$2b$12$abcdefghijklmnopqrstuu5ZJ9sLqvRS0m3W8wz8rY5m7Gk1nDmTm"


def tool(name):
    found = shutil.which(name)
    if not found:
        missing(f"{name} is not on PATH (Debian: apt-get install prometheus prometheus-alertmanager)")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("monitoring")
    (out / "rules").mkdir()
    for rule in (ROLE / "files" / "rules").glob("*.rules.yml"):
        shutil.copy(rule, out / "rules" / rule.name)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=monitor",
                    "-keyout", str(out / "host.key"), "-out", str(out / "host.crt")], check=True, capture_output=True)
    (out / "isobar-password").write_text("not-a-real-password")
    playbook = out / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Render", "hosts": "monitoring[0]", "gather_facts": False,
        "roles": [{"role": "isobar.pipeline.topology"}],
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "tasks": [{"name": "Render", "ansible.builtin.template": {"src": str(ROLE / "templates") + "/{{ item }}.j2",
                                                                  "dest": str(out) + "/{{ item }}", "mode": "0600"},
                   "delegate_to": "localhost", "loop": FILES},
                  {"name": "Names", "ansible.builtin.copy": {
                      "content": "{{ {'hosts': groups['all'] | map('extract', hostvars, 'isobar_address') | list,"
                                 " 'influxdb': groups['influxdb'], 'alert_receiver_url': alert_receiver_url,"
                                 " 'ports': [monitoring_prometheus_port, monitoring_alertmanager_port,"
                                 " monitoring_node_exporter_port],"
                                 " 'telegraf': groups['telegraf'] | map('extract', hostvars, 'isobar_address')"
                                 " | map('regex_replace', '$', ':' ~ telegraf_metrics_port) | list} | to_json }}",
                      "dest": str(out / "names.json"), "mode": "0600"}, "delegate_to": "localhost"}],
    }]))
    # Extra vars: above vars_files, so the files point at this directory's certificate, rules and password.
    extra = {"monitoring_rule_files": [], "monitoring_basic_auth_hash": HASH, "monitoring_ca_file": str(out / "host.crt"),
             "monitoring_tls_dir": str(out), "monitoring_rules_dir": str(out / "rules"),
             "monitoring_password_file": str(out / "isobar-password")}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
                           "--vault-id", f"lab@{INVENTORY / 'vault-password.txt'}",
                           "-e", json.dumps(extra), str(playbook)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return out


def check(*argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_prometheus_config_passes_promtool_with_the_rules(rendered):
    out = check(tool("promtool"), "check", "config", str(rendered / "prometheus.yml"))
    assert "SUCCESS" in out and "rule files found" in out, out


def test_web_configs_pass_promtool(rendered):
    for name in ("web-config.yml", "node-exporter-web.yml"):
        check(tool("promtool"), "check", "web-config", str(rendered / name))
    users = yaml.safe_load((rendered / "web-config.yml").read_text())["basic_auth_users"]
    assert list(users.values()) == [HASH]


def test_alertmanager_config_passes_amtool_and_sends_to_the_receiver(rendered):
    check(tool("amtool"), "check-config", str(rendered / "alertmanager.yml"))
    names = json.loads((rendered / "names.json").read_text())
    config = yaml.safe_load((rendered / "alertmanager.yml").read_text())
    hooks = [hook for receiver in config["receivers"] for hook in receiver.get("webhook_configs", [])]
    assert config["route"]["receiver"] == config["receivers"][0]["name"]
    assert [hook["url"] for hook in hooks] == [names["alert_receiver_url"]] and hooks[0]["send_resolved"]


def test_every_scrape_is_https_and_every_host_has_a_node_target(rendered):
    names = json.loads((rendered / "names.json").read_text())
    config = yaml.safe_load((rendered / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"prometheus", "alertmanager", "node", "influxdb"} <= set(jobs), sorted(jobs)
    for job in jobs.values():
        assert job["scheme"] == "https" and job["tls_config"]["ca_file"], job
    node_port = names["ports"][2]
    targets = [t for group in jobs["node"]["static_configs"] for t in group["targets"]]
    assert sorted(targets) == sorted(f"{address}:{node_port}" for address in names["hosts"])
    assert [g["labels"]["host"] for g in jobs["influxdb"]["static_configs"]] == names["influxdb"]
    # The lab's Telegraf agents publish their own metrics (telegraf_metrics_enabled): one target each.
    assert [t for group in jobs["telegraf"]["static_configs"] for t in group["targets"]] == names["telegraf"]
    for job in ("prometheus", "alertmanager"):
        assert jobs[job]["basic_auth"]["password_file"], jobs[job]
    assert config["alerting"]["alertmanagers"][0]["scheme"] == "https"


def test_the_command_lines_use_the_web_config_and_no_gossip(rendered):
    names = json.loads((rendered / "names.json").read_text())
    prometheus_port, alertmanager_port, node_port = names["ports"]
    args = {name: (rendered / f"{name}.default").read_text() for name in ("prometheus", "alertmanager", "node-exporter")}
    assert f"--web.listen-address=:{prometheus_port} " in args["prometheus"]
    assert f"--web.listen-address=:{alertmanager_port} " in args["alertmanager"]
    assert f"--web.listen-address=:{node_port}\"" in args["node-exporter"]
    assert all("--web.config.file=/" in text for text in args.values()), args
    assert '--cluster.listen-address="' in args["alertmanager"], args["alertmanager"]
