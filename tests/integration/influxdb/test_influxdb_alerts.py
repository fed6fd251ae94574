"""influxdb_check, influxdb_notification_endpoint, influxdb_notification_rule: create / no-op / update /
check mode / bad input, and a real delivery: a threshold crossing reaches an HTTP receiver."""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import run_module

THRESHOLDS = [{"level": "crit", "type": "greater", "value": 35}, {"level": "warn", "type": "lesser", "value": -10}]


def _named(server, kind, name):
    status, body = server.api("GET", f"/api/v2/{kind}?orgID={server.org_id}")
    assert status == 200
    return [item for item in body[kind] if item["name"] == name]


def _check_args(server, name, **extra):
    args = server.module_args(name=name, bucket=server.bucket, measurement="weather", field="temperature",
                              aggregate="max", every="10s", thresholds=THRESHOLDS)
    args.update(extra)
    return args


def test_check_lifecycle(influxdb_server):
    name = f"check-{uuid.uuid4().hex[:6]}"
    args = _check_args(influxdb_server, name)
    predicted = run_module("influxdb_check", args, check=True, diff=True)
    assert predicted["changed"] and predicted["diff"]["before"] == {}
    assert 'r._field == "temperature"' in predicted["diff"]["after"]["query"]
    assert _named(influxdb_server, "checks", name) == []

    created = run_module("influxdb_check", args)
    assert created["changed"] and created["check"]["id"] and created["check"]["task_id"], created
    [check] = _named(influxdb_server, "checks", name)
    assert {(t["level"], t["type"], t["value"]) for t in check["thresholds"]} == {("CRIT", "greater", 35), ("WARN", "lesser", -10)}

    again = run_module("influxdb_check", args, diff=True)
    assert again["changed"] is False and again["diff"]["before"] == again["diff"]["after"], again

    hotter = dict(args, thresholds=[{"level": "crit", "type": "greater", "value": 40}, THRESHOLDS[1]])
    update_check = run_module("influxdb_check", hotter, check=True, diff=True)
    assert update_check["changed"]
    assert _named(influxdb_server, "checks", name)[0]["thresholds"][0]["value"] == 35  # untouched by check mode
    updated = run_module("influxdb_check", hotter)
    assert updated["changed"] and updated["check"]["id"] == created["check"]["id"]
    values = {t["level"]: t["value"] for t in _named(influxdb_server, "checks", name)[0]["thresholds"]}
    assert values == {"CRIT": 40, "WARN": -10}
    assert run_module("influxdb_check", hotter)["changed"] is False

    paused = run_module("influxdb_check", dict(hotter, status="inactive"))
    assert paused["changed"] and _named(influxdb_server, "checks", name)[0]["status"] == "inactive"

    gone = run_module("influxdb_check", influxdb_server.module_args(name=name, state="absent"))
    assert gone["changed"] and _named(influxdb_server, "checks", name) == []


def test_deadman_check(influxdb_server):
    name = f"dead-{uuid.uuid4().hex[:6]}"
    args = influxdb_server.module_args(name=name, type="deadman", bucket=influxdb_server.bucket, measurement="weather",
                                       field="temperature", time_since="90s", stale_after="10m", every="30s")
    assert run_module("influxdb_check", args)["changed"]
    [check] = _named(influxdb_server, "checks", name)
    assert check["type"] == "deadman" and check["level"] == "CRIT" and check["timeSince"] == "1m30s"
    assert run_module("influxdb_check", args)["changed"] is False
    assert run_module("influxdb_check", dict(args, time_since="2m"))["changed"] is True
    assert run_module("influxdb_check", dict(args, time_since="120s"))["changed"] is False  # same duration


@pytest.mark.parametrize("extra, words", [
    ({"query": 'from(bucket: "weather") |> range(start: -1m'}, "invalid Flux query"),
    ({"query": 'from(bucket: "weather") |> rangx(start: -1m) |> filter(fn: (r) => r._field == "t")'}, "does not run"),
    ({"query": 'from(bucket: "no-such") |> range(start: -1m) |> filter(fn: (r) => r._field == "t")'}, "does not run"),
    ({"bucket": "no-such"}, "unknown bucket 'no-such'"),
    ({"org": "no-such"}, "unknown organization"),
    ({"token": "not-a-token"}, "token is not accepted"),
    ({"every": "often"}, "not a duration"),
    ({"thresholds": [{"level": "crit", "type": "greater"}]}, "needs a value"),
    ({"thresholds": [{"level": "crit", "type": "greater", "value": 1}, {"level": "crit", "type": "lesser", "value": 0}]},
     "one per level"),
    ({"thresholds": [{"level": "crit", "type": "range", "min": 5, "max": 1}]}, "min <= max"),
])
def test_check_bad_input_changes_nothing(influxdb_server, extra, words):
    name = f"bad-{uuid.uuid4().hex[:6]}"
    args = _check_args(influxdb_server, name, **extra)
    if "query" in extra:
        for key in ("bucket", "measurement", "field"):
            args.pop(key)
    result = run_module("influxdb_check", args)
    assert result.get("failed") and words in result["msg"] and "Nothing was changed" in result["msg"], result
    assert _named(influxdb_server, "checks", name) == []


