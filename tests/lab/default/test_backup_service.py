"""Automatic backups on the lab's InfluxDB host (role isobar.pipeline.influxdb, backup_service.yml): isobar-backup.timer
is enabled with its schedule, the service runs sandboxed as its own user with the operator token only in a 0640
settings file, one start writes a backup and a 0640 status for monitoring, and the newest automatic backup restores
(influxdb_restore) onto a scratch influxd started on the same host - never the live instance, which the live services
keep writing to - with every value the backup counted. Where the inventory turns the timer off, it is checked off.

The token is never put on a command line: the module call templates it from the inventory's host variables.
"""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from fixtures.ansible_env import ansible_env, collection_module

ROOT = Path(__file__).resolve().parents[3]
SCRATCH_PORT = 18086  # loopback only, on the InfluxDB host


def role_defaults():
    """The influxdb role's defaults the test needs. Role defaults are not inventory variables (inventory_vars sees the
    inventory and the topology role only) and the lab inventories override none of these, so they are read from
    defaults/main.yml, literal values only."""
    defaults = yaml.safe_load((ROOT / "roles" / "influxdb" / "defaults" / "main.yml").read_text())
    names = ["influxdb_backup_service_dir", "influxdb_backup_service_status", "influxdb_backup_service_status_group",
             "influxdb_backup_service_user", "influxdb_backup_service_config", "influxdb_backup_service_keep",
             "influxdb_module_python", "influxdb_user", "influxdb_install_dir", "influxdb_archive_binary"]
    values = {name: defaults[name] for name in names}
    assert not any("{{" in str(v) for v in values.values()), values
    values["influxdb_binary"] = f"{values['influxdb_install_dir']}/current/{values['influxdb_archive_binary']}"
    return values


@pytest.fixture(scope="module")
def lab(inventory_vars, lab_host):
    name = inventory_vars("localhost", "groups")["groups"]["influxdb"][0]
    facts = inventory_vars(name, "influxdb_backup_service_enabled", "influxdb_org", "influxdb_bucket")
    facts.update(role_defaults(), name=name, host=lab_host(name))
    facts["influxdb_backup_count_buckets"] = [facts["influxdb_bucket"]]  # the role's default
    return facts


def off_as_configured(lab):
    """Where the inventory turns the timer off (the default outside the lab) it neither runs nor starts at boot
    (is-enabled exits 4, not-found, where the role never installed it)."""
    host = lab["host"]
    enabled = host.run("systemctl is-enabled isobar-backup.timer").stdout.strip()
    assert enabled in ("disabled", "masked", "not-found", ""), f"isobar-backup.timer is enabled although off: {enabled}"
    active = host.run("systemctl is-active isobar-backup.timer").stdout.strip()
    assert active in ("inactive", "failed", "unknown"), f"isobar-backup.timer runs although off: {active}"


@pytest.fixture(scope="module")
def on(lab):
    """The lab's facts when the timer is on in the inventory, else None (the tests then check it off)."""
    return lab if lab["influxdb_backup_service_enabled"] else None


def test_timer_is_scheduled_and_the_service_sandboxed_without_a_secret_on_its_command_line(lab, on):
    if on is None:
        off_as_configured(lab)
        return
    host = on["host"]
    assert host.run("systemctl is-enabled isobar-backup.timer").stdout.strip() == "enabled"
    assert host.run("systemctl is-active isobar-backup.timer").stdout.strip() == "active"
    timer = host.run("systemctl show isobar-backup.timer -p Persistent -p RandomizedDelayUSec -p NextElapseUSecRealtime")
    props = dict(line.split("=", 1) for line in timer.stdout.splitlines() if "=" in line)
    assert props["Persistent"] == "yes" and props["NextElapseUSecRealtime"], props
    service = host.run("systemctl show isobar-backup.service -p Type -p User -p NoNewPrivileges -p ProtectSystem "
                       "-p ExecStart")
    props = dict(line.split("=", 1) for line in service.stdout.splitlines() if "=" in line)
    assert props["Type"] == "oneshot" and props["User"] == on["influxdb_backup_service_user"], props
    assert props["NoNewPrivileges"] == "yes" and props["ProtectSystem"] == "strict", props
    assert "--config" in props["ExecStart"] and "token" not in props["ExecStart"].lower()
    config = host.file(on["influxdb_backup_service_config"])
    assert (config.mode, config.user, config.group) == (0o640, "root", on["influxdb_backup_service_user"])
    backups = host.file(on["influxdb_backup_service_dir"])
    assert (backups.mode, backups.user) == (0o700, on["influxdb_backup_service_user"])


@pytest.fixture(scope="module")
def run_once(on):
    """One start of the service (what the timer does), then its status."""
    if on is None:
        return None
    host = on["host"]
    started = time.monotonic()
    result = host.run("systemctl start isobar-backup.service")
    seconds = time.monotonic() - started
    assert result.rc == 0, (result.stderr, host.run("journalctl -u isobar-backup.service -n 20 --no-pager").stdout)
    status_file = host.file(on["influxdb_backup_service_status"])
    return {"status": json.loads(status_file.content_string), "file": status_file, "seconds": seconds}


