"""kafka_acl, kafka_user and kafka_cluster_info against a real Kafka; effects are checked by logging in
and by asking the broker directly (not through the modules)."""
from __future__ import annotations

import secrets
import sys
import time
import uuid

import pytest
from conftest import ROOT, run_module

from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_client  # fails fast on a refused password, where kafka-python retries until its timeout

NOTHING = "Nothing was changed."


@pytest.fixture
def name():
    return f"it-{uuid.uuid4().hex[:10]}"


def module(kafka_server, mod, args, **kw):
    return run_module(mod, dict(kafka_server.connection_args(), **args), **kw)


def can_describe(kafka_server, topic, user=None, password=None):
    """Log in as the user and ask for the topic's metadata: True when the authorizer lets it see the topic."""
    client = kafka_server.admin_client(user or kafka_server.client_user,
                                       password if password is not None else kafka_server.client_password)
    try:
        info = client.describe_topics([topic])[0]
        return info["error_code"] == 0
    finally:
        client.close()


def login_works(kafka_server, user, password, independent=False):
    """Log in as user/password. independent=True uses plain kafka-python (slow on refusal: it retries)."""
    from kafka.errors import KafkaError

    if not independent:
        params = dict(kafka_server.connection_args(), sasl_mechanism="SCRAM-SHA-512", ssl_check_hostname=True,
                      connect_timeout=10, request_timeout=30)
        error = kafka_client.try_login(params, user, password)
        if error is not None and not isinstance(error, kafka_client.kafka_errors.SaslAuthenticationFailedError):
            raise error
        return error is None
    try:
        client = kafka_server.admin_client(user, password, bootstrap_timeout_ms=8000)
    except KafkaError:
        return False
    client.close()
    return True


def principal_acls(admin, principal):
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePatternFilter, ResourceType)

    acls, _ = admin.describe_acls(ACLFilter(principal=principal, host="*", operation=ACLOperation.ANY,
                                            permission_type=ACLPermissionType.ANY,
                                            resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                                                   ACLResourcePatternType.ANY)))
    return sorted((a.resource_pattern.resource_type.name, a.resource_pattern.resource_name, a.operation.name)
                  for a in acls)


@pytest.fixture
def acl_topic(kafka_server, name):
    assert module(kafka_server, "kafka_topic", dict(name=name, partitions=1, replication_factor=1))["changed"]
    return name


# --- kafka_acl ---------------------------------------------------------------------------------

def test_acl_grants_access_and_is_idempotent(kafka_server, admin, acl_topic):
    principal = f"User:{kafka_server.client_user}"
    assert not can_describe(kafka_server, acl_topic), "a principal without ACL must be denied"
    args = dict(principal=principal, acls=[{"resource_type": "topic", "name": acl_topic, "operations": ["describe"]}])
    first = module(kafka_server, "kafka_acl", args, diff=True)
    assert first["changed"] is True, first
    assert first["added"] == [f"ALLOW {principal} DESCRIBE on TOPIC:{acl_topic} (LITERAL) from *"]
    assert f"DESCRIBE on TOPIC:{acl_topic}" in first["diff"]["after"]
    assert can_describe(kafka_server, acl_topic)
    assert module(kafka_server, "kafka_acl", args)["changed"] is False
    assert module(kafka_server, "kafka_acl", dict(args, state="absent"))["changed"] is True
    assert ("TOPIC", acl_topic, "DESCRIBE") not in principal_acls(admin, principal)


def test_acl_check_mode_changes_nothing(kafka_server, admin, name):
    principal = f"User:ck-{name}"
    args = dict(principal=principal, acls=[{"resource_type": "group", "name": name, "operations": ["read"]}])
    planned = module(kafka_server, "kafka_acl", args, check=True)
    assert planned["changed"] is True and planned["added"], planned
    assert principal_acls(admin, principal) == []
    done = module(kafka_server, "kafka_acl", args)
    assert done["added"] == planned["added"]
    assert principal_acls(admin, principal) == [("GROUP", name, "READ")]


def test_acl_exclusive_removes_only_when_asked(kafka_server, admin, name):
    principal = f"User:ex-{name}"
    both = [{"resource_type": "topic", "name": name, "operations": ["read", "describe"]}]
    module(kafka_server, "kafka_acl", dict(principal=principal, acls=both))
    only_read = [{"resource_type": "topic", "name": name, "operations": ["read"]}]
    kept = module(kafka_server, "kafka_acl", dict(principal=principal, acls=only_read))
    assert kept["changed"] is False, "without exclusive nothing undeclared is removed"
    assert principal_acls(admin, principal) == [("TOPIC", name, "DESCRIBE"), ("TOPIC", name, "READ")]
    planned = module(kafka_server, "kafka_acl", dict(principal=principal, acls=only_read, exclusive=True), check=True)
    assert planned["removed"] and len(principal_acls(admin, principal)) == 2
    done = module(kafka_server, "kafka_acl", dict(principal=principal, acls=only_read, exclusive=True))
    assert done["removed"] == [f"ALLOW {principal} DESCRIBE on TOPIC:{name} (LITERAL) from *"]
    assert principal_acls(admin, principal) == [("TOPIC", name, "READ")]


