"""Verify of the Molecule `failover` scenario: the figures of the broker failover drill, and the cluster now.

The side effect (molecule/shared/failover.yml -> playbooks/broker-failover.yml) writes a JSON report and, next to
it, the events of each traffic run (<report>.<run>.events.jsonl). The report is found at
$ISOBAR_FAILOVER_REPORT, else $MOLECULE_EPHEMERAL_DIRECTORY/failover-report.json. Outside Molecule, with neither
set, the report tests are skipped with the reason (the cluster tests still run):

    ISOBAR_FAILOVER_REPORT=/tmp/drill/report.json pytest tests/lab/failover --ansible-inventory=inventories/lab \\
        --hosts='ansible://kafka_brokers'

The figures are not taken on trust: acked-vs-read is recomputed from the raw events, and the unavailability window
is recomputed from them with the same analysis the drill used (tools/kafka_load.py). Connection facts and secrets
come from the inventory through Ansible (tests/lab/conftest.py).
"""
from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from fixtures.operations import load_program
from fixtures.prerequisites import missing, require_module

testinfra_hosts = ["ansible://kafka_brokers"]

ROOT = Path(__file__).resolve().parents[3]
from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_client

# Bounds for a 3-broker cluster on one machine; override with the environment when a slower lab needs it.
MAX_WINDOW_S = float(os.environ.get("ISOBAR_FAILOVER_MAX_WINDOW", "30"))
MAX_LEADERS_MOVED_S = float(os.environ.get("ISOBAR_FAILOVER_MAX_LEADERS_MOVED", "60"))
MAX_FULL_ISR_S = float(os.environ.get("ISOBAR_FAILOVER_MAX_FULL_ISR", "300"))
# What an acks=all producer may be told while min.insync.replicas cannot be met.
CLEAR_ERRORS = {"NotEnoughReplicasError", "NotEnoughReplicasAfterAppendError", "KafkaTimeoutError", "RequestTimedOutError"}


def _report_path() -> Path | None:
    if os.environ.get("ISOBAR_FAILOVER_REPORT"):
        return Path(os.environ["ISOBAR_FAILOVER_REPORT"])
    if os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY"):
        return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "failover-report.json"
    return None


@pytest.fixture(scope="module")
def report_path() -> Path:
    path = _report_path()
    if path is None:
        missing("no drill report: set ISOBAR_FAILOVER_REPORT (or run under Molecule) to check the drill's figures")
    assert path.is_file(), f"the failover drill wrote no report at {path} (did the side effect run?)"
    return path


@pytest.fixture(scope="module")
def report(report_path) -> dict:
    return json.loads(report_path.read_text())


@pytest.fixture(scope="module")
def kafka_load():
    return load_program("tools/kafka_load.py", "kafka_load")


def _events(report_path: Path, run: str, kafka_load) -> list[dict]:
    path = report_path.with_name(report_path.name.removesuffix(".json") + f".{run}.events.jsonl")
    assert path.is_file(), f"the events of the {run} run were not fetched next to the report ({path})"
    return kafka_load.load_events(str(path))


def _acked_and_read(events: list[dict]) -> tuple[set[int], set[int], set[int]]:
    acked = {e["seq"] for e in events if e["e"] == "ack"}
    failed = {e["seq"] for e in events if e["e"] == "err"}
    read = {seq for e in events if e["e"] == "read" for seq in e["s"]}
    return acked, failed, read


# --- the drill's report -----------------------------------------------------------------------

def test_drill_passed_every_check(report):
    failed = [f"{c['name']}: {c['detail']}" for c in report["checks"] if not c["ok"]]
    assert report["error"] is None, report["error"]
    assert not failed and report["passed"], failed


def test_one_down_zero_loss_acked_equals_consumed(report):
    messages = report["one_broker_down"]["messages"]
    assert messages["sent"] > 0
    assert messages["acked"] == messages["consumed"] == messages["sent"]
    assert messages["failed"] == 0 and messages["unacknowledged"] == 0
    assert messages["acked_missing_from_topic"] == 0 and messages["consumer_caught_up"]
    assert messages["consumed_duplicates"] == 0  # idempotent producer: no duplicate writes either
    assert not messages["producer_stuck"]


