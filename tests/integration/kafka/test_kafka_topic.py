"""kafka_topic against a real Kafka (tests/fixtures/kafka_server.py): every change is checked on the broker."""
from __future__ import annotations

import socket
import time
import uuid

import pytest
from conftest import run_module

NOTHING = "Nothing was changed."


@pytest.fixture
def topic_name():
    return f"it-{uuid.uuid4().hex[:10]}"


def topic(kafka_server, args, **kw):
    return run_module("kafka_topic", dict(kafka_server.connection_args(), **args), **kw)


def on_broker(admin, name):
    """The topic as the broker sees it: None, or (partitions, replication factor, topic-level overrides)."""
    from kafka.admin import ConfigResource

    if name not in admin.list_topics():
        return None
    info = admin.describe_topics([name])[0]
    configs = admin.describe_configs([ConfigResource("TOPIC", name)])["topic"][name]
    overrides = {k: v["value"] for k, v in configs.items() if v["config_source"] == "DYNAMIC_TOPIC_CONFIG"}
    return len(info["partitions"]), len(info["partitions"][0]["replica_nodes"]), overrides


def test_create_then_rerun_is_unchanged(kafka_server, admin, topic_name):
    args = dict(name=topic_name, partitions=2, replication_factor=1, configs={"retention.ms": 3600000})
    first = topic(kafka_server, args)
    assert first.get("failed") is not True, first
    assert first["changed"] is True, first
    assert first["topic"]["partitions"] == 2 and first["topic"]["replication_factor"] == 1
    assert first["topic"]["topic_id"]
    assert on_broker(admin, topic_name) == (2, 1, {"retention.ms": "3600000"})

    second = topic(kafka_server, args)
    assert second["changed"] is False, second
    assert second["actions"] == []
    assert on_broker(admin, topic_name) == (2, 1, {"retention.ms": "3600000"})


def test_partition_increase(kafka_server, admin, topic_name):
    topic(kafka_server, dict(name=topic_name, partitions=1, replication_factor=1))
    result = topic(kafka_server, dict(name=topic_name, partitions=3))
    assert result["changed"] is True, result
    assert result["actions"] == ["increase partitions to 3"]
    assert on_broker(admin, topic_name)[0] == 3
    assert [p["partition"] for p in result["topic"]["partition_details"]] == [0, 1, 2]
    assert topic(kafka_server, dict(name=topic_name, partitions=3))["changed"] is False


def test_configs_touch_only_the_declared_keys(kafka_server, admin, topic_name):
    from kafka.admin import AlterConfigOp, ConfigResource

    topic(kafka_server, dict(name=topic_name, partitions=1, replication_factor=1, configs={"retention.ms": 3600000}))
    # An override someone else set, not declared in the next run: it must survive.
    admin.alter_configs([ConfigResource("TOPIC", topic_name, configs={"segment.ms": (AlterConfigOp.SET, "7200000")})],
                        incremental=True)
    result = topic(kafka_server, dict(name=topic_name, configs={"retention.ms": 86400000, "cleanup.policy": "delete"}))
    assert result["changed"] is True, result
    # cleanup.policy=delete is already the effective value: only retention.ms is altered.
    assert result["actions"] == ["set retention.ms=86400000"]
    assert on_broker(admin, topic_name)[2] == {"retention.ms": "86400000", "segment.ms": "7200000"}


def test_null_removes_an_override(kafka_server, admin, topic_name):
    topic(kafka_server, dict(name=topic_name, partitions=1, replication_factor=1, configs={"retention.ms": 3600000}))
    result = topic(kafka_server, dict(name=topic_name, configs={"retention.ms": None}))
    assert result["changed"] is True and result["actions"] == ["remove override retention.ms"], result
    assert on_broker(admin, topic_name)[2] == {}
    assert topic(kafka_server, dict(name=topic_name, configs={"retention.ms": None}))["changed"] is False


def test_check_mode_changes_nothing_and_reports_the_plan_of_the_real_run(kafka_server, admin, topic_name):
    create = dict(name=topic_name, partitions=2, replication_factor=1, configs={"retention.ms": 3600000})
    planned = topic(kafka_server, create, check=True)
    assert planned["changed"] is True, planned
    assert on_broker(admin, topic_name) is None
    done = topic(kafka_server, create)
    assert done["actions"] == planned["actions"]

    update = dict(name=topic_name, partitions=4, configs={"retention.ms": 7200000})
    planned = topic(kafka_server, update, check=True)
    assert planned["changed"] is True, planned
    assert planned["actions"] == ["increase partitions to 4", "set retention.ms=7200000"]
    assert on_broker(admin, topic_name) == (2, 1, {"retention.ms": "3600000"})
    done = topic(kafka_server, update)
    assert done["actions"] == planned["actions"]
    assert on_broker(admin, topic_name) == (4, 1, {"retention.ms": "7200000"})
    assert topic(kafka_server, update, check=True)["changed"] is False


