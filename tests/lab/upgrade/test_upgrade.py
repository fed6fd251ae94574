"""Verify of the scenario upgrade (molecule/shared/upgrade.yml; make test's last, make test-upgrade alone), under load:
InfluxDB backed up then upgraded from the release before the pinned one, a Telegraf release that cannot load the configuration
refused, Telegraf and Kafka upgraded to the releases of tools/artifacts/upgrade-targets.yml, Kafka finalized, an InfluxDB
and a Kafka downgrade refused. Results in $MOLECULE_EPHEMERAL_DIRECTORY/upgrade (or $ISOBAR_UPGRADE_DIR); skipped with
the reason when neither is set or the side effect did not run there."""
from __future__ import annotations

import calendar
import json
import re
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from fixtures.operations import changed_nothing, in_order, load_program, results_dir, step_log, traffic_sets
from fixtures.operations import marks as read_marks

testinfra_hosts = ["ansible://kafka_brokers"]

STEPS = ["influxdb_upgrade", "influxdb_upgrade_again", "telegraf_refused", "telegraf_upgrade", "telegraf_upgrade_again",
         "influxdb_refuse_downgrade", "finalize_refused", "upgrade", "upgrade_again", "finalize", "finalize_again",
         "refuse_downgrade"]
REFUSED = {"telegraf_refused", "influxdb_refuse_downgrade", "finalize_refused", "refuse_downgrade"}
ROOT = Path(__file__).resolve().parents[3]
TARGETS = yaml.safe_load((ROOT / "tools" / "artifacts" / "upgrade-targets.yml").read_text())


def pinned(role: str, name: str) -> str:
    return str(yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())[name])


TARGET = TARGETS["kafka"]
TELEGRAF_FROM, TELEGRAF_TO = pinned("telegraf", "telegraf_version"), TARGETS["telegraf"]
INFLUXDB_FROM, INFLUXDB_TO = TARGETS["influxdb_from"], pinned("influxdb", "influxdb_version")
# metadata.version levels of 4.4 and 4.3 (roles/kafka/vars/main.yml kafka_metadata_versions).
TARGET_LEVEL, PREVIOUS_LEVEL = 33, 30


@pytest.fixture(scope="module")
def op_dir() -> Path:
    return results_dir("upgrade", "ISOBAR_UPGRADE_DIR")


@pytest.fixture(scope="module")
def marks(op_dir) -> dict:
    return read_marks(op_dir)


def test_every_step_ended_as_expected(marks):
    assert in_order(marks) == STEPS
    for step in STEPS:
        assert (marks[step]["rc"] != 0) == (step in REFUSED), (step, marks[step])
        print(f"{step}: {marks[step]['end'] - marks[step]['begin']:.1f} s, rc {marks[step]['rc']}")


def test_the_brokers_restarted_one_at_a_time_and_a_second_run_changes_nothing(op_dir):
    restarted = re.findall(r"Rolling restart \| Restart (kafka\d)\]", step_log(op_dir, "upgrade"))
    assert sorted(set(restarted)) == ["kafka1", "kafka2", "kafka3"], restarted
    assert changed_nothing(op_dir, "upgrade_again")


def test_finalizing_before_every_broker_runs_the_release_is_refused_with_nothing_changed(op_dir):
    text = " ".join(step_log(op_dir, "finalize_refused").split())
    pinned_kafka = pinned("kafka", "kafka_version")
    for broker in ("kafka1", "kafka2", "kafka3"):
        assert f"{broker} runs kafka_2.13-{pinned_kafka}, not kafka_2.13-{TARGET}" in text, text[-2000:]
    assert "Nothing was changed" in text and "Finalize | Raise metadata.version" not in text
    assert changed_nothing(op_dir, "finalize_refused")


def test_finalize_raises_metadata_version_once(op_dir):
    log = step_log(op_dir, "finalize")
    assert "TASK [isobar.pipeline.kafka : Finalize | Raise metadata.version to the level of Kafka" in log
    assert not changed_nothing(op_dir, "finalize")
    assert changed_nothing(op_dir, "finalize_again")


def test_the_downgrade_past_the_finalized_level_is_refused_with_nothing_changed(op_dir):
    text = " ".join(step_log(op_dir, "refuse_downgrade").split())
    assert f"metadata.version is finalized at {TARGET_LEVEL}, above {PREVIOUS_LEVEL}" in text
    assert "Nothing was changed" in text
    assert changed_nothing(op_dir, "refuse_downgrade")


