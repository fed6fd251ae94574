"""Verify of the Molecule `scale` scenario: kafka4 added, rebalanced, unsafe removals refused, kafka4 removed.

The side effect (molecule/shared/scale.yml) runs each operator step as its own ansible-playbook under continuous
acks=all traffic and keeps, in $MOLECULE_EPHEMERAL_DIRECTORY/scale (or $ISOBAR_SCALE_DIR): marks.json (begin, end and
rc of every step), <step>.log (its output), <step>.rebalance.json (what kafka_rebalance reported) and the traffic's
raw events. Nothing is taken on trust: the traffic's outcome is recomputed from the events (tools/kafka_load.py's
analysis), the balance from the per-broker counts, and the cluster is read as it is now.
"""
from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from fixtures.operations import changed_nothing, in_order, load_program, results_dir, step_log, traffic_sets
from fixtures.prerequisites import require_module

from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_client

STEPS = ["create", "add", "rebalance", "rebalance_again", "refuse_controller", "refuse_below_rf", "remove",
         "remove_again", "forget"]
ROOT = Path(__file__).resolve().parents[3]
REFUSED = {"refuse_controller", "refuse_below_rf"}
# Phases of the traffic: operations that change the cluster while it runs.
PHASES = ["add", "rebalance", "remove", "forget"]


@pytest.fixture(scope="module")
def scale_dir() -> Path:
    return results_dir("scale", "ISOBAR_SCALE_DIR")


@pytest.fixture(scope="module")
def marks(scale_dir) -> dict:
    return json.loads((scale_dir / "marks.json").read_text())


@pytest.fixture(scope="module")
def kafka_load():
    return load_program("tools/kafka_load.py", "kafka_load")


@pytest.fixture(scope="module")
def events(scale_dir, kafka_load) -> list[dict]:
    return kafka_load.load_events(str(scale_dir / "traffic.events.jsonl"))


def report(scale_dir: Path, step: str) -> dict:
    path = scale_dir / f"{step}.rebalance.json"
    assert path.is_file(), f"step {step} wrote no rebalance report ({path})"
    return json.loads(path.read_text())


def spread(counts: dict, brokers) -> int:
    values = [counts[str(b)] for b in brokers]
    return max(values) - min(values)


# --- the steps ---------------------------------------------------------------------------------

def test_every_step_ran_and_ended_as_expected(marks):
    assert in_order(marks) == STEPS
    for step in STEPS:
        assert (marks[step]["rc"] != 0) == (step in REFUSED), (step, marks[step])
        print(f"{step}: {marks[step]['end'] - marks[step]['begin']:.1f} s, rc {marks[step]['rc']}")


def test_adding_the_broker_moved_a_balanced_share_onto_it_under_a_throttle(scale_dir):
    result = report(scale_dir, "rebalance")
    assert result["changed"] and result["copies"] > 0 and result["bytes_moved"] >= 0
    assert result["throttle_removed"], "the copies ran without a throttle, or it was left on"
    # Before: kafka4 holds nothing; after: every broker within one replica and one leader of the others.
    assert result["replicas_before"]["4"] == 0 and result["replicas_after"]["4"] > 0
    assert spread(result["replicas_after"], [1, 2, 3, 4]) <= 1
    assert spread(result["leaders_after"], [1, 2, 3, 4]) <= 1
    print(f"rebalance: {len(result['moves'])} partitions changed, {result['copies']} copies, "
          f"{result['bytes_moved']} bytes, {result['waited_seconds']} s; replicas {result['replicas_before']} -> "
          f"{result['replicas_after']}; leaders {result['leaders_before']} -> {result['leaders_after']}")


def test_a_second_rebalance_moves_and_changes_nothing(scale_dir):
    again = report(scale_dir, "rebalance_again")
    assert not again["changed"] and again["moves"] == [] and again["elected"] == []
    assert changed_nothing(scale_dir, "rebalance_again")


@pytest.mark.parametrize("step, reason", [
    ("refuse_controller", "kafka3 is a controller: one of the 3 voters of the static quorum"),
    ("refuse_below_rf", r"replication factor 3, more than the 2 broker\(s\) \[1, 2\] that would remain"),
])
def test_unsafe_requests_are_refused_with_nothing_changed(scale_dir, step, reason):
    text = " ".join(step_log(scale_dir, step).split())
    assert re.search(reason, text), f"{step}: the refusal does not say why ({reason!r})"
    assert "nothing was changed" in text.lower() or "Nothing was changed" in text
    assert changed_nothing(scale_dir, step)