def test_one_down_every_acked_id_was_read_back(report_path, report, kafka_load):
    """From the raw events, not the summary: each acknowledged sequence number was consumed."""
    acked, failed, read = _acked_and_read(_events(report_path, "one_down", kafka_load))
    assert len(acked) == report["one_broker_down"]["messages"]["acked"]
    assert not failed
    assert acked <= read, f"{len(acked - read)} acknowledged messages never read back, e.g. {sorted(acked - read)[:10]}"
    assert read == acked


def test_one_down_unavailability_window_is_bounded_and_reproducible(report_path, report, kafka_load):
    one = report["one_broker_down"]
    assert one["unavailability_window_s"] is not None and one["unavailability_window_s"] <= MAX_WINDOW_S
    assert one["all_partitions_led_after_s"] is not None and one["all_partitions_led_after_s"] <= MAX_LEADERS_MOVED_S
    # Recompute the window from the events with the drill's own analysis and marks: same figure.
    marks = one["marks"]
    phases = [{"name": "one_down", "begin": marks["stop_begin"], "end": marks["start_begin"]}]
    again = kafka_load.analyze(_events(report_path, "one_down", kafka_load), phases,
                               one["unavailability"]["stall_threshold_s"])["one_down"]
    assert again["window_s"] == pytest.approx(one["unavailability_window_s"], abs=0.01)
    assert again["max_ack_wait_s"] == pytest.approx(one["unavailability"]["max_ack_wait_s"], abs=0.01)


def test_one_down_partitions_under_replicated_while_down_then_full_isr(report):
    one = report["one_broker_down"]
    urp = one["under_replicated_partitions"]
    # RF 3 on 3 brokers: with one down, every partition misses a replica.
    assert urp["after_failover"] == urp["of_partitions"] > 0
    assert one["time_to_full_isr_s"] is not None and one["time_to_full_isr_s"] <= MAX_FULL_ISR_S


def test_one_down_leadership_moves_away_and_is_balanced_after_the_election(report):
    one = report["one_broker_down"]
    node = str(report["node_id"])
    leaders = one["leaders_per_broker"]
    assert leaders["during"].get(node, 0) == 0, "the stopped broker still led partitions"
    assert leaders["after_election"].get(node, 0) > 0, "the restarted broker got no leadership back"
    election = one["leader_election"]
    assert election["balanced"] and election["mismatches"] == []  # each broker leads its preferred partitions
    assert sorted(leaders["after_election"]) == sorted(leaders["before"])


def test_two_down_acks_all_failed_with_clear_errors(report):
    two = report["two_brokers_down"]
    assert two["enabled"], "the Molecule scenario runs the two-brokers-down phase"
    assert two["failed_while_down"] > 0, "with two brokers down acks=all sends must fail"
    kinds = set(two["errors_while_down"])
    assert kinds & CLEAR_ERRORS and kinds <= CLEAR_ERRORS, f"unexpected error kinds {kinds}"
    assert "no silent loss" in two["verdict"]


def test_two_down_nothing_acknowledged_was_lost(report_path, report, kafka_load):
    two = report["two_brokers_down"]
    messages = two["messages"]
    assert messages["unacknowledged"] == 0 and not messages["producer_stuck"]
    assert messages["acked_missing_from_topic"] == 0 and messages["consumer_caught_up"]
    acked, failed, read = _acked_and_read(_events(report_path, "two_down", kafka_load))
    assert len(acked) == messages["acked"] and len(failed) == messages["failed"]
    assert acked <= read, f"{len(acked - read)} acknowledged messages lost, e.g. {sorted(acked - read)[:10]}"
    # Whatever else was read was a send that reported an error yet was written (ambiguous, never silent loss).
    assert read - acked <= failed
    assert two["time_to_full_isr_s"] is not None and two["time_to_full_isr_s"] <= MAX_FULL_ISR_S


