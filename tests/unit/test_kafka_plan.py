"""Pure logic of the kafka_* modules: validation and plans (no server)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_client, kafka_plan
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_plan import (
    PlanError, await_read_your_write, expand_acls, plan_acls, plan_topic, plan_user)


def current_topic(partitions=2, rf=3, overrides=None, internal=False):
    configs = {"retention.ms": {"value": "604800000", "source": "DEFAULT_CONFIG", "sensitive": False},
               "cleanup.policy": {"value": "delete", "source": "DEFAULT_CONFIG", "sensitive": False},
               "min.insync.replicas": {"value": "2", "source": "STATIC_BROKER_CONFIG", "sensitive": False}}
    for key, value in (overrides or {}).items():
        configs[key] = {"value": value, "source": "DYNAMIC_TOPIC_CONFIG", "sensitive": False}
    return {"name": "weather", "internal": internal, "partitions": partitions, "replication_factor": rf, "configs": configs}


def desired(**kw):
    base = {"name": "weather", "state": "present", "partitions": None, "replication_factor": None, "configs": {}}
    base.update(kw)
    return base


# --- topics ------------------------------------------------------------------------------------

def test_create_plan_keeps_null_configs_out_of_the_request():
    plan = plan_topic(None, desired(partitions=4, replication_factor=3, configs={"retention.ms": 60000, "segment.ms": None}), 3)
    assert plan["actions"] == [("create", {"partitions": 4, "replication_factor": 3, "configs": {"retention.ms": "60000"}})]
    assert plan["before"] == {}
    assert plan["after"]["configs"] == {"retention.ms": "60000", "segment.ms": None}


def test_unchanged_topic_has_no_actions():
    plan = plan_topic(current_topic(4, 3), desired(partitions=4, replication_factor=3, configs={"min.insync.replicas": 2}), 3)
    assert plan["actions"] == [] and plan["before"] == plan["after"]


def test_only_declared_keys_are_altered_and_compared_as_strings():
    current = current_topic(overrides={"segment.ms": "100"})
    plan = plan_topic(current, desired(configs={"retention.ms": 3600000, "cleanup.policy": "delete"}), 3)
    assert plan["actions"] == [("alter_configs", {"retention.ms": ("SET", "3600000")})]
    assert "segment.ms" not in plan["after"]["configs"]


def test_null_deletes_only_an_existing_override():
    assert plan_topic(current_topic(overrides={"retention.ms": "1"}), desired(configs={"retention.ms": None}), 3)["actions"] == [
        ("alter_configs", {"retention.ms": ("DELETE", None)})]
    assert plan_topic(current_topic(), desired(configs={"retention.ms": None}), 3)["actions"] == []


def test_partition_increase_then_configs():
    plan = plan_topic(current_topic(2), desired(partitions=6, configs={"retention.ms": "1"}), 3)
    assert [kind for kind, _ in plan["actions"]] == ["add_partitions", "alter_configs"]
    assert plan["after"]["partitions"] == 6 and plan["before"]["partitions"] == 2


@pytest.mark.parametrize("current, want, brokers, message", [
    (current_topic(4), desired(partitions=2), 3, "partitions cannot decrease"),
    (current_topic(4, 3), desired(replication_factor=2), 3, "refuses to change it"),
    (current_topic(), desired(configs={"retention.msec": 1}), 3, "unknown topic config key(s) retention.msec"),
    (None, desired(partitions=1, replication_factor=4), 3, "exceeds the 3 broker(s)"),
    (current_topic(internal=True), desired(), 3, "internal topic"),
])
def test_refused_plans(current, want, brokers, message):
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_topic(current, want, brokers)


def test_several_problems_are_reported_together():
    with pytest.raises(PlanError) as err:
        plan_topic(current_topic(4, 3), desired(partitions=1, replication_factor=1, configs={"nope": 1}), 3)
    assert "partitions cannot decrease" in str(err.value) and "replication_factor" in str(err.value) and "nope" in str(err.value)


def test_absent():
    assert plan_topic(None, desired(state="absent"), 3)["actions"] == []
    assert plan_topic(current_topic(), desired(state="absent"), 3)["actions"] == [("delete", None)]


@pytest.mark.parametrize("value, expected", [(True, "true"), (False, "false"), (4, "4"), (0.5, "0.5"),
                                             (["compact", "delete"], "compact,delete"), (" x ", "x"), (None, None)])
def test_config_values_are_normalised(value, expected):
    assert kafka_plan.normalize_config_value(value) == expected


@pytest.mark.parametrize("name, ok", [("weather", True), ("weather-telegraf", True), ("a.b_c", True), ("__consumer_offsets", False),
                                      ("", False), ("..", False), ("bad name", False), ("x" * 250, False)])
def test_topic_names(name, ok):
    problems = kafka_plan.validate_topic_params(name, "present", None, None, {})
    assert (problems == []) is ok, problems


def test_sensitive_values_are_masked():
    current = current_topic()
    current["configs"]["secret.thing"] = {"value": "s3cret", "source": "DYNAMIC_TOPIC_CONFIG", "sensitive": True}
    view = kafka_plan.mask_sensitive({"configs": {"secret.thing": "s3cret", "retention.ms": "1"}}, current)
    assert view["configs"] == {"secret.thing": "********", "retention.ms": "1"}


# --- ACLs --------------------------------------------------------------------------------------

def test_acls_expand_per_operation_and_default_the_cluster_name():
    keys = expand_acls("User:kafdrop", "*", [
        {"resource_type": "topic", "name": "*", "operations": ["read", "DESCRIBE"]},
        {"resource_type": "cluster", "operations": ["describe"]},
    ])
    assert ("User:kafdrop", "*", "cluster", "kafka-cluster", "literal", "describe", "allow") in keys
    assert len(keys) == 3


@pytest.mark.parametrize("principal, entry, message", [
    ("producer", {"resource_type": "topic", "name": "t", "operations": ["write"]}, "User:<name>"),
    ("User:p", {"resource_type": "topic", "name": "t", "operations": ["fly"]}, "does not apply to topic"),
    ("User:p", {"resource_type": "group", "name": "g", "operations": ["write"]}, "does not apply to group"),
    ("User:p", {"resource_type": "queue", "name": "q", "operations": ["read"]}, "resource_type"),
    ("User:p", {"resource_type": "topic", "operations": ["read"]}, "name is required"),
    ("User:p", {"resource_type": "topic", "name": "t", "operations": []}, "at least one operation"),
    ("User:p", {"resource_type": "topic", "name": "t", "operations": ["read"], "pattern_type": "match"}, "literal or prefixed"),
])
def test_bad_acls(principal, entry, message):
    with pytest.raises(PlanError, match=message):
        expand_acls(principal, "*", [entry])


def test_acl_plan_exclusive_and_absent():
    want = expand_acls("User:p", "*", [{"resource_type": "topic", "name": "t", "operations": ["write"]}])
    extra = expand_acls("User:p", "*", [{"resource_type": "topic", "name": "t", "operations": ["read"]}])
    assert plan_acls(extra, want, "present", False)["remove"] == []
    plan = plan_acls(extra, want, "present", True)
    assert plan["add"] == sorted(want) and plan["remove"] == sorted(extra)
    assert plan["after"] == ["ALLOW User:p WRITE on TOPIC:t (LITERAL) from *"]
    assert plan_acls(want | extra, want, "absent", False)["remove"] == sorted(want)


# --- SCRAM users -------------------------------------------------------------------------------

@pytest.mark.parametrize("current, state, update, works, expected", [
    (None, "present", "always", None, "create"),
    (8192, "present", "always", True, None),
    (8192, "present", "always", False, "update"),
    (4096, "present", "always", None, "update"),
    (8192, "present", "on_create", False, None),
    (8192, "absent", "always", None, "delete"),
    (None, "absent", "always", None, None),
])
def test_user_plan(current, state, update, works, expected):
    assert plan_user(current, state, 8192, update, works)[0] == expected


def test_user_validation():
    assert kafka_plan.validate_user_params("u", "present", "pw", "SCRAM-SHA-512", 8192) == []
    assert kafka_plan.validate_user_params("a b", "present", None, "SCRAM-SHA-1", 10)  # four problems
    assert len(kafka_plan.validate_user_params("a b", "present", None, "SCRAM-SHA-1", 10)) == 4


# --- connection options ------------------------------------------------------------------------

def test_api_version_is_explicit_and_checked():
    assert kafka_client.parse_api_version("4.3") == (4, 3)
    assert kafka_client.parse_api_version("4.3.1") == (4, 3, 1)
    with pytest.raises(kafka_client.KafkaModuleError):
        kafka_client.parse_api_version("auto")


def test_connection_params_are_validated_before_any_io():
    good = {"bootstrap_servers": ["172.30.10.11:9092", "[::1]:9092"], "sasl_username": "admin", "sasl_password": "x",
            "api_version": "4.3", "connect_timeout": 5, "request_timeout": 5}
    assert kafka_client.validate_connection_params(good) == []
    bad = dict(good, bootstrap_servers=["kafka1", "h:99999"], sasl_password="", api_version="four", connect_timeout=0)
    problems = kafka_client.validate_connection_params(bad)
    assert len(problems) == 5, problems


def test_client_config_pins_the_api_version_and_sasl_ssl():
    params = {"bootstrap_servers": [" a:9092 "], "sasl_username": "u", "sasl_password": "p", "sasl_mechanism": "SCRAM-SHA-512",
              "ssl_cafile": "/ca", "ssl_check_hostname": True, "api_version": "4.3", "connect_timeout": 5,
              "request_timeout": 7}
    config = kafka_client.client_config(params)
    assert config["api_version"] == (4, 3) and config["security_protocol"] == "SASL_SSL"
    assert config["bootstrap_servers"] == ["a:9092"] and config["request_timeout_ms"] == 7000


# --- cluster health ----------------------------------------------------------------------------

def quorum(leader, voters):
    return {"topics": [{"partitions": [{"leader_id": leader, "leader_epoch": 3, "high_watermark": 100,
                                        "current_voters": [{"replica_id": i, "log_end_offset": end} for i, end in voters],
                                        "observers": []}]}]}


def test_health_assessment(cluster_info):
    cluster = {"cluster_id": "x", "brokers": [{"broker_id": 1, "is_fenced": False}, {"broker_id": 2, "is_fenced": True}]}
    topics = [{"name": "weather", "partitions": [
        {"partition_index": 0, "leader_id": 1, "replica_nodes": [1, 2, 3], "isr_nodes": [1, 3]},
        {"partition_index": 1, "leader_id": -1, "replica_nodes": [2], "isr_nodes": [2]}]}]
    result = cluster_info.assess(cluster, quorum(1, [(1, 100), (2, 10), (3, 99)]), topics, [1, 2, 3], [1, 2, 3], 50)
    assert result["healthy"] is False
    assert result["problems"] == [
        "broker 2 is fenced", "broker 3 is not registered", "quorum voter 2 lags by 90 records (max 50)",
        "1 under-replicated partition(s): weather-0", "1 offline partition(s): weather-1"]
    good = cluster_info.assess({"brokers": [{"broker_id": 1}]}, quorum(1, [(1, 100)]), [], [1], [1], 50)
    assert good["healthy"] is True and good["problems"] == []
    assert cluster_info.assess({"brokers": []}, quorum(-1, []), [], [], [], 50)["problems"] == ["the metadata quorum has no leader"]



def test_read_your_write_waits_for_a_stale_metadata_cache():
    """The first describes after an acknowledged write can return the state before it (baseline flake of
    test_user_create_login_rotate_delete: credentials [] right after the create)."""
    answers = iter([[], [], [{"mechanism": "SCRAM-SHA-512", "iterations": 8192}]])
    now = [0.0]
    answer, seen = await_read_your_write(lambda: next(answers), [{"mechanism": "SCRAM-SHA-512", "iterations": 8192}],
                                         timeout=5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert seen and answer == [{"mechanism": "SCRAM-SHA-512", "iterations": 8192}] and now[0] == 0.2


def test_read_your_write_gives_up_after_the_timeout():
    now = [0.0]
    answer, seen = await_read_your_write(lambda: [], ["x"], timeout=1, interval=0.25, clock=lambda: now[0],
                                         sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert not seen and answer == [] and now[0] == 1.0