def test_removing_the_broker_drained_it_then_a_second_run_changes_nothing(scale_dir):
    drained = report(scale_dir, "remove")
    assert drained["replicas_before"]["4"] > 0 and drained["replicas_after"]["4"] == 0
    assert spread(drained["replicas_after"], [1, 2, 3]) <= 1 and spread(drained["leaders_after"], [1, 2, 3]) <= 1
    again = report(scale_dir, "remove_again")
    assert again["moves"] == [] and not again["changed"]
    assert changed_nothing(scale_dir, "remove_again")
    print(f"drain: {len(drained['moves'])} partitions changed, {drained['copies']} copies, "
          f"{drained['bytes_moved']} bytes; replicas {drained['replicas_before']} -> {drained['replicas_after']}")


# --- the traffic, from its raw events ---------------------------------------------------------

def test_nothing_acknowledged_was_lost_and_nothing_failed(events):
    acked, failed, read = traffic_sets(events)
    sent = acked | failed
    assert acked and not failed
    assert sent == acked == read, (f"{len(acked - read)} acknowledged never read back, "
                                   f"{len(read - acked)} read but not acknowledged")
    print(f"traffic: sent = acked = consumed = {len(acked)}, failed 0")


def test_every_operation_ran_under_traffic_without_a_failed_send(events, marks, kafka_load):
    phases = [{"name": step, "begin": marks[step]["begin"], "end": marks[step]["end"]} for step in PHASES]
    figures = kafka_load.analyze(events, phases)
    for step in PHASES:
        phase = figures[step]
        assert phase["sent"] > 0 and phase["failed"] == 0 and phase["acked"] == phase["sent"], (step, phase)
        print(f"{step}: {phase['seconds']} s, sent {phase['sent']}, acked {phase['acked']}, failed 0, "
              f"max ack wait {phase['max_ack_wait_s']} s, p99 {phase['p99_ack_wait_s']} s")


# --- the cluster now ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def admin(inventory_vars, lab_host):
    require_module("kafka", "kafka-python is needed on the machine running the verify tests")
    facts = inventory_vars("kafka1", "kafka_bootstrap_servers", "kafka_scram_passwords", "kafka_admin_user",
                           "kafka_ca_file")
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(lab_host("kafka1").file(facts["kafka_ca_file"]).content_string)
    user = facts["kafka_admin_user"]
    client = kafka_client.open_admin_client({
        "bootstrap_servers": facts["kafka_bootstrap_servers"].split(","), "sasl_username": user,
        "sasl_password": facts["kafka_scram_passwords"][user], "sasl_mechanism": "SCRAM-SHA-512",
        "ssl_cafile": handle.name, "ssl_check_hostname": True, "api_version": "4.0",
        "connect_timeout": 15, "request_timeout": 30})
    yield client
    client.close()
    Path(handle.name).unlink(missing_ok=True)


def test_the_cluster_is_back_to_three_brokers_fully_replicated(admin):
    brokers = admin.describe_cluster()["brokers"]
    assert sorted(b["broker_id"] for b in brokers) == [1, 2, 3] and not any(b["is_fenced"] for b in brokers)
    partitions = [(t["name"], p) for t in admin.describe_topics() for p in t["partitions"]]
    assert partitions and all(4 not in p["replica_nodes"] for _, p in partitions)
    assert all(sorted(p["isr_nodes"]) == sorted(p["replica_nodes"]) for _, p in partitions)


def test_no_replication_throttle_is_left(admin):
    from kafka.admin import ConfigResource, ConfigResourceType

    for broker in (1, 2, 3):
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(broker))])
        entries = (configs.get("broker") or {}).get(str(broker)) or {}
        assert not {name for name in entries if "replication.throttled" in name}, (broker, entries)


def test_no_host_remembers_the_removed_broker(lab_host):
    """Firewalls, bootstrap lists, scrape targets: after site.yml without kafka4, its address is nowhere in /etc."""
    grown = yaml.safe_load((ROOT / "molecule" / "shared" / "inventory-scale" / "95-kafka4.yml").read_text())
    address = grown["all"]["children"]["kafka_brokers"]["hosts"]["kafka4"]["isobar_address"]
    for name in ("kafka1", "kafka2", "kafka3", "influxdb1", "monitor"):
        found = lab_host(name).run(f"grep -rIlF -e {address}: -e '{address} ' -e '{address},' -e '{address}\"' /etc")
        assert found.stdout.strip() == "", f"{name} still names kafka4 ({address}) in: {found.stdout.split()}"
    for name in ("kafka1", "kafka2", "kafka3"):
        ruleset = lab_host(name).check_output("nft list table inet isobar")
        assert not re.search(rf"{re.escape(address)}(?![0-9])", ruleset), f"{name}'s loaded firewall still lets kafka4 in"


def test_the_added_host_is_gone():
    result = subprocess.run(["docker", "inspect", "isobar-test-kafka4"], capture_output=True, text=True)
    assert result.returncode != 0, "kafka4's lab host is still there"
