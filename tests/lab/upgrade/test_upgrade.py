"""Verify of the opt-in rolling upgrade (molecule/shared/upgrade.yml): Kafka 4.3.1 -> 4.4.0 under load, finalized,
downgrade refused. Results in $MOLECULE_EPHEMERAL_DIRECTORY/upgrade (or $ISOBAR_UPGRADE_DIR); skipped with the reason
when neither is set or the side effect did not run there."""
from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest
from fixtures.prerequisites import missing

testinfra_hosts = ["ansible://kafka_brokers"]

ROOT = Path(__file__).resolve().parents[3]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEPS = ["upgrade", "upgrade_again", "finalize", "refuse_downgrade"]
TARGET = os.environ.get("ISOBAR_UPGRADE_TO", "4.4.0")
# metadata.version of 4.4 (roles/kafka/vars/main.yml kafka_metadata_versions).
TARGET_LEVEL = 33


@pytest.fixture(scope="module")
def op_dir() -> Path:
    if os.environ.get("ISOBAR_UPGRADE_DIR"):
        path = Path(os.environ["ISOBAR_UPGRADE_DIR"])
    elif os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY"):
        path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "upgrade"
    else:
        missing("no upgrade results: set ISOBAR_UPGRADE_DIR (or run the opt-in upgrade side effect under Molecule)")
    if not (path / "marks.json").is_file():
        missing(f"the opt-in upgrade side effect has not run here ({path}): molecule/shared/upgrade.yml")
    return path


@pytest.fixture(scope="module")
def marks(op_dir) -> dict:
    return json.loads((op_dir / "marks.json").read_text())


def log(op_dir: Path, step: str) -> str:
    return ANSI.sub("", (op_dir / f"{step}.log").read_text())


def recap(op_dir: Path, step: str) -> dict[str, dict[str, int]]:
    section = log(op_dir, step).rsplit("PLAY RECAP", 1)[-1]
    hosts = {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
             for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", section, re.M)}
    assert hosts, f"no PLAY RECAP in {step}.log"
    return hosts


def test_every_step_ended_as_expected(marks):
    assert sorted(marks, key=lambda step: marks[step]["begin"]) == STEPS
    for step in STEPS:
        assert (marks[step]["rc"] != 0) == (step == "refuse_downgrade"), (step, marks[step])
        print(f"{step}: {marks[step]['end'] - marks[step]['begin']:.1f} s, rc {marks[step]['rc']}")


def test_the_brokers_restarted_one_at_a_time_and_a_second_run_changes_nothing(op_dir):
    text = log(op_dir, "upgrade")
    restarted = re.findall(r"Rolling restart \| Restart (kafka\d)\]", text)
    assert sorted(set(restarted)) == ["kafka1", "kafka2", "kafka3"], restarted
    assert all(counts["changed"] == 0 for counts in recap(op_dir, "upgrade_again").values())


def test_the_downgrade_past_the_finalized_level_is_refused_with_nothing_changed(op_dir):
    text = " ".join(log(op_dir, "refuse_downgrade").split())
    assert f"metadata.version is finalized at {TARGET_LEVEL}, above 30" in text
    assert "Nothing was changed" in text
    assert all(counts["changed"] == 0 for counts in recap(op_dir, "refuse_downgrade").values())


def test_nothing_acknowledged_was_lost_and_nothing_failed(op_dir, marks):
    spec = importlib.util.spec_from_file_location("kafka_load", ROOT / "tools" / "kafka_load.py")
    kafka_load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kafka_load)
    events = kafka_load.load_events(str(op_dir / "traffic.events.jsonl"))
    acked = {e["seq"] for e in events if e["e"] == "ack"}
    failed = {e["seq"] for e in events if e["e"] == "err"}
    read = {seq for e in events if e["e"] == "read" for seq in e["s"]}
    assert acked and not failed and acked == read
    phase = kafka_load.analyze(events, [{"name": "upgrade", "begin": marks["upgrade"]["begin"],
                                         "end": marks["upgrade"]["end"]}])["upgrade"]
    assert phase["sent"] > 0 and phase["failed"] == 0
    print(f"upgrade: sent = acked = consumed = {len(acked)}; during the rolling upgrade {phase['sent']} sent, "
          f"max ack wait {phase['max_ack_wait_s']} s, p99 {phase['p99_ack_wait_s']} s")


def test_every_broker_runs_the_new_release(host):
    assert host.file("/opt/kafka/current").linked_to == f"/opt/kafka/kafka_2.13-{TARGET}"
    assert host.service("kafka").is_running