def test_nothing_acknowledged_was_lost_and_nothing_failed(op_dir, marks):
    kafka_load = load_program("tools/kafka_load.py", "kafka_load")
    events = kafka_load.load_events(str(op_dir / "traffic.events.jsonl"))
    acked, failed, read = traffic_sets(events)
    assert acked and not failed and acked == read
    phase = kafka_load.analyze(events, [{"name": "upgrade", "begin": marks["upgrade"]["begin"],
                                         "end": marks["upgrade"]["end"]}])["upgrade"]
    assert phase["sent"] > 0 and phase["failed"] == 0
    print(f"upgrade: sent = acked = consumed = {len(acked)}; during the rolling upgrade {phase['sent']} sent, "
          f"max ack wait {phase['max_ack_wait_s']} s, p99 {phase['p99_ack_wait_s']} s")


def test_every_broker_runs_the_new_release(host, op_dir):  # op_dir: skipped unless the upgrade ran
    assert host.file("/opt/kafka/current").linked_to == f"/opt/kafka/kafka_2.13-{TARGET}"
    assert host.service("kafka").is_running


def test_a_telegraf_release_that_cannot_load_the_configuration_is_refused_before_the_switch(op_dir):
    """The 1.39.3 build without the Kafka output: its binary runs and has the right version, so only loading the
    configuration with it can tell. Refused with the reason; never switched to, the agent never restarted, and the
    unpacked release removed again (so a corrected archive of the same version unpacks next time)."""
    log = step_log(op_dir, "telegraf_refused")
    text = " ".join(log.split())
    assert f"Telegraf {TELEGRAF_TO} cannot load /etc/telegraf/telegraf.conf" in text, text[-2000:]
    assert f"keeps running /opt/telegraf/telegraf-{TELEGRAF_FROM}" in text
    assert "Switch | Point current at this release" not in log
    assert "RUNNING HANDLER [isobar.pipeline.telegraf : Restart telegraf]" not in log


def test_telegraf_was_switched_to_the_new_release_once_and_a_second_run_changes_nothing(op_dir, marks, lab_host):
    monitor = lab_host("monitor")
    assert "RUNNING HANDLER [isobar.pipeline.telegraf : Restart telegraf]" in step_log(op_dir, "telegraf_upgrade")
    assert changed_nothing(op_dir, "telegraf_upgrade_again")
    assert monitor.file("/opt/telegraf/current").linked_to == f"/opt/telegraf/telegraf-{TELEGRAF_TO}"
    assert monitor.run(f"test -e /opt/telegraf/telegraf-{TELEGRAF_TO}/usr/bin/telegraf").rc == 0
    # Started during the upgrade step, not since (the second run restarted nothing).
    started = monitor.run("systemctl show telegraf -p ActiveEnterTimestamp --value "
                          "| xargs -I{} date -d {} +%s").stdout.strip()
    assert marks["telegraf_upgrade"]["begin"] <= int(started) <= marks["telegraf_upgrade"]["end"] + 1, started


def test_the_new_telegraf_release_delivers_to_kafka(lab_host, op_dir):  # op_dir: skipped unless the upgrade ran
    """Telegraf's own internal_write statistics (the JSON lines file the watchdog reads) carry the agent's version:
    the Kafka output of the new release keeps writing metrics."""
    monitor = lab_host("monitor")

    def kafka_samples():
        lines = monitor.check_output("tail -n 400 /var/lib/telegraf/internal_write.json").splitlines()
        samples = [json.loads(line) for line in lines if '"internal_write"' in line]
        return [s for s in samples if s["tags"].get("output") == "kafka" and s["tags"].get("version") == TELEGRAF_TO]

    first = kafka_samples()
    assert first, f"no internal_write sample of the Kafka output from Telegraf {TELEGRAF_TO}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        later = kafka_samples()
        if later[-1]["fields"]["metrics_written"] > first[-1]["fields"]["metrics_written"]:
            break
        time.sleep(5)
    assert later[-1]["fields"]["metrics_written"] > first[-1]["fields"]["metrics_written"], later[-1]
    assert later[-1]["fields"].get("errors", 0) == first[-1]["fields"].get("errors", 0), later[-1]


