"""Verify of the opt-in rolling upgrade (molecule/shared/upgrade.yml): Kafka 4.3.1 -> 4.4.0 under load, finalized,
downgrade refused. Results in $MOLECULE_EPHEMERAL_DIRECTORY/upgrade (or $ISOBAR_UPGRADE_DIR); skipped with the reason
when neither is set or the side effect did not run there."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from fixtures.operations import changed_nothing, in_order, load_program, results_dir, step_log, traffic_sets
from fixtures.operations import marks as read_marks

testinfra_hosts = ["ansible://kafka_brokers"]

STEPS = ["upgrade", "upgrade_again", "finalize", "refuse_downgrade"]
TARGET = os.environ.get("ISOBAR_UPGRADE_TO", "4.4.0")
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
        assert (marks[step]["rc"] != 0) == (step == "refuse_downgrade"), (step, marks[step])
        print(f"{step}: {marks[step]['end'] - marks[step]['begin']:.1f} s, rc {marks[step]['rc']}")


def test_the_brokers_restarted_one_at_a_time_and_a_second_run_changes_nothing(op_dir):
    restarted = re.findall(r"Rolling restart \| Restart (kafka\d)\]", step_log(op_dir, "upgrade"))
    assert sorted(set(restarted)) == ["kafka1", "kafka2", "kafka3"], restarted
    assert changed_nothing(op_dir, "upgrade_again")


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
