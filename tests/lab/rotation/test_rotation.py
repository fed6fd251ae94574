"""Molecule `rotation` verify: after molecule/shared/rotation.yml rotated every secret and the TLS leaf certificates
(playbooks/rotate-secrets.yml -e rotate=all,tls) on the converged test lab:

* every OLD credential recorded by the side effect is refused (SCRAM logins fail, InfluxDB tokens get 401, the
  InfluxDB admin password cannot sign in, the Kafdrop front answers 401) and every NEW one (read through Ansible
  from the test lab's vault files) is accepted;
* the vault files hold the new values, are still whole-file vaults (rekey keeps working) and keep no pending record;
* every TLS port serves a new certificate;
* the acks=all traffic that ran during the whole rotation lost nothing and saw no failed send;
* the pipeline still flows (inject -> produce -> consume new points) and Telegraf still delivers;
* a run with nothing selected, or in check mode, changes nothing.

Secrets stay in memory, wrapped so that an assertion never prints one (tests/lab/conftest.py reads them).
"""
from __future__ import annotations

import base64
import collections
import datetime
import hashlib
import json
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from fixtures import metrics_endpoint
from fixtures.prerequisites import require_module

testinfra_hosts = ["ansible://kafka_brokers"]

ROOT = Path(__file__).resolve().parents[3]
from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_client  # precise errors for a refused password

kafka = require_module("kafka", "kafka-python is needed on the machine running the verify tests")
from kafka.errors import SaslAuthenticationFailedError, UnsupportedSaslMechanismError  # noqa: E402

VAULT_PASSWORD_FILE = ROOT / "inventories" / "lab" / "vault-password.txt"
from fixtures.playbook_run import INJECT_TASK, PUBLISH_TASK, run_playbook  # noqa: E402
from fixtures.rotation import Secret, ephemeral, lab, masked, old  # noqa: E402,F401  (fixtures lab, old)


def kafka_params(lab, user, password, mechanism="SCRAM-SHA-512"):
    return {"bootstrap_servers": lab["kafka_bootstrap_servers"].split(","), "sasl_username": user,
            "sasl_password": password, "sasl_mechanism": mechanism, "ssl_cafile": lab["ca_file"],
            "ssl_check_hostname": True, "api_version": "4.0", "connect_timeout": 15, "request_timeout": 30}


def login(lab, user, password, mechanism="SCRAM-SHA-512"):
    """None when the login works, else the error; a transient one (bootstrap timeout) is retried twice."""
    for _ in range(3):
        error = kafka_client.try_login(kafka_params(lab, user, password, mechanism), user, password)
        if error is None or isinstance(error, (SaslAuthenticationFailedError, UnsupportedSaslMechanismError)):
            return error
        time.sleep(2)
    return error


def https(lab, url, method="GET", headers=None, body=None):
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=lab["ca_file"]), timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def vault_view(path) -> dict:
    import yaml

    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-vault")), "view", "--vault-id",
                           f"lab@{VAULT_PASSWORD_FILE}", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"ansible-vault view {path} failed: {proc.stderr[-500:]}"
    return yaml.safe_load(proc.stdout) or {}


# --- the vault files ----------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["isobar_vault_file", "isobar_generated_vault_file"])
def test_vault_files_are_whole_file_vaults_without_pending_records(lab, which):
    path = Path(lab[which])
    raw = path.read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT;1."), f"{path} is not a whole-file vault any more"
    # rewritten by the rotation under the environment's own identity, never the first loaded (the lab's)
    header = raw.split(b"\n", 1)[0].decode()
    assert header.rsplit(";", 1)[-1] == lab["isobar_vault_id"], f"{path}: {header}"
    assert path.stat().st_mode & 0o777 == 0o600, f"{path} mode {oct(path.stat().st_mode & 0o777)}"
    keys = set(vault_view(path))
    assert not keys & {"vault_rotation_pending", "vault_rotation_pending_tokens"}, f"{path} keeps a pending record"


def test_vault_holds_new_values(lab, old):
    """The inventory (decrypting the test lab's vault files now) gives other values than before the rotation."""
    unchanged = [f"kafka_scram:{u}" for u in lab["users"] if lab["kafka_scram_passwords"][u] == old["kafka_scram_passwords"][u]]
    unchanged += [f"influxdb_tokens:{c}" for c in old["influxdb_tokens"]
                  if lab["influxdb_client_tokens"][c] == old["influxdb_tokens"][c]]
    if lab["influxdb_admin_password"] == old["influxdb_admin_password"]:
        unchanged.append("influxdb_admin_password")
    if lab["kafdrop_basic_auth_password"] == old["kafdrop_basic_auth_password"]:
        unchanged.append("kafdrop_basic_auth_password")
    assert not unchanged, f"the vault still holds the old value of {unchanged}"