def test_restarted_brokers_accepted_logins(report):
    checks = report["scram_logins_after_restarts"]
    assert checks, "the drill did not probe the brokers' logins after the restarts"
    assert all(c["rejecting_brokers"] == [] and c["rc"] == 0 for c in checks.values()), checks


def _receiver_notifications(receiver, alertname: str) -> list[tuple[float, str]]:
    """(received epoch s, status) of every alert named alertname the alert receiver recorded."""
    import datetime

    found = []
    for line in receiver.file("/var/lib/alert-receiver/alerts.jsonl").content_string.splitlines():
        try:
            record = json.loads(line)
            alerts = record["body"].get("alerts") or []
        except (ValueError, KeyError, AttributeError):
            continue  # an InfluxDB notification or another POST, not Alertmanager's
        received = datetime.datetime.fromisoformat(record["received"]).timestamp()
        found += [(received, a.get("status")) for a in alerts if (a.get("labels") or {}).get("alertname") == alertname]
    return found


def test_under_replicated_alert_reached_the_receiver_while_down_then_resolved(report, inventory_vars, lab_host):
    """Issue 17: while one broker is down, Prometheus' KafkaUnderReplicatedPartitions (from the brokers' JMX exporter,
    for 1 min) fires and Alertmanager delivers it to the alert receiver before the broker restarts; a resolved
    notification follows the restart (Alertmanager sends it at its next group interval: up to 3 min are allowed)."""
    groups = inventory_vars("localhost", "groups")["groups"]
    if not groups.get("monitoring") or not inventory_vars(groups["monitoring"][0], "monitoring_enabled")["monitoring_enabled"]:
        pytest.skip("monitoring_enabled is false or no monitoring group in this inventory: no alert to look for")
    marks = report["one_broker_down"]["marks"]
    stop, start = float(marks["stop_begin"]), float(marks["start_begin"])
    receiver = lab_host(groups["pipeline"][0])
    deadline = time.monotonic() + 180
    while True:
        seen = _receiver_notifications(receiver, "KafkaUnderReplicatedPartitions")
        firing = [t for t, status in seen if status == "firing" and stop <= t <= start + 5]
        resolved = [t for t, status in seen if status == "resolved" and t > start]
        if (firing and resolved) or time.monotonic() > deadline:
            break
        time.sleep(5)
    print(f"broker down {start - stop:.0f} s; URP alert delivered {[round(t - stop) for t in firing]} s after the stop, "
          f"resolved {[round(t - start) for t in resolved]} s after the restart")
    assert firing, (f"no firing KafkaUnderReplicatedPartitions reached the receiver while the broker was down "
                    f"({start - stop:.0f} s; the alert needs 1 min + a scrape + group_wait): {seen[-5:]}")
    assert resolved, f"no resolved KafkaUnderReplicatedPartitions after the restart: {seen[-5:]}"


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height of a valid PNG (signature, IHDR with its CRC, IEND)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    (crc,) = struct.unpack(">I", data[16 + length:20 + length])
    assert zlib.crc32(data[12:16 + length]) == crc, "IHDR CRC"
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path} is truncated"
    return struct.unpack(">II", data[16:24])


