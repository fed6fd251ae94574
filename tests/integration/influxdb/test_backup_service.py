"""The automatic backup (isobar-backup.service's program, influxdb_backup_auto) against a real influxd: each run writes a
complete backup (the influxdb_backup module's format, private), applies the retention (newest ``keep`` kept, older
ones and leftover .partial directories removed, other names left alone), and records its outcome in a 0640 status
file; a failed run (a token that is not the operator's) exits 1, leaves no partial directory, and keeps the last
success in the status with the error; unusable settings exit 2 and touch nothing. The newest automatic backup
restores (influxdb_restore) onto a fresh influxd with every counted value.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid

import pytest

from conftest import ROOT, run_module
from fixtures.influxdb_server import start_influxd

pytestmark = pytest.mark.slow
AUTO = "ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_auto"
POINTS = 50


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def source(influxdb_server):
    bucket = f"auto-backup-{uuid.uuid4().hex[:6]}"
    assert run_module("influxdb_bucket", influxdb_server.module_args(name=bucket, retention="0"))["changed"]
    from influxdb_client.client.write_api import SYNCHRONOUS

    with influxdb_server.client() as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket=bucket, org=influxdb_server.org,
            record=[f"weather,station=st-{i % 3} temperature={i / 10} {1_790_000_000 + i}" for i in range(POINTS)],
            write_precision="s")
    yield influxdb_server, bucket
    run_module("influxdb_bucket", influxdb_server.module_args(name=bucket, state="absent"))


def _settings(server, bucket, tmp_path, **override):
    settings = dict(url=server.url, token=server.token, org=server.org, ca_path=server.ca_path,
                    backup_dir=str(tmp_path / "backups"), keep=2, count_buckets=[bucket], label="test",
                    status_path=str(tmp_path / "status" / "backup.json"))
    settings.update(override)
    (tmp_path / "status").mkdir(exist_ok=True)
    config = tmp_path / "backup.json"
    config.write_text(json.dumps(settings))
    config.chmod(0o600)
    return config


def _run(config):
    proc = subprocess.run([sys.executable, "-m", AUTO, "--config", str(config)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT / "collections")), timeout=300)
    return proc.returncode, proc.stderr


def _status(tmp_path):
    path = tmp_path / "status" / "backup.json"
    return json.loads(path.read_text()), _mode(path)


def test_each_run_backs_up_keeps_the_newest_and_reports_its_outcome(source, tmp_path):
    server, bucket = source
    config = _settings(server, bucket, tmp_path)
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    # An old backup, a leftover of an interrupted run and a file that is not ours.
    (backups / "20000101T000000Z").mkdir()
    (backups / "20000102T000000Z.partial").mkdir()
    (backups / "README").write_text("not a backup\n")

    rc, log = _run(config)
    assert rc == 0, log
    assert server.token not in log
    status, mode = _status(tmp_path)
    assert mode == 0o640
    assert status["last_run_ok"] is True and status["last_success"] == status["last_run"], status
    assert status["last_error"] is None and status["consecutive_failures"] == 0
    first = status["backup"]
    path = backups / first
    assert status["path"] == str(path) and path.is_dir() and _mode(path) == 0o700
    files = list(path.iterdir())
    assert len(files) == status["files"] >= 5 and all(_mode(f) == 0o600 for f in files)
    assert status["size_bytes"] == sum(f.stat().st_size for f in files) > 0
    assert status["counts"] == {bucket: POINTS}
    assert status["kept"] == [first, "20000101T000000Z"] and status["removed"] == ["20000102T000000Z.partial"]
    sidecar = json.loads((path / f"{first}.isobar.json").read_text())
    assert sidecar["counts"] == {bucket: POINTS} and sidecar["label"] == "test" and sidecar["bytes"] < status["size_bytes"]

    rc, log = _run(config)  # keep=2: the old backup goes
    assert rc == 0, log
    status, _ = _status(tmp_path)
    second = status["backup"]
    assert second > first and status["kept"] == [second, first] and status["removed"] == ["20000101T000000Z"]
    assert sorted(p.name for p in backups.iterdir()) == sorted([first, second, "README"])
    assert _mode(backups) == 0o700


def test_a_failed_run_keeps_the_last_success_and_says_why(source, tmp_path):
    server, bucket = source
    rc, log = _run(_settings(server, bucket, tmp_path))
    assert rc == 0, log
    good, _ = _status(tmp_path)

    # A token of a user without operator permissions (a read token): metadata backup refused (401/403).
    reader = run_module("influxdb_authorization", server.module_args(
        description=f"auto backup reader {bucket}", permissions=[{"action": "read", "type": "buckets", "name": bucket}]))
    try:
        # no count_buckets: a read token cannot read the org, so the counting would refuse it before the backup
        rc, log = _run(_settings(server, bucket, tmp_path, token=reader["token"], count_buckets=[]))
    finally:
        run_module("influxdb_authorization", server.module_args(description=f"auto backup reader {bucket}", state="absent"))
    assert rc == 1, log
    assert reader["token"] not in log
    status, mode = _status(tmp_path)
    assert mode == 0o640
    assert status["last_run_ok"] is False and status["consecutive_failures"] == 1
    assert "the token needs operator permissions" in status["last_error"], status["last_error"]
    assert status["last_error_time"] == status["last_run"]
    assert {k: status[k] for k in ("last_success", "backup", "size_bytes")} == \
           {k: good[k] for k in ("last_success", "backup", "size_bytes")}
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [good["backup"]], "no partial directory left"

    # InfluxDB away (a closed loopback port): the same, a second failure in a row.
    rc, log = _run(_settings(server, bucket, tmp_path, url="https://127.0.0.1:9"))
    assert rc == 1 and "cannot reach InfluxDB" in log, log
    status, _ = _status(tmp_path)
    assert status["consecutive_failures"] == 2 and status["last_success"] == good["last_success"]

    rc, log = _run(_settings(server, bucket, tmp_path))  # a success resets the failure count, keeps the last error
    assert rc == 0, log
    status, _ = _status(tmp_path)
    assert status["last_run_ok"] is True and status["consecutive_failures"] == 0 and "cannot reach" in status["last_error"]


@pytest.mark.parametrize("change, message", [
    ({"keep": 0}, "keep must be between 1 and 1000"),
    ({"backup_dir": "relative"}, "backup_dir must be an absolute path"),
    ({"token": None}, "token is required"),
    ({"surprise": 1}, "unknown settings ['surprise']"),
    ({"mode": 0o644}, "is mode 0644"),
])
def test_unusable_settings_exit_2_and_change_nothing(source, tmp_path, change, message):
    server, bucket = source
    change = dict(change)
    mode = change.pop("mode", 0o600)
    config = _settings(server, bucket, tmp_path, **change)
    if change.get("token", "") is None:
        data = json.loads(config.read_text())
        del data["token"]
        config.write_text(json.dumps(data))
    config.chmod(mode)
    rc, log = _run(config)
    assert rc == 2 and message in log and "Nothing was changed" in log, log
    assert server.token not in log
    assert not (tmp_path / "backups").exists() and not (tmp_path / "status" / "backup.json").exists()


def test_the_newest_automatic_backup_restores_with_every_counted_value(source, tmp_path):
    server, bucket = source
    rc, log = _run(_settings(server, bucket, tmp_path))
    assert rc == 0, log
    status, _ = _status(tmp_path)
    with start_influxd(tmp_path / "fresh", onboard=False) as fresh:
        restored = run_module("influxdb_restore", dict(url=fresh.url, ca_path=fresh.ca_path, token=server.token,
                                                       path=status["path"]))
        assert restored["changed"] and restored["target_state"] == "fresh", restored
        assert restored["counts_before"] == status["counts"] == restored["counts_after"] == {bucket: POINTS}