@pytest.mark.parametrize("args, message", [
    pytest.param(dict(principal="nobody", acls=[{"resource_type": "topic", "name": "t", "operations": ["read"]}]),
                 "must look like 'User:<name>'", id="bad-principal"),
    pytest.param(dict(principal="User:x", acls=[{"resource_type": "group", "name": "g", "operations": ["write"]}]),
                 "operation 'write' does not apply to group", id="operation-not-for-resource"),
    pytest.param(dict(principal="User:x", acls=[{"resource_type": "cluster", "name": "other", "operations": ["describe"]}]),
                 "the cluster resource is named 'kafka-cluster'", id="bad-cluster-name"),
])
def test_acl_bad_input(kafka_server, admin, args, message):
    before = principal_acls(admin, args["principal"])
    result = module(kafka_server, "kafka_acl", args)
    assert result.get("failed") is True and message in result["msg"] and NOTHING in result["msg"], result
    assert principal_acls(admin, args["principal"]) == before


def test_acl_wrong_password(kafka_server, admin, name):
    principal = f"User:wp-{name}"
    result = module(kafka_server, "kafka_acl", dict(principal=principal, sasl_password="wrong-password-x",
                                                    acls=[{"resource_type": "topic", "name": name, "operations": ["read"]}]))
    assert result.get("failed") is True and "authentication failed" in result["msg"] and NOTHING in result["msg"]
    assert principal_acls(admin, principal) == []


# --- kafka_user --------------------------------------------------------------------------------

def test_user_create_login_rotate_delete(kafka_server, name):
    first_pw, second_pw = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    created = module(kafka_server, "kafka_user", dict(name=name, password=first_pw), diff=True)
    assert created["changed"] is True and created["operation"] == "create", created
    assert created["user"]["credentials"] == [{"mechanism": "SCRAM-SHA-512", "iterations": 8192}]
    assert first_pw not in str(created) and created["diff"]["after"]["password"] == "<set>"
    assert login_works(kafka_server, name, first_pw)

    again = module(kafka_server, "kafka_user", dict(name=name, password=first_pw))
    assert again["changed"] is False and again["reason"] == "the password authenticates", again

    planned = module(kafka_server, "kafka_user", dict(name=name, password=second_pw), check=True)
    assert planned["changed"] is True and planned["operation"] == "update", planned
    assert login_works(kafka_server, name, first_pw), "check mode must not rotate the password"

    rotated = module(kafka_server, "kafka_user", dict(name=name, password=second_pw))
    assert rotated["changed"] is True and rotated["reason"] == "the password does not authenticate", rotated
    assert login_works(kafka_server, name, second_pw) and not login_works(kafka_server, name, first_pw)
    assert login_works(kafka_server, name, second_pw, independent=True)
    assert not login_works(kafka_server, name, first_pw, independent=True)
    assert module(kafka_server, "kafka_user", dict(name=name, password=second_pw))["changed"] is False

    kept = module(kafka_server, "kafka_user", dict(name=name, password=first_pw, update_password="on_create"))
    assert kept["changed"] is False and login_works(kafka_server, name, second_pw), kept

    deleted = module(kafka_server, "kafka_user", dict(name=name, state="absent"))
    assert deleted["changed"] is True and deleted["user"]["credentials"] == [], deleted
    assert not login_works(kafka_server, name, second_pw)
    assert module(kafka_server, "kafka_user", dict(name=name, state="absent"))["changed"] is False


@pytest.mark.parametrize("args, message", [
    pytest.param(dict(iterations=1000), "iterations must be between 4096 and 16384", id="iterations"),
    pytest.param(dict(name="bad name"), "must be non-empty without spaces", id="name"),
])
def test_user_bad_input(kafka_server, name, args, message):
    result = module(kafka_server, "kafka_user", dict(dict(name=name, password="a-long-enough-password"), **args))
    assert result.get("failed") is True and message in result["msg"] and NOTHING in result["msg"], result
    assert not login_works(kafka_server, args.get("name", name), "a-long-enough-password")


def test_user_wrong_admin_password(kafka_server, name):
    result = module(kafka_server, "kafka_user", dict(name=name, password="a-long-enough-password",
                                                     sasl_password="wrong-password-y"))
    assert result.get("failed") is True and "authentication failed" in result["msg"], result
    assert not login_works(kafka_server, name, "a-long-enough-password")


# --- kafka_cluster_info ------------------------------------------------------------------------

def test_cluster_info_reports_health(kafka_server):
    healthy = module(kafka_server, "kafka_cluster_info", dict(expected_brokers=[1], expected_voters=[1]))
    assert healthy["changed"] is False and healthy["healthy"] is True, healthy
    assert healthy["controller_id"] == 1 and healthy["quorum"]["voters"][0]["id"] == 1
    assert healthy["brokers"] == [{"id": 1, "host": "127.0.0.1", "port": int(kafka_server.bootstrap.rsplit(":", 1)[1]),
                                   "fenced": False}]
    assert healthy["under_replicated_partitions"] == [] and healthy["offline_partitions"] == []

    missing = module(kafka_server, "kafka_cluster_info", dict(expected_brokers=[1, 2], expected_voters=[1, 2]))
    assert missing["healthy"] is False
    assert "broker 2 is not registered" in missing["problems"] and "node 2 is not a quorum voter" in missing["problems"]


def test_cluster_info_fails_clearly_without_a_cluster(kafka_server):
    started = time.monotonic()
    result = module(kafka_server, "kafka_cluster_info", dict(sasl_password="wrong-password-z", connect_timeout=60))
    assert result.get("failed") is True and "authentication failed" in result["msg"]
    # Well under the 60 s connect timeout, with room for a loaded machine (the ansible command alone takes seconds).
    assert time.monotonic() - started < 40
