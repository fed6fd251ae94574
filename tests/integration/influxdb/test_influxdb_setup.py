"""influxdb_setup against a fresh, not yet onboarded influxd: once, then never again."""
from __future__ import annotations

import secrets

import pytest

from conftest import run_module
from fixtures.influxdb_server import start_influxd


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    with start_influxd(tmp_path_factory.mktemp("influxdb-setup"), onboard=False) as server:
        yield server


@pytest.fixture(scope="module")
def setup_args(fresh):
    return {"url": fresh.url, "ca_path": fresh.ca_path, "org": "myorg", "bucket": "weather", "retention": "30d",
            "username": "admin", "password": "Adm1n-" + secrets.token_urlsafe(9), "token": secrets.token_urlsafe(32)}


def _allowed(server):
    status, body = server.api("GET", "/api/v2/setup", token="")
    assert status == 200
    return body["allowed"]


def test_bad_input_changes_nothing(fresh, setup_args):
    for bad, words in (({"retention": "10m"}, "minimum of 1h"), ({"retention": "30 days"}, "not a duration"),
                       ({"password": "short"}, "at least 8"), ({"token": "tiny"}, "at least 16")):
        result = run_module("influxdb_setup", {**setup_args, **bad})
        assert result.get("failed"), result
        assert words in result["msg"] and "Nothing was changed" in result["msg"]
    assert _allowed(fresh)


def test_unknown_ca_is_refused(fresh, setup_args):
    result = run_module("influxdb_setup", {**setup_args, "ca_path": None})  # the system trust lacks the test CA
    assert result.get("failed") and "certificate verify failed" in result["msg"], result
    assert _allowed(fresh)


def test_check_mode_predicts_and_does_not_onboard(fresh, setup_args):
    result = run_module("influxdb_setup", setup_args, check=True, diff=True)
    assert result["changed"] and result["onboarded"] and "token" not in result
    assert result["diff"]["after"]["operator_token"] == "<masked>"
    assert setup_args["token"] not in str(result) and setup_args["password"] not in str(result)
    assert _allowed(fresh)


def test_onboards_once_with_the_chosen_token(fresh, setup_args):
    result = run_module("influxdb_setup", setup_args)
    assert result["changed"] and result["onboarded"], result
    assert "token" not in result  # the chosen one is in force; nothing secret comes back
    assert not _allowed(fresh)
    status, body = fresh.api("GET", "/api/v2/buckets?name=weather", token=setup_args["token"])
    assert status == 200 and body["buckets"][0]["retentionRules"][0]["everySeconds"] == 30 * 86400


def test_second_run_changes_nothing(fresh, setup_args):
    result = run_module("influxdb_setup", setup_args, diff=True)
    assert result["changed"] is False and result["onboarded"] is False and "token" not in result, result
    assert result["org_id"] and result["user_id"]


def test_lost_operator_token_fails_with_recovery_steps(fresh, setup_args):
    result = run_module("influxdb_setup", {**setup_args, "token": secrets.token_urlsafe(32)})
    assert result.get("failed") and "does not accept the operator token" in result["msg"], result
    assert "influxd recovery auth create-operator" in result["msg"]


def test_unknown_org_on_a_set_up_instance_fails(fresh, setup_args):
    result = run_module("influxdb_setup", {**setup_args, "org": "other"})
    assert result.get("failed") and "no organization 'other'" in result["msg"], result


def test_password_is_kept_in_sync(fresh, setup_args):
    new = {**setup_args, "password": "N3w-" + secrets.token_urlsafe(9)}
    check = run_module("influxdb_setup", new, check=True)
    assert check["changed"] and check["password_updated"], check
    assert run_module("influxdb_setup", setup_args)["changed"] is False  # check mode did not change it
    assert run_module("influxdb_setup", new)["changed"] is True
    assert run_module("influxdb_setup", new)["changed"] is False
    assert run_module("influxdb_setup", {**new, "password": "Whatever-123", "update_password": False})["changed"] is False


def test_without_a_chosen_token_the_generated_one_is_returned_once(tmp_path_factory):
    with start_influxd(tmp_path_factory.mktemp("influxdb-setup-gen"), onboard=False) as server:
        args = {"url": server.url, "ca_path": server.ca_path, "org": "myorg", "bucket": "weather",
                "username": "admin", "password": "Adm1n-" + secrets.token_urlsafe(9)}
        result = run_module("influxdb_setup", args)
        assert result["onboarded"] and len(result["token"]) >= 16, result
        status, _ = server.api("GET", "/api/v2/orgs", token=result["token"])
        assert status == 200
        again = run_module("influxdb_setup", {**args, "token": result["token"]})
        assert again["changed"] is False and "token" not in again, again
