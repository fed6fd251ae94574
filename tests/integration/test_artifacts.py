"""Every artifact in the store matches its manifest checksum and really runs."""
from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile

import pytest
from fixtures.prerequisites import missing

from conftest import artifact_store

MANIFEST = artifact_store() / "manifest.json"
COMPONENTS = json.loads(MANIFEST.read_text())["components"] if MANIFEST.exists() else []


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def by_name(name):
    for component in COMPONENTS:
        if component["component"] == name:
            return component
    pytest.fail(f"{name} is missing from {MANIFEST}: run `make artifacts`")


def extract(component, tmp_path):
    archive = artifact_store() / component["file"]
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="tar")
    return tmp_path


def test_manifest_exists(store):
    assert MANIFEST.exists()


@pytest.mark.parametrize("component", [c for c in COMPONENTS if c["status"] == "present"], ids=lambda c: c["component"])
def test_checksum_matches_manifest(store, component):
    path = store / component["file"]
    if path.is_dir():
        assert sha256(path / "SHA256SUMS") == component["sha256"]
        for line in (path / "SHA256SUMS").read_text().splitlines():
            digest, name = line.split(maxsplit=1)
            assert sha256(path / name.strip()) == digest, name
    else:
        assert sha256(path) == component["sha256"]


def test_kafka_runs(store, tmp_path):
    kafka = by_name("kafka")
    home = extract(kafka, tmp_path) / f"kafka_2.13-{kafka['version']}"
    out = subprocess.run(["java", "-cp", f"{home}/libs/*", "kafka.Kafka", "--version"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert kafka["version"] in out.stdout


def test_influxd_runs(store, tmp_path):
    influxdb = by_name("influxdb")
    top = extract(influxdb, tmp_path) / f"influxdb2-{influxdb['version']}"
    binary = top / "influxd" if (top / "influxd").exists() else top / "usr" / "bin" / "influxd"
    out = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"InfluxDB v{influxdb['version']} ")


def test_telegraf_runs(store, tmp_path):
    telegraf = by_name("telegraf")
    top = extract(telegraf, tmp_path) / f"telegraf-{telegraf['version']}"
    out = subprocess.run([str(top / "usr" / "bin" / "telegraf"), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"Telegraf {telegraf['version']}" in out.stdout


def test_kafdrop_jar(store):
    kafdrop = by_name("kafdrop")
    if kafdrop["status"] != "present":
        pytest.skip(f"Kafdrop {kafdrop['version']}: {kafdrop['source']}")
    with open(store / kafdrop["file"], "rb") as handle:
        assert handle.read(4) == b"PK\x03\x04", "the Kafdrop jar is not a zip archive"


def test_jmx_exporter_agent_is_the_pinned_jar(store):
    """The store's agent is the jar the kafka role pins (its checksum is what hosts check on a download too)."""
    import zipfile
    from pathlib import Path

    import yaml

    defaults = yaml.safe_load((Path(__file__).resolve().parents[2] / "roles" / "kafka" / "defaults" / "main.yml").read_text())
    agent = by_name("jmx-exporter")
    assert agent["version"] == defaults["kafka_jmx_exporter_version"]
    jar = store / agent["file"]
    assert f"sha256:{sha256(jar)}" == defaults["kafka_jmx_exporter_checksum"]
    with zipfile.ZipFile(jar) as archive:
        manifest = archive.read("META-INF/MANIFEST.MF").decode()
    assert "Premain-Class: io.prometheus.jmx.JavaAgent" in manifest, manifest


def test_jmx_exporter_builder_refuses_another_checksum(tmp_path):
    """build-jmx-exporter.sh checks what Maven Central gave against the pinned checksum and keeps nothing else."""
    import os
    import shutil
    from pathlib import Path

    if not shutil.which("mvn"):
        missing("mvn is not on PATH (apt-get install maven)")
    builder = Path(__file__).resolve().parents[2] / "tools" / "artifacts" / "build-jmx-exporter.sh"
    env = dict(os.environ, STORE_DIR=str(tmp_path / "store"), WORK_DIR=str(tmp_path / "work"))
    out = subprocess.run([str(builder), "1.0.1", "sha256:" + "0" * 64], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 1 and "refused" in out.stderr, out.stderr[-2000:]
    assert not list((tmp_path / "store").iterdir())