# --- Kafka SCRAM --------------------------------------------------------------------------------
def test_old_scram_passwords_are_refused(lab, old):
    accepted = []
    for user in lab["users"]:
        error = login(lab, user, old["kafka_scram_passwords"][user])
        if not isinstance(error, SaslAuthenticationFailedError):
            accepted.append(f"{user}: {'logged in' if error is None else type(error).__name__}")
    assert not accepted, f"old SCRAM passwords not refused as a wrong password: {accepted}"


def test_new_scram_passwords_log_in(lab):
    refused = []
    for user in lab["users"]:
        error = login(lab, user, lab["kafka_scram_passwords"][user])
        if error is not None:
            refused.append(f"{user}: {type(error).__name__}")
    assert not refused, f"new SCRAM passwords refused: {refused}"


def test_admin_bridge_is_gone(lab):
    """After the rotation the admin has its SCRAM-SHA-512 credential only, and the listener refuses SHA-256."""
    admin = lab["kafka_admin_user"]
    client = kafka_client.open_admin_client(kafka_params(lab, admin, lab["kafka_scram_passwords"][admin]))
    try:
        described = client.describe_user_scram_credentials([admin])[admin]
    finally:
        client.close()
    mechanisms = sorted(info["mechanism"].name for info in described.get("credential_infos") or [])
    assert mechanisms == ["SCRAM_SHA_512"], mechanisms
    error = login(lab, admin, lab["kafka_scram_passwords"][admin], "SCRAM-SHA-256")
    assert isinstance(error, (UnsupportedSaslMechanismError, SaslAuthenticationFailedError)), type(error).__name__


def test_brokers_hold_no_admin_login(host):
    """The brokers log in to each other with their certificates: the admin rotation touched none of their files."""
    with host.sudo():
        props = host.file("/etc/kafka/server.properties").content_string
        jaas = host.file("/etc/kafka/kafka_server_jaas.conf").exists
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512\n" in props
    assert "inter.broker.listener.name=REPLICATION\n" in props
    assert not jaas


# --- InfluxDB -----------------------------------------------------------------------------------
def test_old_influxdb_tokens_get_401_new_accepted(lab, old):
    statuses = {}
    for client, token in old["influxdb_tokens"].items():
        statuses[f"{client} old"] = https(lab, lab["influxdb_url"] + "/api/v2/buckets?limit=1",
                                          headers={"Authorization": f"Token {token}"})[0]
        statuses[f"{client} new"] = https(lab, lab["influxdb_url"] + "/api/v2/buckets?limit=1",
                                          headers={"Authorization": f"Token {lab['influxdb_client_tokens'][client]}"})[0]
    assert statuses == {k: (401 if k.endswith("old") else 200) for k in statuses}, statuses


def test_one_token_per_client(lab):
    headers = {"Authorization": f"Token {lab['influxdb_operator_token']}"}
    status, body = https(lab, lab["influxdb_url"] + f"/api/v2/orgs?org={lab['influxdb_org']}", headers=headers)
    assert status == 200
    org_id = json.loads(body)["orgs"][0]["id"]
    status, body = https(lab, lab["influxdb_url"] + f"/api/v2/authorizations?orgID={org_id}", headers=headers)
    assert status == 200
    counts = collections.Counter(a["description"] for a in json.loads(body)["authorizations"])
    per_client = {client: counts.get(f"isobar client {client}", 0) for client in lab["influxdb_client_tokens"]}
    assert per_client == {client: 1 for client in per_client}, per_client


def test_old_admin_password_cannot_sign_in(lab, old):
    url = lab["influxdb_url"] + "/api/v2/signin"
    user = lab["influxdb_admin_user"]
    status_old = https(lab, url, "POST", basic(user, old["influxdb_admin_password"]))[0]
    status_new = https(lab, url, "POST", basic(user, lab["influxdb_admin_password"]))[0]
    assert (status_old, status_new) == (401, 204)


