"""InfluxDB on the lab: HTTPS only, hardened service, least-privilege tokens, idempotent inject, and the
alert chain (heat spike -> crit status in _monitoring -> notification delivered to the alert receiver).

Secrets are read through Ansible (inventory + vaults, tests/lab/conftest.py), kept in memory wrapped in Secret
(masked repr, so an assertion message never shows them) and never put on a command line: module calls
template them from host variables.
"""
from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fixtures.ansible_env import ansible_env, collection_module

testinfra_hosts = ["ansible://influxdb"]

ROOT = Path(__file__).resolve().parents[3]
VENV_PYTHON = "/opt/isobar/venv/bin/python"
CA = "/etc/isobar/pki/ca.crt"


class Secret(str):
    """A str whose repr never shows the value."""

    def __repr__(self):
        return "Secret(<masked>)"


def ansible_adhoc(inventory_path: str, pattern: str, module: str, args: dict, extra_vars: dict | None = None) -> dict:
    """Run one of our modules through the real ansible CLI against the lab inventory; {host: result}.

    A short name is one of this collection's modules (weather_inject -> isobar.pipeline.weather_inject)."""
    module = collection_module(module)
    # --become: the hosts are reached as the sudo user deploy; the modules run as root, as in the playbooks.
    cmd = [str(Path(sys.executable).with_name("ansible")), pattern, "-i", inventory_path, "--become", "-m", module,
           "-a", json.dumps(args)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    env = ansible_env()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]
    except (ValueError, KeyError, IndexError):
        # stdout may hold module results: show only stderr and the return code
        raise AssertionError(f"ansible {module} on {pattern} gave no result (rc={proc.returncode}): {proc.stderr[-2000:]}") from None


@pytest.fixture(scope="module")
def lab(host, inventory_vars):
    """Names, addresses and secrets of the lab, as Ansible resolves them for the influxdb host
    (tests/lab/conftest.py), secrets wrapped in Secret."""
    name = host.backend.host
    facts = inventory_vars(name, "isobar_address", "influxdb_url", "influxdb_port", "influxdb_org", "influxdb_bucket",
                           "influxdb_telegraf_bucket", "influxdb_operator_token", "influxdb_client_tokens",
                           "influxdb_client_networks", "groups")
    tokens = {client: Secret(value) for client, value in facts["influxdb_client_tokens"].items()}
    for client_name in ("inject", "producer", "telegraf"):
        assert tokens.get(client_name), f"no token for {client_name} in the generated vault: converge first"
    return {"inventory_hostname": name, "address": facts["isobar_address"], "url": facts["influxdb_url"],
            "port": int(facts["influxdb_port"]), "org": facts["influxdb_org"], "bucket": facts["influxdb_bucket"],
            "telegraf_bucket": facts["influxdb_telegraf_bucket"], "operator_token": Secret(facts["influxdb_operator_token"]),
            "tokens": tokens, "networks": facts["influxdb_client_networks"], "pipeline": facts["groups"]["pipeline"][0]}


@pytest.fixture(scope="module")
def ca_file(host, tmp_path_factory):
    path = tmp_path_factory.mktemp("influxdb-ca") / "ca.crt"
    path.write_text(host.file(CA).content_string)
    return str(path)


@pytest.fixture(scope="module")
def pipeline_host(lab, lab_host):
    return lab_host(lab["pipeline"])


def installed_version(host):
    """The version the stable symlink points at, e.g. 2.9.1 (version changes are variable changes)."""
    target = host.file("/opt/influxdb/current").linked_to
    assert target.startswith("/opt/influxdb/influxdb2-"), target
    return target.rsplit("influxdb2-", 1)[1]


def client(lab, ca_file, token):
    from influxdb_client import InfluxDBClient

    return InfluxDBClient(url=lab["url"], token=token, org=lab["org"], ssl_ca_cert=ca_file, timeout=30_000)


def api_status(lab, ca_file, method, path, token, body=None):
    request = urllib.request.Request(lab["url"] + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca_file), timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def flux(lab, ca_file, query, token=None):
    with client(lab, ca_file, token or lab["operator_token"]) as c:
        return [record for table in c.query_api().query(query) for record in table.records]


def run_inject(inventory_path, lab, pipeline_host, **args):
    """weather_inject through Ansible: from the pipeline host (as playbooks/inject.yml does) when its client
    venv exists, else from the InfluxDB host; the inject token is templated from the vault on the host."""
    target = lab["pipeline"] if pipeline_host.file(VENV_PYTHON).exists else lab["inventory_hostname"]
    module_args = {"url": lab["url"], "token": "{{ influxdb_client_tokens.inject }}", "ca_path": CA, "org": lab["org"],
                   "bucket": lab["bucket"], **args}
    result = ansible_adhoc(inventory_path, target, "weather_inject", module_args,
                           extra_vars={"ansible_python_interpreter": VENV_PYTHON})[target]
    assert not result.get("failed"), result.get("msg")
    return result