def test_bad_flux_on_update_keeps_the_old_check(influxdb_server):
    name = f"keep-{uuid.uuid4().hex[:6]}"
    args = _check_args(influxdb_server, name)
    run_module("influxdb_check", args)
    [before] = _named(influxdb_server, "checks", name)
    bad = dict(args, query='from(bucket: "weather") |> rangx(start: -1m) |> filter(fn: (r) => r._field == "x")')
    for key in ("bucket", "measurement", "field"):
        bad.pop(key)
    assert run_module("influxdb_check", bad).get("failed")
    [after] = _named(influxdb_server, "checks", name)
    assert after["query"]["text"] == before["query"]["text"] and after["updatedAt"] == before["updatedAt"]


def test_endpoint_and_rule_lifecycle(influxdb_server):
    suffix = uuid.uuid4().hex[:6]
    ep_args = influxdb_server.module_args(name=f"ep-{suffix}", endpoint_url="https://127.0.0.1:9/alerts",
                                          headers={"X-Isobar": "lab"})
    assert run_module("influxdb_notification_endpoint", ep_args, check=True)["changed"]
    assert _named(influxdb_server, "notificationEndpoints", f"ep-{suffix}") == []
    created = run_module("influxdb_notification_endpoint", ep_args)
    assert created["changed"] and created["endpoint"]["id"]
    assert run_module("influxdb_notification_endpoint", ep_args)["changed"] is False
    moved = dict(ep_args, endpoint_url="https://127.0.0.2:9/alerts")
    diff = run_module("influxdb_notification_endpoint", moved, check=True, diff=True)
    assert diff["changed"] and diff["diff"]["before"]["endpoint_url"] == "https://127.0.0.1:9/alerts"
    assert run_module("influxdb_notification_endpoint", moved)["changed"]
    assert _named(influxdb_server, "notificationEndpoints", f"ep-{suffix}")[0]["url"] == "https://127.0.0.2:9/alerts"
    assert run_module("influxdb_notification_endpoint", moved)["changed"] is False

    # credentials: sent on creation, masked, never compared (InfluxDB does not return them)
    secret = "bearer-" + uuid.uuid4().hex
    bearer = dict(moved, name=f"ep-b-{suffix}", auth_method="bearer", bearer_token=secret)
    first = run_module("influxdb_notification_endpoint", bearer, diff=True)
    assert first["changed"] and secret not in json.dumps(first)
    assert run_module("influxdb_notification_endpoint", bearer)["changed"] is False
    assert run_module("influxdb_notification_endpoint", dict(bearer, update_secrets="always"))["changed"] is True

    rule_args = influxdb_server.module_args(name=f"rule-{suffix}", endpoint=f"ep-{suffix}", every="10s",
                                            status_rules=[{"current_level": "crit"}])
    assert run_module("influxdb_notification_rule", rule_args, check=True)["changed"]
    assert _named(influxdb_server, "notificationRules", f"rule-{suffix}") == []
    rule = run_module("influxdb_notification_rule", rule_args)
    assert rule["changed"] and rule["rule"]["endpoint_id"] == created["endpoint"]["id"]
    assert run_module("influxdb_notification_rule", rule_args)["changed"] is False
    warn_too = dict(rule_args, status_rules=[{"current_level": "crit"}, {"current_level": "warn", "previous_level": "ok"}],
                    tag_rules=[{"key": "station", "value": "st-01"}])
    predicted = run_module("influxdb_notification_rule", warn_too, check=True, diff=True)
    assert predicted["changed"] and len(predicted["diff"]["after"]["status_rules"]) == 2
    assert len(_named(influxdb_server, "notificationRules", f"rule-{suffix}")[0]["statusRules"]) == 1
    assert run_module("influxdb_notification_rule", warn_too)["changed"]
    assert run_module("influxdb_notification_rule", warn_too)["changed"] is False
    moved_rule = dict(warn_too, endpoint=f"ep-b-{suffix}")
    assert run_module("influxdb_notification_rule", moved_rule)["changed"]
    assert _named(influxdb_server, "notificationRules", f"rule-{suffix}")[0]["endpointID"] != created["endpoint"]["id"]

    bad = run_module("influxdb_notification_rule", dict(rule_args, name=f"rule-x-{suffix}", endpoint="no-such"))
    assert bad.get("failed") and "unknown notification endpoint 'no-such'" in bad["msg"]
    assert _named(influxdb_server, "notificationRules", f"rule-x-{suffix}") == []
    bad_url = run_module("influxdb_notification_endpoint", dict(ep_args, name=f"ep-x-{suffix}", endpoint_url="ftp://x"))
    assert bad_url.get("failed") and "not an http(s) URL" in bad_url["msg"]

    for kind, module, name in (("notificationRules", "influxdb_notification_rule", f"rule-{suffix}"),
                               ("notificationEndpoints", "influxdb_notification_endpoint", f"ep-{suffix}"),
                               ("notificationEndpoints", "influxdb_notification_endpoint", f"ep-b-{suffix}")):
        assert run_module(module, influxdb_server.module_args(name=name, state="absent"))["changed"]
        assert _named(influxdb_server, kind, name) == []


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length") or 0)
        type(self).received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_header_values_are_never_shown(influxdb_server):
    # Headers carry credentials too (an API key for the receiver): their values are masked like the token.
    secret = "key-" + uuid.uuid4().hex
    args = influxdb_server.module_args(name=f"ep-h-{uuid.uuid4().hex[:6]}", endpoint_url="https://127.0.0.1:9/alerts",
                                       headers={"X-Api-Key": secret})
    for check in (True, False):
        result = run_module("influxdb_notification_endpoint", args, check=check, diff=True)
        assert result["changed"] and not result.get("failed"), result
        assert secret not in json.dumps(result), result
    assert _named(influxdb_server, "notificationEndpoints", args["name"])[0]["headers"] == {"X-Api-Key": secret}
    assert run_module("influxdb_notification_endpoint", args)["changed"] is False