def test_diff_shows_before_and_after(kafka_server, topic_name):
    created = topic(kafka_server, dict(name=topic_name, partitions=1, replication_factor=1), diff=True)
    assert created["diff"]["before"] == {}
    assert created["diff"]["after"] == {"name": topic_name, "partitions": 1, "replication_factor": 1, "configs": {}}
    altered = topic(kafka_server, dict(name=topic_name, partitions=2, configs={"retention.ms": 60000}), diff=True)
    assert altered["diff"]["before"] == {"name": topic_name, "partitions": 1, "replication_factor": 1,
                                         "configs": {"retention.ms": "604800000"}}
    assert altered["diff"]["after"] == {"name": topic_name, "partitions": 2, "replication_factor": 1,
                                        "configs": {"retention.ms": "60000"}}


def test_delete_only_when_asked(kafka_server, admin, topic_name):
    topic(kafka_server, dict(name=topic_name, partitions=1, replication_factor=1))
    planned = topic(kafka_server, dict(name=topic_name, state="absent"), check=True)
    assert planned["changed"] is True and on_broker(admin, topic_name) is not None
    assert topic(kafka_server, dict(name=topic_name, state="absent"))["changed"] is True
    deadline = time.monotonic() + 30
    while on_broker(admin, topic_name) is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert on_broker(admin, topic_name) is None
    assert topic(kafka_server, dict(name=topic_name, state="absent"))["changed"] is False


# kafka_topic refuses bad input before it looks at check mode (main(): validate_topic_params, plan_topic and the
# brokers' validate_only all come first), so --check fails the same way: the check variant is kept where the refusal
# needs the cluster (the brokers' validate_only, the broker count: a check mode that skipped them would pass these),
# the inputs refused from the topic's own description or the arguments alone run once.
EXISTING_BAD = [
    pytest.param(dict(partitions=1), "partitions cannot decrease", False, id="partition-decrease-run"),
    pytest.param(dict(replication_factor=2), "refuses to change it", False, id="replication-factor-change-run"),
    pytest.param(dict(configs={"no.such.key": 1}), "unknown topic config key(s) no.such.key", False,
                 id="unknown-config-key-run"),
    *[pytest.param(dict(configs={"retention.ms": "soon"}), "Invalid value soon for configuration retention.ms", check,
                   id=f"invalid-config-value-{'check' if check else 'run'}") for check in (False, True)],
    # A valid change together with a bad one: the valid one must not be applied either.
    *[pytest.param(dict(partitions=5, configs={"retention.ms": "soon"}), "retention.ms", check,
                   id=f"valid-and-invalid-{'check' if check else 'run'}") for check in (False, True)],
]


@pytest.mark.parametrize("bad, message, check", EXISTING_BAD)
def test_bad_input_on_an_existing_topic_fails_and_changes_nothing(kafka_server, admin, topic_name, bad, message, check):
    topic(kafka_server, dict(name=topic_name, partitions=2, replication_factor=1, configs={"retention.ms": 3600000}))
    before = on_broker(admin, topic_name)
    result = topic(kafka_server, dict(name=topic_name, **bad), check=check)
    assert result.get("failed") is True, result
    assert message in result["msg"] and NOTHING in result["msg"], result["msg"]
    assert on_broker(admin, topic_name) == before


NEW_BAD = [  # check variants as for EXISTING_BAD
    *[pytest.param(dict(partitions=1, replication_factor=2), "exceeds the 1 broker(s)", check,
                   id=f"rf-above-broker-count-{'check' if check else 'run'}") for check in (False, True)],
    *[pytest.param(dict(partitions=1, replication_factor=1, configs={"no.such.key": "x"}),
                   "Unknown topic config name: no.such.key", check,
                   id=f"unknown-config-key-{'check' if check else 'run'}") for check in (False, True)],
    pytest.param(dict(partitions=0), "partitions must be at least 1", False, id="zero-partitions-run"),
]


