"""The telegraf role's configuration, rendered from its templates, run by the Telegraf binary of the artifact
store against the real local Kafka (SASL_SSL, SCRAM-SHA-512, ACLs) and InfluxDB (HTTPS) test servers."""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shlex
import shutil
import ssl
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from fixtures.metrics_endpoint import labels, parse
from fixtures.pipeline_helpers import create_topic, grant, scram_user
from fixtures.prerequisites import missing
from fixtures.server_process import free_port, make_pki

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "telegraf"

pytestmark = pytest.mark.slow


def role_default(name):
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())[name]


@pytest.fixture(scope="module")
def telegraf_binary(store, tmp_path_factory):
    version = role_default("telegraf_version")
    archive = store / f"telegraf-{version}_linux_amd64.tar.gz"
    if not archive.exists():
        missing(f"{archive} is not in the artifact store (tools/artifacts/build-telegraf.sh {version})")
    directory = tmp_path_factory.mktemp("telegraf-dist")
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    return directory / f"telegraf-{version}" / "usr" / "bin" / "telegraf"


@pytest.fixture(scope="module")
def rendered(kafka_server, influxdb_server, tmp_path_factory):
    """The role's telegraf.conf and environment file for the local servers, as the role would write them."""
    work = tmp_path_factory.mktemp("telegraf")
    (work / "install" / "libexec").mkdir(parents=True)
    generator = work / "install" / "libexec" / "weather_generator.py"
    shutil.copy(ROLE / "files" / "weather_generator.py", generator)
    generator.chmod(0o755)  # as the role installs it
    # One CA file for both services, as in the lab (there one CA signs everything; here each server has its own).
    (work / "ca.crt").write_text(Path(kafka_server.ca_file).read_text() + Path(influxdb_server.ca_path).read_text())

    topic = f"weather-telegraf-{secrets.token_hex(3)}"
    create_topic(kafka_server, topic, 1)
    password = scram_user(kafka_server, "telegraf")
    grant(kafka_server, "telegraf", [("TOPIC", topic, "WRITE"), ("TOPIC", topic, "DESCRIBE")])
    status, bucket = influxdb_server.api("POST", "/api/v2/buckets", body={
        "orgID": influxdb_server.org_id, "name": "telegraf", "retentionRules": []})
    assert status == 201, bucket
    status, auth = influxdb_server.api("POST", "/api/v2/authorizations", body={
        "orgID": influxdb_server.org_id, "description": "test telegraf",
        "permissions": [{"action": "write", "resource": {"type": "buckets", "id": bucket["id"],
                                                          "orgID": influxdb_server.org_id}}]})
    assert status == 201, auth

    # The agent's own metrics endpoint (telegraf_metrics_enabled), with a certificate of its own for 127.0.0.1.
    tls = work / "tls"
    tls.mkdir()
    metrics_ca, metrics_cert, metrics_key = make_pki("Isobar test CA (telegraf metrics)", "isobar-test-telegraf")
    (work / "metrics-ca.crt").write_bytes(metrics_ca)
    (tls / "metrics.crt").write_bytes(metrics_cert)
    (tls / "metrics.key").write_bytes(metrics_key)
    (tls / "metrics.key").chmod(0o600)
    metrics_port = free_port()

    overrides = {
        "render_dir": str(work), "telegraf_install_dir": str(work / "install"), "telegraf_config_dir": str(work),
        "telegraf_interval": "1s", "telegraf_flush_interval": "1s",
        "telegraf_kafka_brokers": [kafka_server.bootstrap], "telegraf_kafka_topic": topic,
        "telegraf_kafka_user": "telegraf", "telegraf_kafka_password": password,
        "telegraf_influxdb_url": influxdb_server.url, "telegraf_influxdb_org": influxdb_server.org,
        "telegraf_influxdb_bucket": "telegraf", "telegraf_influxdb_token": auth["token"],
        "telegraf_watchdog_stats": str(work / "internal_write.json"),
        "telegraf_metrics_enabled": True, "telegraf_metrics_port": metrics_port, "telegraf_metrics_tls_dir": str(tls),
        "ansible_python_interpreter": sys.executable,
    }
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           str(Path(__file__).with_name("render_telegraf.yml")), "-e", json.dumps(overrides)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert password not in proc.stdout and auth["token"] not in proc.stdout
    return {"dir": work, "conf": work / "telegraf.conf", "env": work / "telegraf.env", "topic": topic,
            "password": password, "token": auth["token"],
            "metrics_url": f"https://127.0.0.1:{metrics_port}/metrics", "metrics_ca": str(work / "metrics-ca.crt")}


def scrape(rendered):
    context = ssl.create_default_context(cafile=rendered["metrics_ca"])
    with urllib.request.urlopen(rendered["metrics_url"], context=context, timeout=10) as response:
        return parse(response.read().decode())


def environment_file(path):
    """KEY='value' lines as systemd's EnvironmentFile reads them (single quotes: literal)."""
    values = {}
    for line in Path(path).read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, raw = line.partition("=")
            values[key] = shlex.split(raw)[0] if raw else ""
    return values


def validate_command(binary, config):
    """The validate command of the role's 'Write telegraf.conf' task, with this binary and file."""
    tasks = yaml.safe_load((ROLE / "tasks" / "config.yml").read_text())
    template = next(t["isobar.pipeline.template_file"]["validate"] for t in tasks
                    if t.get("isobar.pipeline.template_file", {}).get("src") == "telegraf.conf.j2")
    program, _, arguments = template.partition("/usr/bin/telegraf ")
    assert program.startswith("{{") and program.endswith("}}"), template
    return [str(binary)] + [str(config) if w == "%s" else w for w in shlex.split(arguments)]


