"""influxdb_authorization: least-privilege tokens captured once, scopes enforced by the server."""
from __future__ import annotations

import uuid

import pytest

from conftest import run_module


def _auths(server, description):
    status, body = server.api("GET", f"/api/v2/authorizations?orgID={server.org_id}")
    assert status == 200
    return [a for a in body["authorizations"] if a["description"] == description]


def _write(server, token, bucket, value=1.0):
    """Write one point with a token through influxdb-client; returns the HTTP status (204 = written)."""
    from influxdb_client.client.write_api import SYNCHRONOUS
    from influxdb_client.rest import ApiException

    with server.client(token=token) as client:
        try:
            client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record=f"scope,t=x v={value}")
            return 204
        except ApiException as exc:
            return exc.status


def _read(server, token, bucket):
    """Query a bucket with a token; returns the HTTP status (200 = allowed)."""
    from influxdb_client.rest import ApiException

    with server.client(token=token) as client:
        try:
            client.query_api().query(f'from(bucket: "{bucket}") |> range(start: -1h)')
            return 200
        except ApiException as exc:
            return exc.status


@pytest.fixture
def desc():
    return f"test token {uuid.uuid4().hex[:8]}"


def test_read_token_cannot_write_and_write_token_cannot_read(influxdb_server, desc):
    bucket = influxdb_server.bucket
    reader = run_module("influxdb_authorization", influxdb_server.module_args(
        description=desc + " read", permissions=[{"action": "read", "type": "buckets", "name": bucket}]))
    writer = run_module("influxdb_authorization", influxdb_server.module_args(
        description=desc + " write", permissions=[{"action": "write", "type": "buckets", "name": bucket}]))
    assert reader["created"] and writer["created"]
    assert reader["authorization"]["permissions"] == [f"read:buckets/{bucket}"]

    assert _write(influxdb_server, writer["token"], bucket) == 204
    assert _read(influxdb_server, reader["token"], bucket) == 200
    assert _write(influxdb_server, reader["token"], bucket) in (401, 403, 404)
    assert _read(influxdb_server, writer["token"], bucket) in (401, 403, 404)
    # neither may touch other buckets or manage tokens
    assert _write(influxdb_server, writer["token"], "_monitoring") in (401, 403, 404)
    status, _ = influxdb_server.api("POST", "/api/v2/authorizations", token=writer["token"], body={
        "orgID": influxdb_server.org_id, "permissions": [{"action": "write", "resource": {"type": "buckets",
                                                          "orgID": influxdb_server.org_id}}]})
    assert status in (401, 403)


def test_token_is_captured_once_and_kept(influxdb_server, desc):
    args = influxdb_server.module_args(description=desc,
                                       permissions=[{"action": "write", "type": "buckets", "name": "weather"}])
    check = run_module("influxdb_authorization", args, check=True, diff=True)
    assert check["changed"] and check["created"] and "token" not in check
    assert _auths(influxdb_server, desc) == []

    first = run_module("influxdb_authorization", args)
    assert first["changed"] and first["created"] and first["token"]
    token, auth_id = first["token"], first["authorization"]["id"]

    # the kept value is accepted: nothing to do, the value is not shown again
    again = run_module("influxdb_authorization", dict(args, current_token=token), diff=True)
    assert again["changed"] is False and "token" not in again and again["authorization"]["id"] == auth_id, again
    assert token not in str(again)

    # status is updated in place, the value stays valid
    inactive = run_module("influxdb_authorization", dict(args, current_token=token, status="inactive"))
    assert inactive["changed"] and not inactive["created"] and inactive["authorization"]["status"] == "inactive"
    assert _write(influxdb_server, token, "weather") in (401, 403)
    active = run_module("influxdb_authorization", dict(args, current_token=token))
    assert active["changed"] and active["authorization"]["id"] == auth_id
    assert _write(influxdb_server, token, "weather") == 204
    assert [a["id"] for a in _auths(influxdb_server, desc)] == [auth_id]