# --- Kafdrop front ------------------------------------------------------------------------------
def test_old_kafdrop_basic_auth_gets_401(lab, old):
    front = lab["groups"]["kafdrop"][0]
    url = f"https://{lab['addresses'][front]}:{lab['kafdrop_port']}/"
    user = lab["kafdrop_basic_auth_user"]
    status_old = https(lab, url, headers=basic(user, old["kafdrop_basic_auth_password"]))[0]
    status_new = https(lab, url, headers=basic(user, lab["kafdrop_basic_auth_password"]))[0]
    assert status_old == 401
    # 200 when Kafdrop runs; 502/503 from the front when the lab disables the service (no jar): past the auth.
    assert status_new in (200, 502, 503), status_new


# --- TLS ----------------------------------------------------------------------------------------
def test_every_tls_port_serves_a_new_certificate(lab, old, lab_host):
    """Asked from the InfluxDB host (the alert receiver lets only InfluxDB in), and the monitoring ports from the
    monitoring host (the only one they let in): the serial each TLS port serves is the one of its host's certificate
    now, and not the one recorded before the rotation."""
    from cryptography import x509

    groups = lab["groups"]
    endpoints = [(b, lab["kafka_client_port"]) for b in groups["kafka_brokers"]]
    endpoints += [(h, lab["influxdb_port"]) for h in groups["influxdb"]]
    endpoints += [(h, lab["kafdrop_port"]) for h in groups["kafdrop"]]
    endpoints += [(groups["pipeline"][0], lab["alert_receiver_port"])]
    asked_from = {endpoint: groups["influxdb"][0] for endpoint in endpoints}
    if lab["monitoring_enabled"] and groups.get("monitoring"):
        # Only the monitoring hosts may reach the exporters: asked from the first one (its own ports too).
        monitor = groups["monitoring"][0]
        asked_from.update({(h, lab["monitoring_node_exporter_port"]): monitor for h in groups["all"]})
        asked_from.update({(h, port): monitor for h in groups["monitoring"]
                           for port in (lab["monitoring_prometheus_port"], lab["monitoring_alertmanager_port"])})
        # The brokers' JMX exporter agent (its PKCS#12 copy of the host certificate is renewed by the same step).
        asked_from.update({(b, lab["kafka_jmx_exporter_port"]): monitor for b in groups["kafka_brokers"]
                           if lab["jmx_agent"][b]})
        # The pipeline exporter on the producer host (its copies are renewed by the TLS step, then it restarts).
        if lab["pipeline_exporter_enabled"]:
            asked_from[(groups["pipeline"][0], lab["pipeline_exporter_port"])] = monitor
        # Telegraf's metrics endpoint (its copies are renewed by the TLS step, then the agent restarts).
        asked_from.update({(h, lab["telegraf_metrics_port"]): monitor for h in lab["telegraf_metrics"]})
    problems = []
    for (name, port), asker_name in asked_from.items():
        asker = lab_host(asker_name)
        out = asker.run(f"openssl s_client -connect {lab['addresses'][name]}:{port} -servername {name} </dev/null "
                        "2>/dev/null | openssl x509 -noout -serial").stdout.strip()
        if not out.startswith("serial="):
            problems.append(f"{name}:{port} serves no certificate")
            continue
        served = int(out.split("=", 1)[1], 16)
        on_host = x509.load_pem_x509_certificate(
            lab_host(name).file("/etc/isobar/pki/host.crt").content_string.encode()).serial_number
        if served == int(old["certificate_serials"][name]):
            problems.append(f"{name}:{port} still serves the old certificate")
        elif served != on_host:
            problems.append(f"{name}:{port} serves another certificate than the host's")
    assert not problems, problems


# --- what clients saw, and the pipeline afterwards ----------------------------------------------
def test_kafka_traffic_lost_nothing_and_never_failed(old):
    path = ephemeral() / "rotation-load.json"
    assert path.exists(), "no traffic summary: the generator did not finish (see the side effect's output)"
    summary = json.loads(path.read_text())
    print(json.dumps({k: summary.get(k) for k in ("seconds", "sent", "acked", "failed", "consumed", "acked_missing_from_topic",
                                                   "broker_errors_retried", "latency_ms", "producer_stuck",
                                                   "consumer_reopened")}))
    assert summary["sent"] > 0
    assert summary["failed"] == 0, summary["errors"]
    assert summary["acked"] == summary["sent"]
    assert summary["acked_missing_from_topic"] == 0
    assert summary.get("zero_loss") is True
    assert not summary["producer_stuck"]


def consumer(lab, user, **extra):
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=lab["kafka_bootstrap_servers"].split(","), security_protocol="SASL_SSL",
                         sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user,
                         sasl_plain_password=lab["kafka_scram_passwords"][user], ssl_cafile=lab["ca_file"],
                         api_version=(4, 0), group_id=None, enable_auto_commit=False, **extra)