# --- transport -------------------------------------------------------------------------------------
def test_https_answers_with_our_certificate(host, lab, ca_file):
    with urllib.request.urlopen(lab["url"] + "/health", context=ssl.create_default_context(cafile=ca_file),
                                timeout=15) as resp:
        health = json.loads(resp.read())
    assert resp.status == 200 and health["status"] == "pass"
    assert health["version"] == "v" + installed_version(host)


def test_plain_http_gets_no_api(host, lab):
    try:
        with urllib.request.urlopen(f"http://{lab['address']}:{lab['port']}/health", timeout=15) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    assert status == 400 and b"HTTP request to an HTTPS server" in body and b"pass" not in body


def test_weak_cipher_suites_are_refused(host):
    """tls-strict-ciphers: an ECDHE CBC suite (in Go's defaults) must not be negotiated."""
    weak = host.run("openssl s_client -connect 127.0.0.1:8086 -tls1_2 -cipher ECDHE-RSA-AES128-SHA </dev/null")
    assert weak.rc != 0
    strong = host.run(f"openssl s_client -connect 127.0.0.1:8086 -tls1_2 -CAfile {CA} -verify_return_error </dev/null")
    assert strong.rc == 0 and "ECDHE-RSA-AES" in strong.stdout and "GCM" in strong.stdout


# --- service ---------------------------------------------------------------------------------------
def test_service_is_active_enabled_and_unprivileged(host):
    service = host.service("influxdb")
    assert service.is_running and service.is_enabled
    [proc] = host.process.filter(comm="influxd")
    assert proc.user == "influxdb"


def test_listens_on_8086_only(host, lab):
    """Every listening TCP/UDP socket of the influxdb unit (ss -e names its cgroup; no /proc access needed)."""
    out = host.check_output("ss -Hlntue")
    ports = sorted({line.split()[4].rsplit(":", 1)[1] for line in out.splitlines() if "/influxdb.service" in line})
    assert ports == [str(lab["port"])]


def test_files_and_permissions(host, lab):
    key = host.file("/etc/influxdb/tls/influxdb.key")
    assert key.user == "influxdb" and key.mode == 0o600
    config = host.file("/etc/influxdb/config.toml")
    assert config.user == "root" and config.group == "influxdb" and config.mode == 0o640
    text = config.content_string
    # hardening-enabled is a decision, not a default left unset: off, the alert receiver is on a private address.
    for setting in ('reporting-disabled = true', 'tls-strict-ciphers = true', 'pprof-disabled = true',
                    'hardening-enabled = false',
                    f'http-bind-address = ":{lab["port"]}"', 'tls-key = "/etc/influxdb/tls/influxdb.key"'):
        assert setting in text
    current = host.file("/opt/influxdb/current")
    assert current.is_symlink and current.linked_to == f"/opt/influxdb/influxdb2-{installed_version(host)}"
    assert host.file(f"/opt/influxdb/influxdb2-{installed_version(host)}").user == "root"
    assert host.file("/var/lib/influxdb").user == "influxdb" and host.file("/var/lib/influxdb").mode == 0o750


def test_firewall_opens_8086_to_the_client_networks_only(host, lab):
    rules = [line for line in host.check_output("nft list table inet isobar").splitlines() if f"dport {lab['port']}" in line]
    assert len(rules) == 1
    for network in lab["networks"]:
        assert network in rules[0]


# --- onboarding and tokens -------------------------------------------------------------------------
def test_onboarded_once_and_operator_token_works(lab, ca_file):
    with urllib.request.urlopen(lab["url"] + "/api/v2/setup", context=ssl.create_default_context(cafile=ca_file),
                                timeout=15) as resp:
        assert json.loads(resp.read())["allowed"] is False
    status, body = api_status(lab, ca_file, "GET", f"/api/v2/buckets?name={lab['bucket']}", lab["operator_token"])
    assert status == 200 and body["buckets"][0]["retentionRules"], "the weather bucket has a retention"


def test_8086_opened_to_other_hosts_only_after_onboarding(host, lab, ca_file):
    """Until /api/v2/setup is done, whoever reaches it claims the instance: the role onboards while only localhost
    can reach 8086 and writes the firewall snippet that opens it afterwards (issue 12.4). The org's creation time is
    the moment of onboarding; the snippet, written once and left alone by idempotent runs, must be younger."""
    status, body = api_status(lab, ca_file, "GET", f"/api/v2/orgs?org={lab['org']}", lab["operator_token"])
    assert status == 200 and body["orgs"], f"org {lab['org']} not found"
    created = body["orgs"][0]["createdAt"]  # RFC 3339, up to nanoseconds, UTC
    whole, _, fraction = created.rstrip("Z").partition(".")
    onboarded = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp() + float("0." + (fraction or "0"))
    opened = float(host.check_output("date -r /etc/nftables.d/influxdb.nft +%s.%N"))
    assert opened > onboarded, (f"8086 was opened to {lab['networks']} at {opened:.3f}, before the onboarding at "
                                f"{onboarded:.3f} ({created}): another host could have claimed the setup")


