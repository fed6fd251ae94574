"""Durations and helpers of plugins/module_utils/influxdb_client_common.py."""
from __future__ import annotations

from pathlib import Path

import ansible.module_utils
import pytest

ansible.module_utils.__path__.append(str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))
from ansible.module_utils import influxdb_client_common as common  # noqa: E402


@pytest.mark.parametrize("text, seconds", [
    ("0", 0), ("10s", 10), ("1m", 60), ("1h30m", 5400), ("30d", 30 * 86400), ("1w", 7 * 86400), ("90s", 90)])
def test_parse_duration(text, seconds):
    assert common.parse_duration(text) == seconds * 10**9


@pytest.mark.parametrize("text", ["", "30", "1x", "10 s", "-5m", "5m10", "m"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        common.parse_duration(text)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (90, "1m30s"), (3600, "1h"), (86400 * 8, "1w1d"), (10, "10s")])
def test_format_duration_is_canonical(seconds, text):
    assert common.format_duration(seconds * 10**9) == text
    assert common.parse_duration(text) == seconds * 10**9


def test_format_duration_subsecond():
    assert common.format_duration(1_500_000_000) == "1s500ms"


class _Exit(Exception):
    pass


class _FakeModule:
    def __init__(self, check_mode=False, diff=False):
        self.check_mode, self._diff, self.params = check_mode, diff, {}

    def exit_json(self, **result):
        raise _Exit(result)

    def fail_json(self, **result):
        raise _Exit(dict(result, failed=True))


def _api(module, answers):
    """An InfluxDBApi without a client: request() answers from ``answers`` (an exception is raised) and is logged."""
    api = common.InfluxDBApi.__new__(common.InfluxDBApi)
    api.module, api.url, api.calls = module, "https://influxdb.test:8086", []

    def request(method, path, query=None, body=None, token=None, **_):
        api.calls.append((method, path, token))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    api.request = request
    return api


@pytest.mark.parametrize("answer, known", [({"buckets": []}, True), (common.InfluxDBError(401, "unauthorized"), False)])
def test_token_known_asks_the_server_with_that_token(answer, known):
    api = _api(_FakeModule(), [answer])
    assert api.token_known("t0k3n") is known
    assert api.calls == [("GET", "/api/v2/buckets", "t0k3n")]


def test_token_known_raises_other_errors():
    api = _api(_FakeModule(), [common.InfluxDBError(0, "cannot reach InfluxDB")])
    with pytest.raises(common.InfluxDBError):
        api.token_known("t0k3n")


@pytest.mark.parametrize("check_mode", [False, True])
def test_exit_absent_deletes_what_exists_unless_check_mode(check_mode):
    api = _api(_FakeModule(check_mode=check_mode, diff=True), [None])
    with pytest.raises(_Exit) as exited:
        api.exit_absent({"id": "0a1"}, {"name": "x"}, "/api/v2/checks", "check 'x'", "check")
    assert exited.value.args[0] == {"changed": True, "check": {}, "diff": {"before": {"name": "x"}, "after": {}}}
    assert api.calls == ([] if check_mode else [("DELETE", "/api/v2/checks/0a1", None)])


def test_exit_absent_of_nothing_changes_nothing():
    api = _api(_FakeModule(), [])
    with pytest.raises(_Exit) as exited:
        api.exit_absent(None, {}, "/api/v2/buckets", "bucket 'x'", "bucket")
    assert exited.value.args[0] == {"changed": False, "bucket": {}} and api.calls == []


def test_exit_absent_reports_a_failed_delete():
    api = _api(_FakeModule(), [common.InfluxDBError(403, "forbidden")])
    with pytest.raises(_Exit) as exited:
        api.exit_absent({"id": "0a1"}, {}, "/api/v2/buckets", "bucket 'x'", "bucket")
    result = exited.value.args[0]
    assert result["failed"] and result["msg"].startswith("cannot delete bucket 'x': forbidden") and result["status"] == 403


def test_holds_the_backup_only_with_the_backups_buckets_and_counts():
    from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_common import holds_the_backup

    manifest = {"buckets": [{"bucketID": "a1", "bucketName": "weather"}, {"bucketID": "b2", "bucketName": "_tasks"}]}
    counts = {"weather": 120}
    same = {"a1": "weather", "b2": "_tasks"}
    assert holds_the_backup(manifest, counts, same, lambda: {"weather": 120})
    assert not holds_the_backup(manifest, counts, same, lambda: {"weather": 121}), "a point written since"
    assert not holds_the_backup(manifest, counts, same, lambda: {}), "the counted bucket is gone"
    assert not holds_the_backup(manifest, counts, {"zz": "weather", "b2": "_tasks"}, lambda: counts), "another KV store"
    assert not holds_the_backup(manifest, counts, {**same, "c3": "new"}, lambda: counts), "a bucket created since"
    assert not holds_the_backup(manifest, {}, same, lambda: {}), "no recorded counts: cannot tell"

    def never():
        raise AssertionError("counted although the buckets differ")
    assert not holds_the_backup(manifest, counts, {"zz": "weather"}, never)