def test_one_start_writes_a_backup_and_a_status_monitoring_can_read(lab, on, run_once):
    if on is None:
        off_as_configured(lab)
        return
    host, status = on["host"], run_once["status"]
    file = run_once["file"]
    assert (file.mode, file.group) == (0o640, on["influxdb_backup_service_status_group"])
    assert status["last_run_ok"] is True and status["consecutive_failures"] == 0, status
    last = datetime.datetime.fromisoformat(status["last_success"].replace("Z", "+00:00"))
    assert abs((datetime.datetime.now(datetime.timezone.utc) - last).total_seconds()) < 300, status["last_success"]
    sizes = host.run("find %s -type f -printf '%%s\\n'", status["path"])
    assert sizes.rc == 0 and status["size_bytes"] == sum(int(s) for s in sizes.stdout.split()) > 0, status
    assert set(status["counts"]) == set(on["influxdb_backup_count_buckets"])
    assert all(count > 0 for count in status["counts"].values()), status["counts"]
    listed = host.run("find %s -mindepth 1 -maxdepth 1 -printf '%%f\\n'", on["influxdb_backup_service_dir"]).stdout.split()
    assert status["backup"] in listed and len(listed) <= int(on["influxdb_backup_service_keep"]), listed
    assert sorted(listed, reverse=True) == status["kept"], "retention: the directory holds exactly what was kept"
    print(f"automatic backup {status['backup']}: {status['size_bytes']} bytes, values {status['counts']}, "
          f"{run_once['seconds']:.1f} s")


def _restore(on, path):
    """influxdb_restore of ``path`` onto the scratch influxd, through the ansible CLI (token templated on the host)."""
    args = {"url": f"http://127.0.0.1:{SCRATCH_PORT}", "token": "{{ influxdb_operator_token }}",
            "org": on["influxdb_org"], "path": path}
    cmd = [str(Path(sys.executable).with_name("ansible")), on["name"], "-i", on["inventory"], "--become",
           "-m", collection_module("influxdb_restore"), "-a", json.dumps(args),
           "-e", json.dumps({"ansible_python_interpreter": on["influxdb_module_python"]})]
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][on["name"]]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(f"influxdb_restore gave no result (rc={proc.returncode}): {proc.stderr[-2000:]}") from None


@pytest.fixture
def scratch(on, inventory_path):
    """A second influxd on the InfluxDB host, loopback only, its own data directory, as a transient unit; removed after."""
    if on is None:
        yield None
        return
    host = on["host"]
    unit = f"isobar-restore-check-{uuid.uuid4().hex[:8]}"
    directory = f"/var/lib/{unit}"
    assert host.run("install -d -o %s -g %s -m 0700 %s", on["influxdb_user"], on["influxdb_user"], directory).rc == 0
    assert not host.socket(f"tcp://127.0.0.1:{SCRATCH_PORT}").is_listening, f"port {SCRATCH_PORT} is in use"
    started = host.run(
        "systemd-run --unit %s --uid %s --gid %s --setenv HOME=%s %s "
        "--http-bind-address 127.0.0.1:%s --bolt-path %s/influxd.bolt --sqlite-path %s/influxd.sqlite "
        "--engine-path %s/engine --reporting-disabled --log-level warn",
        unit, on["influxdb_user"], on["influxdb_user"], directory, on["influxdb_binary"], str(SCRATCH_PORT),
        directory, directory, directory)
    try:
        assert started.rc == 0, started.stderr
        deadline = time.monotonic() + 60
        while not host.socket(f"tcp://127.0.0.1:{SCRATCH_PORT}").is_listening:
            assert time.monotonic() < deadline, host.run("journalctl -u %s -n 20 --no-pager", unit).stdout
            time.sleep(0.5)
        yield dict(on, inventory=inventory_path)
    finally:
        host.run("systemctl stop %s", unit)
        host.run("systemctl reset-failed %s", unit)  # gone when it stopped cleanly; left over when influxd failed
        host.run("rm -rf -- %s", directory)


def test_the_newest_automatic_backup_restores_with_every_counted_value(lab, scratch, run_once):
    if scratch is None:
        off_as_configured(lab)
        return
    status = run_once["status"]
    started = time.monotonic()
    restored = _restore(scratch, status["path"])
    assert not restored.get("failed"), restored.get("msg")
    assert restored["changed"] and restored["target_state"] == "fresh", restored.get("target_state")
    assert restored["backup"]["basename"] == status["backup"]
    # the scratch instance receives no writes: the counts are exactly the backup's
    assert restored["counts_before"] == status["counts"] == restored["counts_after"], (restored["counts_before"],
                                                                                      restored["counts_after"])
    print(f"restored {status['backup']} onto a scratch influxd in {time.monotonic() - started:.1f} s: "
          f"{restored['shards']} shards, values {restored['counts_after']}")