def test_each_client_token_has_least_privilege(lab, ca_file):
    from influxdb_client.client.write_api import SYNCHRONOUS
    from influxdb_client.rest import ApiException

    def can_write(token, bucket):
        with client(lab, ca_file, token) as c:
            try:
                c.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record="scope_probe,t=verify v=1")
                return True
            except ApiException as exc:
                assert exc.status in (401, 403, 404), exc.status
                return False

    def can_read(token, bucket):
        with client(lab, ca_file, token) as c:
            try:
                c.query_api().query(f'from(bucket: "{bucket}") |> range(start: -1m) |> limit(n: 1)')
                return True
            except ApiException as exc:
                assert exc.status in (401, 403, 404), exc.status
                return False

    tokens, weather, telegraf = lab["tokens"], lab["bucket"], lab["telegraf_bucket"]
    assert can_read(tokens["producer"], weather) and not can_write(tokens["producer"], weather)
    assert can_write(tokens["inject"], weather) and not can_write(tokens["inject"], telegraf)
    assert can_write(tokens["telegraf"], telegraf) and not can_read(tokens["telegraf"], weather)
    assert not can_write(tokens["telegraf"], weather)
    for name, token in tokens.items():  # no client sees (or could mint) other tokens
        status, body = api_status(lab, ca_file, "GET", "/api/v2/authorizations", token)
        assert status in (401, 403) or body.get("authorizations") == [], f"the {name} token can read authorizations"


# --- inject ----------------------------------------------------------------------------------------
def test_inject_writes_exactly_what_was_asked_once(inventory_path, lab, ca_file, pipeline_host):
    prefix = f"verify-count-{uuid.uuid4().hex[:4]}-"
    hour = int(time.time()) // 3600 * 3600 - 3600  # the previous full hour: inside any retention
    window = {"start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour)),
              "stop": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour + 3600)),
              "interval": "1m", "stations": 3, "station_prefix": prefix,
              "measurement": "weather_verify"}  # kept apart from the weather the producer publishes
    first = run_inject(inventory_path, lab, pipeline_host, **window)
    assert first["changed"] and first["points_expected"] == 180 and first["points_written"] == 180

    def count():
        records = flux(lab, ca_file, f"""import "strings"
from(bucket: "{lab['bucket']}")
  |> range(start: {window['start']}, stop: {window['stop']})
  |> filter(fn: (r) => r._measurement == "weather_verify" and strings.hasPrefix(v: r.station, prefix: "{prefix}"))
  |> group(columns: ["_field"])
  |> count()""")
        return {r.values["_field"]: r.get_value() for r in records}

    assert count() == {"temperature": 180, "humidity": 180, "pressure": 180, "wind_speed": 180}
    second = run_inject(inventory_path, lab, pipeline_host, **window)
    assert second["changed"] is False and second["points_written"] == 0 and second["points_present"] == 180, second
    assert count() == {"temperature": 180, "humidity": 180, "pressure": 180, "wind_speed": 180}


# --- alerts ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_heat_spike_raises_crit_and_reaches_the_receiver(inventory_path, lab, ca_file, pipeline_host):
    prefix = f"verify-spike-{uuid.uuid4().hex[:4]}-"
    started = time.time()
    # A check only sees points stamped within its last `every`: the spike covers the next 90 seconds.
    result = run_inject(inventory_path, lab, pipeline_host, start="-20s", stop="+90s", interval="5s",
                        now_granularity="1s", stations=2, station_prefix=prefix,
                        heat_spike={"temperature": 45.5, "points": 18, "stations": [f"{prefix}02"]})
    assert result["spike_points"] == 18
    station = f"{prefix}02"
    receiver_log = "/var/lib/alert-receiver/alerts.jsonl"
    crit, delivered = [], []
    deadline = started + 120
    while time.time() < deadline and not (crit and delivered):
        if not crit:
            crit = flux(lab, ca_file, f'from(bucket: "_monitoring") |> range(start: -5m) |> filter(fn: (r) =>'
                                      f' r._measurement == "statuses" and r._level == "crit" and r.station == "{station}")')
        if crit and not delivered:
            log = pipeline_host.file(receiver_log)
            lines = log.content_string.splitlines() if log.exists else []
            delivered = [json.loads(line) for line in lines if station in line]
        time.sleep(3)
    assert crit, f"no crit status for {station} in _monitoring within 120s"
    assert delivered, f"no notification for {station} reached {lab['pipeline']}:{receiver_log} within 120s"
    body = delivered[0]["body"]
    assert body["_level"] == "crit" and body["_check_name"] == "weather-temperature" and body["temperature"] == 45.5
    assert delivered[0]["remote"] == lab["address"], "delivered by InfluxDB over the lab network"