def test_secrets_are_only_in_the_environment_file(rendered):
    conf = rendered["conf"].read_text()
    assert rendered["password"] not in conf and rendered["token"] not in conf
    assert '"${KAFKA_PASSWORD}"' in conf and '"${INFLUX_TOKEN}"' in conf
    env = environment_file(rendered["env"])
    assert env == {"KAFKA_PASSWORD": rendered["password"], "INFLUX_TOKEN": rendered["token"]}


def test_role_validation_accepts_the_config_and_rejects_a_broken_one(telegraf_binary, rendered, tmp_path):
    ok = subprocess.run(validate_command(telegraf_binary, rendered["conf"]), capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    broken = tmp_path / "broken.conf"
    broken.write_text(rendered["conf"].read_text().replace("sasl_mechanism =", "sasl_mechanismz ="))
    bad = subprocess.run(validate_command(telegraf_binary, broken), capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "sasl_mechanismz" in bad.stderr
    missing_ca = tmp_path / "missing-ca.conf"
    missing_ca.write_text(rendered["conf"].read_text().replace(str(rendered["dir"] / "ca.crt"), "/nonexistent/ca.crt"))
    bad = subprocess.run(validate_command(telegraf_binary, missing_ca), capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "/nonexistent/ca.crt" in bad.stderr


def test_agent_publishes_weather_to_kafka_and_influxdb(telegraf_binary, rendered, kafka_server, influxdb_server):
    from kafka import KafkaConsumer, TopicPartition

    env = dict(os.environ, **environment_file(rendered["env"]))
    log = (rendered["dir"] / "agent.log").open("w")
    agent = subprocess.Popen([str(telegraf_binary), "--config", str(rendered["conf"])], env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    consumer = KafkaConsumer(**kafka_server.kafka_python_config(), group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(rendered["topic"], 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        started = time.monotonic()
        weather, names = [], set()
        while time.monotonic() - started < 30 and len({m["tags"]["station"] for _, m in weather}) < 4:
            assert agent.poll() is None, (rendered["dir"] / "agent.log").read_text()[-3000:]
            for batch in consumer.poll(timeout_ms=1000).values():
                for record in batch:
                    metric = json.loads(record.value)
                    names.add(metric["name"])
                    if metric["name"] == "weather":
                        weather.append((record.key.decode(), metric))
        assert weather, f"no weather metric on {rendered['topic']} within 30 s; seen {names}; log: " \
                        + (rendered["dir"] / "agent.log").read_text()[-3000:]
        print(f"{len(weather)} weather metrics after {time.monotonic() - started:.1f} s, measurements {sorted(names)}")
        stations = {m["tags"]["station"] for _, m in weather}
        assert stations == set(role_default("telegraf_weather_stations"))
        for key, metric in weather:
            assert key == metric["tags"]["station"] and metric["tags"]["source"] == "telegraf"
            assert set(metric["fields"]) == {"temperature", "humidity", "pressure", "wind_speed"}
            assert -15 <= metric["fields"]["temperature"] <= 40
        assert "internal_agent" in names

        # The same metrics in InfluxDB, and InfluxDB's own /metrics scraped over TLS.
        query = (f'from(bucket: "telegraf") |> range(start: -5m) '
                 f'|> filter(fn: (r) => r._measurement == "weather" or r._measurement == "prometheus") '
                 f'|> group(columns: ["_measurement"]) |> count()')
        counts = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (counts.get("weather") and counts.get("prometheus")):
            with influxdb_server.client() as client:
                counts = {r.get_measurement(): r.get_value() for t in client.query_api().query(query) for r in t.records}
            time.sleep(1)
        assert counts.get("weather") and counts.get("prometheus"), counts
        errors = [line for line in (rendered["dir"] / "agent.log").read_text().splitlines() if " E! " in line]
        assert not errors, errors[:5]

        # The watchdog's view of the Kafka output: progress, nothing stuck.
        spec = importlib.util.spec_from_file_location("kafka_watchdog", ROLE / "files" / "kafka_watchdog.py")
        watchdog = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(watchdog)
        # The first internal_write record may predate the first flush (metrics_written 0): wait for a later one.
        deadline = time.monotonic() + 45
        sample = watchdog.newest_sample(str(rendered["dir"] / "internal_write.json"), "kafka")
        while time.monotonic() < deadline and not (sample and sample["written"] > 0):
            time.sleep(1)
            sample = watchdog.newest_sample(str(rendered["dir"] / "internal_write.json"), "kafka")
        assert sample and sample["written"] > 0 and sample["errors"] == 0, sample
        assert watchdog.decide(None, sample, time.time(), 180, 120)[0] == "ok"

        # Its own statistics for Prometheus, over HTTPS: only internal_*, and they show the writes (not the weather).
        values = scrape(rendered)
        names = {series.split("{")[0] for series in values}
        assert names and all(n.startswith("internal_") for n in names), sorted(n for n in names if not n.startswith("internal_"))
        written = {labels(s)["output"]: v for s, v in values.items() if s.startswith("internal_write_metrics_written{")}
        assert written.get("kafka", 0) > 0 and written.get("influxdb_v2", 0) > 0, written
        with pytest.raises(OSError) as plain:  # URLError, HTTPError and RemoteDisconnected are OSErrors
            urllib.request.urlopen(rendered["metrics_url"].replace("https://", "http://"), timeout=10).read()
        # It answered (400, or hung up), it did not refuse the connection: the port is up, only TLS gets data.
        assert not isinstance(getattr(plain.value, "reason", plain.value), ConnectionRefusedError), plain.value
    finally:
        consumer.close()
        agent.terminate()
        try:
            agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        log.close()