def offsets_at(lab, user, topic, millis, attempts=3):
    """An assigned consumer of every partition of topic, and each partition's first offset at or after millis.

    Right after a rolling restart one ListOffsets round can keep failing for the client's whole 30 s (CI, on a slower
    machine than this one: 'Failed to get offsets by timestamps in 30000 ms' once the rotation had ended); a new client
    with fresh metadata is what an operator's tool would do next. Still failing after a few gives the partitions'
    leaders as the client saw them, so the report says which broker did not answer."""
    from kafka import TopicPartition
    from kafka.errors import KafkaTimeoutError

    failures = []
    for attempt in range(attempts):
        c = consumer(lab, user)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
            c.assign(tps)
            return c, tps, c.offsets_for_times({tp: millis for tp in tps})
        except KafkaTimeoutError as error:
            cluster = c._client.cluster  # what this client knew: leader per partition, brokers
            failures.append({"attempt": attempt + 1, "error": str(error),
                             "leaders": {p: cluster.leader_for_partition(TopicPartition(topic, p))
                                         for p in sorted(cluster.partitions_for_topic(topic) or ())},
                             "brokers": [repr(b) for b in cluster.brokers()]})
            c.close()
            time.sleep(5)
        except BaseException:
            c.close()
            raise
    raise AssertionError(f"offsets of {topic} at {millis} ms never came back: {failures}")


def test_telegraf_delivered_during_and_after_the_rotation(lab):
    """The weather metrics Telegraf collected (their own timestamps) from the start of the rotation until now are on
    weather-telegraf: the largest hole is what the rotation cost Telegraf (restarts; a Kafka client hang after a
    broker restart that the rotation cures at once instead of waiting for the role's watchdog). New ones arrive now."""
    window = json.loads((ephemeral() / "rotation-window.json").read_text())
    agent = lab["groups"]["telegraf"][0]
    topic = lab["kafka_telegraf_topic"]
    now = time.time()
    c, tps, starts = offsets_at(lab, lab["kafka_admin_user"], topic, int((window["began"] - 60) * 1000))
    try:
        for tp in tps:
            c.seek(tp, starts[tp].offset if starts[tp] else c.end_offsets([tp])[tp])
        stamps, deadline = collections.defaultdict(list), time.monotonic() + 150
        while time.monotonic() < deadline and min((v[-1] for v in stamps.values()), default=0) < now + 10:
            for batch in c.poll(timeout_ms=1000).values():
                for record in batch:
                    metric = json.loads(record.value)
                    if metric.get("name") == "weather" and metric.get("tags", {}).get("host") == agent:
                        stamps[metric["tags"]["station"]].append(metric["timestamp"])
    finally:
        c.close()
    assert stamps, f"no weather metric from {agent} on {topic} since the rotation began"
    holes = {}
    for station, times in stamps.items():
        times = sorted(t for t in set(times) if t >= window["began"] - 20)
        holes[station] = max((b - a for a, b in zip(times, times[1:])), default=0)
        assert times and times[-1] >= now, f"no new weather metric of {station} from {agent} after the rotation"
    print(f"weather metrics of {agent} from the start of the rotation ({window['ended'] - window['began']:.0f} s) until "
          f"now: largest hole per station {holes} s (collection every 10 s)")
    # Longer than a few flushes means metrics were lost, not delayed. Even a hang that starts after the rotation's
    # last check stays under this: the role's watchdog restarts the agent 60-80 s into the stall (stall 60 s, timer 20 s).
    assert max(holes.values()) <= 120, f"Telegraf lost up to {max(holes.values())} s of metrics during the rotation"