def test_timeline_picture_is_drawn_from_the_drill_events(report_path, report, kafka_load):
    """The drill draws <report>.timeline.png from <report>.timeline.json: that data holds every send of each run
    (as the fetched events say), the report's marks and the cluster views; the PNG is valid and of its size."""
    base = report_path.with_name(report_path.name.removesuffix(".json"))
    data = json.loads(base.with_name(base.name + ".timeline.json").read_text())
    png = base.with_name(base.name + ".timeline.png")
    assert png.is_file(), f"no timeline picture next to the report ({png})"
    assert png.stat().st_mtime >= report_path.stat().st_mtime - 1
    assert _png_size(png) == tuple(data["size_px"]) == (1200, 800)
    runs = {run["run"]: run for run in data["runs"]}
    assert set(runs) == {"one_down", "two_down"}
    for run, section in (("one_down", "one_broker_down"), ("two_down", "two_brokers_down")):
        acked, failed, _ = _acked_and_read(_events(report_path, run, kafka_load))
        assert len(runs[run]["acks"]) == len(acked) and len(runs[run]["errors"]) == len(failed)
        marks = report[section]["marks"]
        for name, at in runs[run]["marks"].items():
            assert at == pytest.approx(marks[name] - marks["run_start"], abs=0.001)
        assert runs[run]["cluster_views"], f"no cluster view drawn for {run}"
    one = runs["one_down"]
    # Every ack is drawn, so the stall the report measured while the broker was down is in the picture's data.
    assert max(wait for _, wait in one["acks"]) >= report["one_broker_down"]["unavailability"]["max_ack_wait_s"] - 0.01
    assert len(runs["two_down"]["errors"]) == report["two_brokers_down"]["messages"]["failed"] > 0


# --- the cluster now --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(inventory_vars, lab_host):
    facts = inventory_vars("kafka1", "kafka_bootstrap_servers", "kafka_scram_passwords", "kafka_admin_user",
                           "kafka_ca_file", "groups")
    drill = inventory_vars("kafka1", "kafka_drill_topic", "kafka_drill_user")
    ca_pem = lab_host("kafka1").file(facts["kafka_ca_file"]).content_string
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(ca_pem)
    facts.update(drill, ca_file=handle.name)
    yield facts
    Path(handle.name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def admin(cluster):
    require_module("kafka", "kafka-python is needed on the machine running the verify tests")
    user = cluster["kafka_admin_user"]
    client = kafka_client.open_admin_client({
        "bootstrap_servers": cluster["kafka_bootstrap_servers"].split(","), "sasl_username": user,
        "sasl_password": cluster["kafka_scram_passwords"][user], "sasl_mechanism": "SCRAM-SHA-512",
        "ssl_cafile": cluster["ca_file"], "ssl_check_hostname": True, "api_version": "4.0",
        "connect_timeout": 15, "request_timeout": 30})
    yield client
    client.close()


def test_kafka_runs_on_every_broker(host):
    service = host.service("kafka")
    assert service.is_running and service.is_enabled


def test_three_brokers_and_no_under_replicated_partition(admin, cluster):
    brokers = admin.describe_cluster()["brokers"]
    assert len(brokers) == len(cluster["groups"]["kafka_brokers"]) == 3
    assert not any(b["is_fenced"] for b in brokers)
    topics = admin.describe_topics()
    partitions = [p for t in topics for p in t["partitions"]]
    assert partitions
    under = [f"{t['name']}-{p['partition_index']}" for t in topics for p in t["partitions"]
             if sorted(p["isr_nodes"]) != sorted(p["replica_nodes"]) or p["leader_id"] < 0]
    assert under == []


def test_every_broker_accepts_the_admin_login(cluster):
    user = cluster["kafka_admin_user"]
    for address in cluster["kafka_bootstrap_servers"].split(","):
        params = {"bootstrap_servers": [address], "sasl_username": user,
                  "sasl_password": cluster["kafka_scram_passwords"][user], "sasl_mechanism": "SCRAM-SHA-512",
                  "ssl_cafile": cluster["ca_file"], "ssl_check_hostname": True, "api_version": "4.0",
                  "connect_timeout": 15, "request_timeout": 30}
        assert kafka_client.try_login(params, user, params["sasl_password"]) is None, address


def test_drill_left_no_topic_and_no_acl(admin, cluster):
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter, ResourceType
    from kafka.admin import ACLResourcePatternType

    assert cluster["kafka_drill_topic"] not in admin.list_topics()
    acls, _error = admin.describe_acls(ACLFilter(f"User:{cluster['kafka_drill_user']}", "*", ACLOperation.ANY,
                                                 ACLPermissionType.ANY,
                                                 ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)))
    assert acls == []
