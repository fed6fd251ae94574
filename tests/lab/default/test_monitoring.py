"""The monitoring role: Prometheus and Alertmanager answer only over HTTPS with the password (plain HTTP and requests
without or with a wrong password are refused), every scrape target is up, the role's alert rules are loaded, and an
alert posted to Alertmanager reaches the alert receiver. The node exporters serve HTTPS to the monitoring hosts only.

Requests go from this machine (on the lab network, inside monitoring_client_networks) to the lab hosts."""
from __future__ import annotations

import base64
import datetime
import json
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from fixtures.metrics_endpoint import telegraf_publishes_metrics
import yaml

testinfra_hosts = ["ansible://monitoring"]
ROOT = Path(__file__).resolve().parents[3]
RULES = sorted((ROOT / "roles" / "monitoring" / "files" / "rules").glob("*.rules.yml"))


@pytest.fixture(scope="module")
def mon(inventory_vars, lab_host):
    groups = inventory_vars("localhost", "groups")["groups"]
    name = groups["monitoring"][0]
    if not inventory_vars(name, "monitoring_enabled")["monitoring_enabled"]:
        pytest.skip("monitoring_enabled is false in this inventory (playbooks/monitoring.yml leaves the hosts alone)")
    facts = inventory_vars(name, "isobar_address", "monitoring_prometheus_port", "monitoring_alertmanager_port",
                           "monitoring_node_exporter_port", "monitoring_basic_auth_user",
                           "monitoring_basic_auth_password", "kafka_ca_file", "alert_receiver_url", "groups")
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(lab_host(name).file(facts["kafka_ca_file"]).content_string)
    facts["name"] = name
    # Brokers running the JMX exporter agent (on their command line; kafka_jmx_exporter_enabled is a role default).
    facts["jmx_agent"] = {b: "-javaagent:" in lab_host(b).file("/etc/systemd/system/kafka.service").content_string
                          for b in facts["groups"].get("kafka_brokers", [])}
    # Pipeline hosts running the pipeline exporter (its unit is there; pipeline_exporter_enabled is a role default).
    facts["pipeline_exporters"] = {h for h in facts["groups"].get("pipeline", [])
                                   if lab_host(h).file("/etc/systemd/system/isobar-pipeline-exporter.service").exists}
    # Telegraf agents publishing their own metrics (outputs.prometheus_client; telegraf_metrics_enabled).
    facts["telegraf_metrics"] = {h for h in facts["groups"].get("telegraf", []) if telegraf_publishes_metrics(lab_host(h))}
    facts["context"] = ssl.create_default_context(cafile=handle.name)
    facts["prometheus"] = f"https://{facts['isobar_address']}:{facts['monitoring_prometheus_port']}"
    facts["alertmanager"] = f"https://{facts['isobar_address']}:{facts['monitoring_alertmanager_port']}"
    yield facts
    Path(handle.name).unlink(missing_ok=True)


def request(mon, url, user=None, password=None, data=None):
    req = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(),
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    if user is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, context=mon["context"], timeout=20) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def authed(mon, url, data=None):
    status, body = request(mon, url, mon["monitoring_basic_auth_user"], mon["monitoring_basic_auth_password"], data)
    assert status == 200, f"{url}: {status} {body[:300]}"
    return json.loads(body) if body.strip() else None