def test_pipeline_flows_with_the_new_credentials(lab, inventory_path):
    """inject (new inject token) -> produce (new producer token and password) -> read back as the consumer (new
    password): every point of a fresh window is on the topic, exactly once."""
    from kafka import TopicPartition

    # The producer's cursor is a time: a point written behind it is never published (that is the design, a backfill
    # older than the cursor is a one-shot run with an explicit start). With the live services on, the service's cursor
    # follows now, so the window is written just ahead of now and read back once it is due. Either the service (before
    # the pause) or the one-shot run may publish a point, so the read-back starts at the topic's ends from before the
    # window, not at "end minus what the one-shot run reports" (CI: 'assert 5 >= 12', the service had sent the rest).
    topic = lab["kafka_weather_topic"]
    c = consumer(lab, lab["kafka_consumer_user"])
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
        starts = c.end_offsets(tps)
    finally:
        c.close()

    written = run_playbook(inventory_path, "inject.yml", {
        "pipeline_inject_once_stations": 2, "pipeline_inject_once_start": "+5s", "pipeline_inject_once_stop": "+35s",
        "pipeline_inject_once_interval": "10s", "pipeline_inject_once_now_granularity": "1s", "pipeline_inject_once_seed": 7}
    ).assert_ok().task(INJECT_TASK)
    assert written["points_written"] == written["points_expected"] > 0, written
    first, last = (int(datetime.datetime.fromisoformat(written["window"][k].replace("Z", "+00:00")).timestamp()) * 10**9
                   for k in ("first", "last"))
    time.sleep(max(0.0, last / 10**9 - time.time() + 2))  # every point of the window is due
    # A one-shot run: with the live producer service on it is paused around the run (it holds the checkpoint); with
    # the service off the option changes nothing.
    produced = run_playbook(inventory_path, "produce.yml", {"pipeline_produce_pause_service": True}).assert_ok().task(
        PUBLISH_TASK)

    c = consumer(lab, lab["kafka_consumer_user"])
    try:
        c.assign(tps)
        ends = c.end_offsets(tps)
        for tp in tps:
            c.seek(tp, starts[tp])
        seen, deadline = [], time.monotonic() + 60
        while any(c.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "reading the weather topic back took more than 60 s"
            for batch in c.poll(timeout_ms=1000).values():
                seen.extend(json.loads(r.value) for r in batch)
    finally:
        c.close()
    # The window's points: every 10 s per station (the live inject service writes the same stations every second,
    # so the seconds in between are its points, not ours).
    expected = {f"weather/station-{i:02d}/{t}" for i in (1, 2) for t in range(first, last + 1, 10 * 10**9)}
    assert len(expected) == written["points_expected"], (sorted(expected), written)
    ours = collections.Counter(v["id"] for v in seen if v["id"] in expected)
    print(f"injected {written['points_written']}, one-shot run produced {produced['messages']}, "
          f"read back {len(ours)} of the window's {len(expected)}")
    assert set(ours) == expected, f"points of the window missing from the topic: {sorted(expected - set(ours))}"
    assert max(ours.values()) == 1, f"points published twice: {[i for i, n in ours.items() if n > 1][:3]}"


def test_pipeline_exporter_reads_every_source_with_the_new_credentials(lab, lab_host):
    """The exporter reads Kafka as the consumer (new password) and InfluxDB with the producer's token (the old one is
    revoked): the rotation re-rendered its settings and restarted it, so every source answers."""
    if not lab["pipeline_exporter_enabled"]:
        pytest.skip("pipeline_exporter_enabled is false in this inventory (the exporter is an inventory choice)")
    name = lab["groups"]["pipeline"][0]
    url = f"https://{lab['addresses'][name]}:{lab['pipeline_exporter_port']}/metrics"
    deadline = time.monotonic() + 60
    while True:
        out = metrics_endpoint.fetch(lab_host(name), url, lab["kafka_ca_file"])
        up = dict(re.findall(r'isobar_exporter_source_up\{source="(kafka|influxdb|checkpoint)"\} ([0-9.]+)', out.stdout))
        if (out.rc == 0 and up == {"kafka": "1.0", "influxdb": "1.0", "checkpoint": "1.0"}) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert out.rc == 0, out.stderr[-1000:]
    assert up == {"kafka": "1.0", "influxdb": "1.0", "checkpoint": "1.0"}, up


def test_consumer_cli_uses_the_new_password(lab, lab_host):
    monitor = lab_host(lab["groups"]["pipeline"][0])
    result = monitor.run("weather-consumer --all --max-messages 5 --json")
    assert result.rc == 0, result.stderr[-500:]
    assert json.loads(result.stdout)["messages"] >= 1


# --- nothing to rotate --------------------------------------------------------------------------
def test_nothing_selected_or_check_mode_changes_nothing(lab, inventory_path):
    files = [Path(lab["isobar_vault_file"]), Path(lab["isobar_generated_vault_file"])]
    before = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    for extra, check in ((None, False), ({"rotate": ""}, False), ({"rotate": "all,tls"}, True)):
        run = run_playbook(inventory_path, "rotate-secrets.yml", extra, check=check).assert_ok()
        assert not run.changed, (extra, check, run.changed)
    assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in files] == before, "a vault file changed"