def test_lost_value_gives_a_new_token_and_removes_the_unknowable_one(influxdb_server, desc):
    args = influxdb_server.module_args(description=desc,
                                       permissions=[{"action": "read", "type": "buckets", "name": "weather"}])
    old = run_module("influxdb_authorization", args)
    # vault lost (no current_token) or a value the server does not know (instance re-created)
    for current in (None, "value-from-an-old-lab"):
        run_args = dict(args, current_token=current) if current else args
        predicted = run_module("influxdb_authorization", run_args, check=True)
        assert predicted["changed"] and predicted["created"] and len(predicted["removed_ids"]) == 1
        new = run_module("influxdb_authorization", run_args)
        assert new["created"] and new["token"] != old["token"] and new["removed_ids"] == [old["authorization"]["id"]]
        assert [a["id"] for a in _auths(influxdb_server, desc)] == [new["authorization"]["id"]]
        assert _read(influxdb_server, old["token"], "weather") == 401
        assert _read(influxdb_server, new["token"], "weather") == 200
        old = new


def test_permission_change_is_refused_and_the_clients_token_keeps_working(influxdb_server, desc):
    # The token's clients still hold the old value: deleting it in the same step would break them all.
    args = influxdb_server.module_args(description=desc,
                                       permissions=[{"action": "read", "type": "buckets", "name": "weather"}])
    old = run_module("influxdb_authorization", args)
    wider = dict(args, current_token=old["token"], permissions=[
        {"action": "read", "type": "buckets", "name": "weather"}, {"action": "write", "type": "buckets", "name": "weather"}])
    for check in (True, False):
        refused = run_module("influxdb_authorization", wider, check=check)
        assert refused.get("failed") is True, refused
        assert "rotate-secrets.yml" in refused["msg"] and "Nothing was changed" in refused["msg"], refused["msg"]
        assert "token" not in refused and old["token"] not in str(refused)
    assert _read(influxdb_server, old["token"], "weather") == 200
    assert [a["id"] for a in _auths(influxdb_server, desc)] == [old["authorization"]["id"]]


def test_permission_change_replaces_the_token_when_asked(influxdb_server, desc):
    args = influxdb_server.module_args(description=desc,
                                       permissions=[{"action": "read", "type": "buckets", "name": "weather"}])
    old = run_module("influxdb_authorization", args)
    wider = dict(args, current_token=old["token"], replace_token=True, permissions=[
        {"action": "read", "type": "buckets", "name": "weather"}, {"action": "write", "type": "buckets", "name": "weather"}])
    predicted = run_module("influxdb_authorization", wider, check=True, diff=True)
    assert predicted["replaced"] and predicted["diff"]["before"]["permissions"] == ["read:buckets/weather"]
    assert _read(influxdb_server, old["token"], "weather") == 200  # check mode replaced nothing
    new = run_module("influxdb_authorization", wider)
    assert new["replaced"] and new["token"] and _write(influxdb_server, new["token"], "weather") == 204
    assert _read(influxdb_server, old["token"], "weather") == 401
    assert run_module("influxdb_authorization", dict(wider, current_token=new["token"]))["changed"] is False


def test_bad_input_creates_nothing(influxdb_server, desc):
    perms = [{"action": "write", "type": "buckets", "name": "weather"}]
    cases = [
        (dict(description=desc, permissions=[{"action": "write", "type": "buckets", "name": "nope"}]), "unknown bucket 'nope'"),
        (dict(description=desc, permissions=perms, org="nope"), "unknown organization"),
        (dict(description=desc, permissions=perms, token="bad-token"), "token is not accepted"),
        (dict(description=desc, permissions=[{"action": "delete", "type": "buckets"}]), "value of action must be one of"),
        (dict(description=desc), "missing: permissions"),
    ]
    for extra, words in cases:
        result = run_module("influxdb_authorization", influxdb_server.module_args(**extra))
        assert result.get("failed") and words in result["msg"], (extra, result)
    assert _auths(influxdb_server, desc) == []


def test_absent_deletes_every_token_with_the_description(influxdb_server, desc):
    args = influxdb_server.module_args(description=desc,
                                       permissions=[{"action": "read", "type": "buckets", "name": "weather"}])
    run_module("influxdb_authorization", args)
    gone = run_module("influxdb_authorization", influxdb_server.module_args(description=desc, state="absent"))
    assert gone["changed"] and len(gone["removed_ids"]) == 1 and _auths(influxdb_server, desc) == []
    assert run_module("influxdb_authorization", influxdb_server.module_args(description=desc, state="absent"))["changed"] is False