@pytest.mark.parametrize("bad, message, check", NEW_BAD)
def test_bad_input_for_a_new_topic_fails_and_creates_nothing(kafka_server, admin, topic_name, bad, message, check):
    result = topic(kafka_server, dict(name=topic_name, **bad), check=check)
    assert result.get("failed") is True, result
    assert message in result["msg"] and NOTHING in result["msg"], result["msg"]
    assert on_broker(admin, topic_name) is None


@pytest.mark.parametrize("name, message", [
    ("__consumer_offsets", "internal"),
    ("bad name!", "not a legal Kafka topic name"),
])
def test_internal_and_illegal_names_are_refused(kafka_server, admin, name, message):
    topics_before = sorted(admin.list_topics())
    result = topic(kafka_server, dict(name=name, partitions=1))
    assert result.get("failed") is True and message in result["msg"] and NOTHING in result["msg"], result
    assert sorted(admin.list_topics()) == topics_before


def test_unreachable_cluster(kafka_server, admin, topic_name):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: connections are refused
        result = topic(kafka_server, dict(name=topic_name, partitions=1, replication_factor=1,
                                          bootstrap_servers=[dead], connect_timeout=3))
    assert result.get("failed") is True
    assert "cannot reach the Kafka cluster" in result["msg"] and NOTHING in result["msg"], result["msg"]
    assert on_broker(admin, topic_name) is None


def test_wrong_password(kafka_server, admin, topic_name):
    started = time.monotonic()
    result = topic(kafka_server, dict(name=topic_name, partitions=1, replication_factor=1,
                                      sasl_password="not-the-password", connect_timeout=60))
    assert result.get("failed") is True
    assert "authentication failed" in result["msg"] and "wrong user name or password" in result["msg"], result["msg"]
    assert NOTHING in result["msg"]
    assert "not-the-password" not in str(result)
    # Well under the 60 s connect timeout, with room for a loaded machine (the ansible command alone takes seconds).
    assert time.monotonic() - started < 40, "an authentication failure should not wait for the connect timeout"
    assert on_broker(admin, topic_name) is None


def test_a_refusal_after_partitions_were_added_reports_changed_and_what_was_applied(kafka_server, admin, topic_name,
                                                                                    tmp_path):
    import subprocess
    from pathlib import Path

    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType

    from fixtures.pipeline_helpers import grant, module_command, module_env, scram_user

    topic(kafka_server, dict(name=topic_name, partitions=1, replication_factor=1))
    # A non-super user allowed to change this topic: a DENY on ALTER_CONFIGS added while the run is between
    # its two requests makes the brokers refuse the second one after the first was applied.
    password = scram_user(kafka_server, "topic-operator")
    grant(kafka_server, "topic-operator", [("TOPIC", topic_name, op) for op in
                                           ("DESCRIBE", "DESCRIBE_CONFIGS", "ALTER", "ALTER_CONFIGS")]
          + [("CLUSTER", "kafka-cluster", "DESCRIBE")])
    args = dict(kafka_server.connection_args("topic-operator", password), name=topic_name, partitions=3,
                configs={"retention.ms": 3600000})
    pause = tmp_path / "pause"
    proc = subprocess.Popen(module_command("isobar.pipeline.kafka_topic", args), cwd=Path(__file__).parents[3],
                            env=module_env({"ISOBAR_FAULT_INJECT": f"pause_after:add_partitions:{pause}"}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not Path(f"{pause}.paused").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    assert on_broker(admin, topic_name)[0] == 3
    denied = admin.create_acls([ACL("User:topic-operator", "*", ACLOperation.ALTER_CONFIGS, ACLPermissionType.DENY,
                                    ResourcePattern(ResourceType.TOPIC, topic_name))])
    assert not denied.get("failed"), denied
    time.sleep(1)  # ACLs propagate through the metadata log
    Path(f"{pause}.resume").touch()
    out, err = proc.communicate(timeout=120)
    import json
    result = json.loads(out)["plays"][0]["tasks"][0]["hosts"]["localhost"]

    assert result.get("failed") is True, result
    assert result["changed"] is True, result
    assert result["applied"] == ["increase partitions to 3"], result
    assert result["not_applied"] == ["set retention.ms=3600000"], result
    assert "WAS changed" in result["msg"] and "TopicAuthorizationFailed" in result["msg"], result["msg"]
    assert result["topic"]["partitions"] == 3 and result["topic"]["configs"]["retention.ms"] != "3600000", result["topic"]
    assert on_broker(admin, topic_name) == (3, 1, {})