def plain_http(address, port, path):
    """Send a plain-HTTP request to a port; return what came back (b'' when the server hung up)."""
    with socket.create_connection((address, port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("service", ["prometheus", "alertmanager"])
def test_plain_http_gets_no_data(mon, service):
    port = mon[f"monitoring_{service}_port"]
    answer = plain_http(mon["isobar_address"], port, "/api/v2/status" if service == "alertmanager" else "/api/v1/targets")
    # Go's TLS server answers a plain request with "400 Bad Request ... HTTPS server" and nothing else.
    assert not answer.startswith(b"HTTP/1.0 200") and not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"activeTargets" not in answer and b"versionInfo" not in answer, answer[:200]


@pytest.mark.parametrize("service", ["prometheus", "alertmanager"])
def test_requests_without_the_password_are_refused(mon, service):
    url = mon[service] + "/-/ready"
    assert request(mon, url)[0] == 401
    assert request(mon, url, mon["monitoring_basic_auth_user"], "not-the-password")[0] == 401
    assert request(mon, url, "someone-else", mon["monitoring_basic_auth_password"])[0] == 401
    assert request(mon, url, mon["monitoring_basic_auth_user"], mon["monitoring_basic_auth_password"])[0] == 200


def test_every_scrape_target_is_up(mon):
    groups = mon["groups"]
    deadline = time.monotonic() + 20  # a target just restarted may not have been scraped yet
    while True:
        targets = authed(mon, mon["prometheus"] + "/api/v1/targets?state=active")["data"]["activeTargets"]
        down = [(t["labels"]["job"], t["scrapeUrl"], t["health"], t.get("lastError")) for t in targets if t["health"] != "up"]
        if not down or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not down, f"targets not up: {down}"
    jobs = {}
    for target in targets:
        assert target["scrapeUrl"].startswith("https://"), target["scrapeUrl"]
        jobs.setdefault(target["labels"]["job"], set()).add(target["labels"]["host"])
    assert jobs["node"] == set(groups["all"]), jobs
    assert jobs["prometheus"] == jobs["alertmanager"] == {mon["name"]}, jobs
    if groups.get("influxdb"):
        assert jobs["influxdb"] == set(groups["influxdb"]), jobs
    # Every broker whose inventory runs the JMX exporter agent (the lab's do), and no other host.
    agents = {b for b in groups.get("kafka_brokers", []) if mon["jmx_agent"][b]}
    assert jobs.get("kafka", set()) == agents, jobs
    # The pipeline exporter where it is installed (the lab's producer host).
    assert jobs.get("pipeline", set()) == mon["pipeline_exporters"], jobs
    # Telegraf's own metrics where the agent publishes them (the lab's agent does).
    assert jobs.get("telegraf", set()) == mon["telegraf_metrics"], jobs


def test_the_roles_alert_rules_are_loaded(mon):
    loaded = authed(mon, mon["prometheus"] + "/api/v1/rules")["data"]["groups"]
    expected = {(group["name"], rule.get("alert") or rule.get("record"))
                for path in RULES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]}
    got = {(group["name"], rule["name"]) for group in loaded for rule in group["rules"]}
    assert expected and got == expected, {"missing": expected - got, "extra": got - expected}
    assert all(rule["health"] == "ok" for group in loaded for rule in group["rules"]), loaded


def test_prometheus_sends_to_its_alertmanager(mon):
    active = authed(mon, mon["prometheus"] + "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in active] == [mon["alertmanager"] + "/api/v2/alerts"], active


def test_an_alert_reaches_the_alert_receiver(mon, lab_host):
    """Alertmanager routes a posted alert, after its group_wait, to the alert receiver's HTTPS endpoint."""
    # Alertmanager's API shows webhook URLs as <secret>: the route is read there, the URL in the file it loaded.
    config = authed(mon, mon["alertmanager"] + "/api/v2/status")["config"]["original"]
    assert "receiver: alert-receiver" in config and "webhook_configs:" in config, config
    loaded = lab_host(mon["groups"]["monitoring"][0]).file("/etc/prometheus/alertmanager.yml").content_string
    assert mon["alert_receiver_url"] in loaded, loaded
    marker = f"isobar-test-{uuid.uuid4().hex[:12]}"
    ends = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2)).isoformat()
    authed(mon, mon["alertmanager"] + "/api/v2/alerts",
           [{"labels": {"alertname": "IsobarVerifyTest", "instance": marker, "severity": "none"},
             "annotations": {"summary": "posted by tests/lab/default/test_monitoring.py"}, "endsAt": ends}])
    receiver = lab_host(mon["groups"]["pipeline"][0])
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        out = receiver.run("grep -c -F %s /var/lib/alert-receiver/alerts.jsonl", marker)
        if out.stdout.strip() not in ("", "0"):
            break
        time.sleep(1)
    else:
        pytest.fail(f"the alert {marker} did not reach the alert receiver within 25 s")


def test_web_config_keeps_only_a_bcrypt_hash(host, mon):
    web = host.file("/etc/prometheus/web-config.yml")
    assert (web.user, web.group, web.mode) == ("root", "prometheus", 0o640)
    users = yaml.safe_load(web.content_string)["basic_auth_users"]
    assert list(users) == [mon["monitoring_basic_auth_user"]] and users[mon["monitoring_basic_auth_user"]].startswith("$2")
    assert mon["monitoring_basic_auth_password"] not in web.content_string
    for path in ("/etc/prometheus/isobar-password", "/etc/prometheus/tls/host.key"):
        secret = host.file(path)
        assert (secret.user, secret.group, secret.mode) == ("root", "prometheus", 0o640), path


def test_node_exporter_serves_tls_and_is_closed_to_others(lab_host, mon):
    """From this machine (not a monitoring host) the node exporter's port is firewalled; on the host it speaks TLS."""
    name = mon["name"]
    port = mon["monitoring_node_exporter_port"]
    with pytest.raises(OSError):
        socket.create_connection((mon["isobar_address"], port), timeout=3).close()
    node = lab_host(name)
    fetch = ("import ssl, sys, urllib.request; ctx = ssl.create_default_context(cafile=sys.argv[2]); "
             "print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=20).read().decode()[:100000])")
    out = node.run("python3 -c %s %s %s", fetch, f"https://{mon['isobar_address']}:{port}/metrics", mon["kafka_ca_file"])
    assert out.rc == 0 and "node_filesystem_avail_bytes" in out.stdout, out.stderr[-500:]
    plain = node.run("python3 -c %s %s", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)",
                     f"http://{mon['isobar_address']}:{port}/metrics")
    assert plain.rc != 0, "the node exporter answered plain HTTP"