def test_an_influxdb_downgrade_is_refused_with_nothing_changed(op_dir, lab_host):
    text = " ".join(step_log(op_dir, "influxdb_refuse_downgrade").split())
    assert f"influxd {INFLUXDB_TO} is installed and influxdb_version asks for {INFLUXDB_FROM}" in text, text[-2000:]
    assert "a downgrade is refused" in text and "Nothing was changed" in text
    assert changed_nothing(op_dir, "influxdb_refuse_downgrade")
    assert lab_host("influxdb1").file("/opt/influxdb/current").linked_to == f"/opt/influxdb/influxdb2-{INFLUXDB_TO}"


BACKUP_REPORT = re.compile(r"Took backup (\d{8}T\d{6}Z): (\d+) files, (\d+) bytes .*? values (\{.*?\}) into (/\S+?)\. Kept")


def test_influxdb_was_backed_up_with_the_old_release_before_it_was_upgraded(op_dir, marks, lab_host):
    """The lab ran the release before the pinned one (the test lab's inventory asks for it): the role took a full backup
    with it, fetched to the controller, and only then moved the link; a second run changed nothing."""
    log = step_log(op_dir, "influxdb_upgrade")
    text = " ".join(log.split())
    assert f"Upgrading influxd {INFLUXDB_FROM} -> {INFLUXDB_TO}: taking a full backup" in text, \
        "the lab did not run the older InfluxDB release: the test lab's inventory asks for influxdb_version " + INFLUXDB_FROM
    found = BACKUP_REPORT.search(text)
    assert found, text[-3000:]
    name, files, size, counts, directory = found.groups()
    backup = Path(directory) / name
    assert backup.is_dir() and len([p for p in backup.iterdir() if p.is_file()]) == int(files) > 0, backup
    assert sum(p.stat().st_size for p in backup.iterdir() if p.is_file()) >= int(size) > 0
    # Taken during this step, before the switch and the restart on the new release.
    taken = calendar.timegm(time.strptime(name, "%Y%m%dT%H%M%SZ"))
    assert marks["influxdb_upgrade"]["begin"] - 1 <= taken <= marks["influxdb_upgrade"]["end"], (name, marks)
    assert log.index("Backup | Take the backup through the API") < log.index("Install | Point current at this version")
    assert "RUNNING HANDLER [isobar.pipeline.influxdb : Restart influxdb]" in log
    assert changed_nothing(op_dir, "influxdb_upgrade_again")
    influxdb = lab_host("influxdb1")
    assert influxdb.file("/opt/influxdb/current").linked_to == f"/opt/influxdb/influxdb2-{INFLUXDB_TO}"
    with influxdb.sudo():
        assert f"InfluxDB v{INFLUXDB_TO} " in influxdb.check_output("/opt/influxdb/current/influxd version")
    print(f"backup {name} before the upgrade: {files} files, {size} bytes, values {counts}")


def test_every_value_backed_up_is_still_there_after_the_upgrade(op_dir, inventory_vars, lab_host):
    """The values counted at backup time (every field of every point, all time, per counted bucket) against a count
    now, on the new release: the live inject service only adds points, so nothing may be missing."""
    from influxdb_client import InfluxDBClient

    found = BACKUP_REPORT.search(" ".join(step_log(op_dir, "influxdb_upgrade").split()))
    assert found, "no backup report in the influxdb_upgrade step"
    before = json.loads(found.group(4).replace('\\"', '"'))  # the step log shows the debug message JSON-escaped
    assert before, "the backup counted no bucket"
    facts = inventory_vars("influxdb1", "influxdb_url", "influxdb_org", "influxdb_operator_token", "kafka_ca_file")
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
        ca.write(lab_host("influxdb1").file(facts["kafka_ca_file"]).content_string)
        ca.flush()
        with InfluxDBClient(url=facts["influxdb_url"], token=facts["influxdb_operator_token"], org=facts["influxdb_org"],
                            ssl_ca_cert=ca.name, timeout=60_000) as client:
            for bucket, count in before.items():
                tables = client.query_api().query(
                    f'from(bucket: "{bucket}") |> range(start: 0) |> count() |> group() |> sum()')
                now = sum(int(r.get_value()) for t in tables for r in t.records)
                assert now >= count > 0, f"bucket {bucket}: {count} values at backup time, {now} now"
                print(f"{bucket}: {count} values at backup time, {now} now on {INFLUXDB_TO}")
