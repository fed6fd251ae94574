"""The automatic backup's pure parts (no server): the retention plan shared with playbooks/backup.yml, the settings
checks, and how a run's outcome becomes the status monitoring reads (a failure keeps the last success)."""
from __future__ import annotations

import json
import os
import stat

import pytest
from ansible_collections.isobar.pipeline.plugins.module_utils import influxdb_backup_auto as auto
from ansible_collections.isobar.pipeline.plugins.module_utils.backup_retention import plan_retention

SETTINGS = {"url": "https://127.0.0.1:8086", "token": "op-t0ken", "org": "isobar", "backup_dir": "/var/backups/auto",
            "keep": 3, "count_buckets": ["weather"], "status_path": "/var/lib/isobar-backup/status.json"}


def test_retention_keeps_the_newest_removes_older_and_partial_leaves_foreign_names():
    names = ["20260101T000000Z", "20260103T000000Z", "20260102T000000Z", "20260104T000000Z",
             "20260105T000000Z.partial", "README", "20260101T000000Z.old", "2026-01-06", ".lock"]
    kept, removed = plan_retention(names, 2)
    assert kept == ["20260104T000000Z", "20260103T000000Z"]
    assert removed == ["20260101T000000Z", "20260102T000000Z", "20260105T000000Z.partial"]


def test_retention_with_fewer_backups_than_keep_removes_only_partials():
    assert plan_retention(["20260101T000000Z", "20260101T000001Z.partial"], 7) == (["20260101T000000Z"],
                                                                                   ["20260101T000001Z.partial"])
    assert plan_retention([], 1) == ([], [])


@pytest.mark.parametrize("keep", [0, -1])
def test_retention_refuses_to_keep_nothing(keep):
    with pytest.raises(ValueError, match="keep must be at least 1"):
        plan_retention(["20260101T000000Z"], keep)


def write(tmp_path, data, mode=0o640):
    path = tmp_path / "backup.json"
    path.write_text(json.dumps(data))
    path.chmod(mode)
    return str(path)


def test_settings_get_defaults(tmp_path):
    settings = auto.load_settings(write(tmp_path, SETTINGS))
    assert settings["timeout"] == 60 and settings["validate_certs"] is True and settings["label"] == ""


@pytest.mark.parametrize("change, mode, text", [
    (dict(keep=0), 0o600, "keep must be between 1 and 1000"),
    (dict(keep=True), 0o600, "keep must be int"),
    (dict(keep="7"), 0o600, "keep must be int"),
    (dict(backup_dir="backups"), 0o600, "backup_dir must be an absolute path"),
    (dict(status_path="/var/backups/auto/status.json"), 0o600, "status_path must not be inside backup_dir"),
    (dict(url="influxdb1:8086"), 0o600, "must start with https://"),
    (dict(token=""), 0o600, "token is empty"),
    (dict(count_buckets=["weather", ""]), 0o600, "count_buckets must be a list of bucket names"),
    (dict(extra=1), 0o600, "unknown settings ['extra']"),
    ({}, 0o644, "is mode 0644"),
])
def test_bad_settings_are_refused_with_every_problem(tmp_path, change, mode, text):
    with pytest.raises(auto.ConfigError) as info:
        auto.load_settings(write(tmp_path, dict(SETTINGS, **change), mode))
    assert text in str(info.value)
    assert "op-t0ken" not in str(info.value)


def test_a_missing_setting_is_named(tmp_path):
    data = dict(SETTINGS)
    del data["status_path"]
    with pytest.raises(auto.ConfigError, match="status_path is required"):
        auto.load_settings(write(tmp_path, data))


SUCCESS = {"time": "2026-12-03T02:30:00Z", "seconds": 1.5, "ok": True, "backup": "20261203T023000Z",
           "path": "/b/20261203T023000Z", "size_bytes": 1234, "files": 6, "shards": 2, "counts": {"weather": 10},
           "kept": ["20261203T023000Z"], "removed": []}


def test_status_after_a_success_then_failures_then_a_success():
    first = auto.merge_status({}, SUCCESS)
    assert first["last_run_ok"] and first["last_success"] == SUCCESS["time"] and first["size_bytes"] == 1234
    assert first["last_error"] is None and first["consecutive_failures"] == 0

    failed = auto.merge_status(first, {"time": "2026-12-04T02:30:00Z", "seconds": 0.2, "ok": False, "error": "boom"})
    failed = auto.merge_status(failed, {"time": "2026-12-05T02:30:00Z", "seconds": 0.2, "ok": False, "error": "bang"})
    assert failed["last_run_ok"] is False and failed["consecutive_failures"] == 2
    assert failed["last_error"] == "bang" and failed["last_error_time"] == "2026-12-05T02:30:00Z"
    # what the last success recorded stays: monitoring sees how old the newest backup is
    assert (failed["last_success"], failed["backup"], failed["size_bytes"]) == (SUCCESS["time"], SUCCESS["backup"], 1234)

    again = auto.merge_status(failed, dict(SUCCESS, time="2026-12-06T02:30:00Z", backup="20261206T023000Z"))
    assert again["last_run_ok"] and again["consecutive_failures"] == 0 and again["backup"] == "20261206T023000Z"
    assert again["last_error"] == "bang", "the last error stays visible after a success (with its time)"


def test_status_file_is_replaced_whole_and_0640(tmp_path):
    path = tmp_path / "status.json"
    auto.write_status(str(path), {"a": 1})
    auto.write_status(str(path), {"b": 2})
    assert json.loads(path.read_text()) == {"b": 2}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"], "no temporary file left"


def test_unreadable_previous_status_starts_afresh(tmp_path):
    (tmp_path / "status.json").write_text("{half")
    assert auto.read_status(str(tmp_path / "status.json")) == {}
    assert auto.read_status(str(tmp_path / "missing.json")) == {}


def test_apply_retention_removes_the_directories(tmp_path):
    for name in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z.partial"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    kept, removed = auto.apply_retention(str(tmp_path), 1)
    assert kept == ["20260102T000000Z"] and removed == ["20260101T000000Z", "20260103T000000Z.partial"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20260102T000000Z"]


def test_retention_counts_an_incoming_backup_and_the_filter_gives_the_same_plan():
    from ansible_collections.isobar.pipeline.plugins.filter.backup_retention import backup_retention

    names = ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z.partial"]
    # check mode of playbooks/backup.yml: the backup it would take counts as the newest
    assert plan_retention(names, 2, incoming=1) == (["20260102T000000Z"], ["20260101T000000Z", "20260103T000000Z.partial"])
    assert plan_retention(names, 1, incoming=1) == ([], ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z.partial"])
    assert backup_retention(names, 2) == {"kept": ["20260102T000000Z", "20260101T000000Z"],
                                          "removed": ["20260103T000000Z.partial"]}