def test_threshold_crossing_is_delivered_to_an_http_receiver(influxdb_server):
    """The real chain: points above 35 -> check writes crit into _monitoring -> rule POSTs it."""
    from influxdb_client.client.write_api import SYNCHRONOUS

    suffix = uuid.uuid4().hex[:6]
    bucket = f"alerts-{suffix}"
    assert run_module("influxdb_bucket", influxdb_server.module_args(name=bucket, retention="1h"))["changed"]
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        check = run_module("influxdb_check", _check_args(influxdb_server, f"hot-{suffix}", bucket=bucket, every="5s"))
        endpoint = run_module("influxdb_notification_endpoint", influxdb_server.module_args(
            name=f"recv-{suffix}", endpoint_url=f"http://127.0.0.1:{receiver.server_port}/alerts"))
        rule = run_module("influxdb_notification_rule", influxdb_server.module_args(
            name=f"crit-{suffix}", endpoint=f"recv-{suffix}", every="5s"))
        assert not any(r.get("failed") for r in (check, endpoint, rule)), (check, endpoint, rule)
        # a check only sees points stamped within its last `every`: write a hot minute ahead of now
        now = int(time.time())
        lines = [f"weather,station=st-hot temperature=41.5 {t}" for t in range(now - 5, now + 60)]
        with influxdb_server.client() as client:
            client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record=lines, write_precision="s")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not [r for r in _Receiver.received if r.get("_check_name") == f"hot-{suffix}"]:
            time.sleep(1)
        hits = [r for r in _Receiver.received if r.get("_check_name") == f"hot-{suffix}"]
        assert hits, f"no notification within 60s (received: {_Receiver.received})"
        assert hits[0]["_level"] == "crit" and hits[0]["station"] == "st-hot"
        with influxdb_server.client() as client:
            statuses = client.query_api().query(
                f'from(bucket: "_monitoring") |> range(start: -5m) |> filter(fn: (r) => r._measurement == "statuses" '
                f'and r._check_name == "hot-{suffix}" and r._level == "crit")')
        assert sum(len(t.records) for t in statuses) > 0
    finally:
        receiver.shutdown()
        receiver.server_close()
        for module, name in (("influxdb_notification_rule", f"crit-{suffix}"), ("influxdb_check", f"hot-{suffix}"),
                             ("influxdb_notification_endpoint", f"recv-{suffix}")):
            run_module(module, influxdb_server.module_args(name=name, state="absent"))
