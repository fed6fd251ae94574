"""influxdb_bucket: create / no-op / update / check mode / diff / delete / bad input."""
from __future__ import annotations

import uuid

from conftest import run_module


def _bucket(server, name):
    status, body = server.api("GET", f"/api/v2/buckets?orgID={server.org_id}&name={name}")
    found = [b for b in body.get("buckets", []) if b["name"] == name] if status == 200 else []
    return found[0] if found else None


def _retention(bucket):
    rules = bucket["retentionRules"]
    return rules[0]["everySeconds"] if rules else 0


def test_bucket_lifecycle(influxdb_server):
    name = f"b-{uuid.uuid4().hex[:8]}"
    args = influxdb_server.module_args(name=name, retention="2d", description="test bucket")

    check = run_module("influxdb_bucket", args, check=True, diff=True)
    assert check["changed"] and check["diff"]["before"] == {} and check["diff"]["after"]["retention"] == "2d"
    assert _bucket(influxdb_server, name) is None

    created = run_module("influxdb_bucket", args)
    assert created["changed"] and created["bucket"]["id"], created
    assert _retention(_bucket(influxdb_server, name)) == 2 * 86400

    again = run_module("influxdb_bucket", args, diff=True)
    assert again["changed"] is False and again["diff"]["before"] == again["diff"]["after"], again

    # check mode computes the same update a real run makes, and touches nothing
    longer = dict(args, retention="7d")
    predicted = run_module("influxdb_bucket", longer, check=True, diff=True)
    assert predicted["changed"] and predicted["diff"]["before"]["retention"] == "2d"
    assert predicted["diff"]["after"]["retention"] == "1w"
    assert _retention(_bucket(influxdb_server, name)) == 2 * 86400
    updated = run_module("influxdb_bucket", longer)
    assert updated["changed"] and _retention(_bucket(influxdb_server, name)) == 7 * 86400
    assert run_module("influxdb_bucket", longer)["changed"] is False

    # only declared options are managed: no description given -> kept
    assert run_module("influxdb_bucket", influxdb_server.module_args(name=name, retention="7d"))["changed"] is False
    assert _bucket(influxdb_server, name)["description"] == "test bucket"

    forever = run_module("influxdb_bucket", dict(args, retention="0"))
    assert forever["changed"] and _retention(_bucket(influxdb_server, name)) == 0
    assert run_module("influxdb_bucket", dict(args, retention="0"))["changed"] is False

    gone = run_module("influxdb_bucket", influxdb_server.module_args(name=name, state="absent"), diff=True)
    assert gone["changed"] and _bucket(influxdb_server, name) is None
    assert run_module("influxdb_bucket", influxdb_server.module_args(name=name, state="absent"))["changed"] is False


def test_bad_input_is_refused_and_changes_nothing(influxdb_server):
    name = f"b-{uuid.uuid4().hex[:8]}"
    cases = [
        (influxdb_server.module_args(name=name, retention="20m"), "minimum of 1h"),
        (influxdb_server.module_args(name=name, retention="thirty"), "not a duration"),
        (influxdb_server.module_args(name=name, retention="30"), "needs a unit"),
        (influxdb_server.module_args(name=name, org="no-such-org"), "unknown organization"),
        (influxdb_server.module_args(name=name, token="not-a-token"), "token is not accepted"),
        (influxdb_server.module_args(name="_monitoring", retention="1d"), "system bucket"),
    ]
    for args, words in cases:
        result = run_module("influxdb_bucket", args)
        assert result.get("failed") and words in result["msg"], (args, result)
        assert "Nothing was changed" in result["msg"]
        assert "not-a-token" not in str(result)
    assert _bucket(influxdb_server, name) is None
