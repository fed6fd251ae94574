"""influxdb_backup / influxdb_restore and playbooks/backup.yml against real influxd servers.

The session server (``influxdb_server``) gets a bucket of known points spread over several shards; it is backed up,
and the backup restored onto a second influxd started fresh (not set up) from the artifact store: the points come
back equal (count and every value), tokens of the backup work and later ones do not, a target holding data is
refused without force (and replaced with it), a wrong operator token or a damaged backup is refused before anything
changes; the role's tokens.yml (the converge playbooks/restore.yml runs afterwards) re-creates into the generated vault a
client token the backup lacks. playbooks/backup.yml runs three times against the session server with
influxdb_backup_keep=2: a new backup each time, pruned to two, 0700/0600, the token never in the output.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_module
from fixtures.influxdb_server import start_influxd

pytestmark = pytest.mark.slow

STATIONS = 3
HOURS = 20 * 24  # one point an hour for 20 days: four 7-day shard groups
START = datetime.datetime(2026, 10, 1, tzinfo=datetime.timezone.utc)
FIELDS = 2


def _lines(bucket_points):
    lines = []
    for station in range(STATIONS):
        for hour in range(bucket_points):
            ts = int((START + datetime.timedelta(hours=hour)).timestamp())
            lines.append(f"weather,station=st-{station} temperature={10 + station + hour * 0.01:.2f},"
                         f"humidity={40 + (hour * 7 + station) % 50}i {ts}")
    return lines


def _write(server, bucket, lines, token=None):
    from influxdb_client import WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    with server.client(token=token) as client:
        api = client.write_api(write_options=SYNCHRONOUS)
        for i in range(0, len(lines), 5000):
            api.write(bucket=bucket, org=server.org, record=lines[i:i + 5000], write_precision=WritePrecision.S)


def _values(server, bucket, token=None):
    """Every stored value of the bucket: {(station, time, field): value}."""
    with server.client(token=token) as client:
        tables = client.query_api().query(
            f'from(bucket: "{bucket}") |> range(start: 1970-01-01T00:00:00Z, stop: 2100-01-01T00:00:00Z)')
    return {(r.values["station"], r.get_time().isoformat(), r.get_field()): r.get_value() for t in tables for r in t.records}


def _setup_allowed(server):
    status, body = server.api("GET", "/api/v2/setup", token="")
    assert status == 200
    return body["allowed"]


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def source(influxdb_server):
    """The session server with a bucket of known points and a read token on it (removed afterwards)."""
    bucket = f"backup-{uuid.uuid4().hex[:6]}"
    assert run_module("influxdb_bucket", influxdb_server.module_args(name=bucket, retention="0"))["changed"]
    _write(influxdb_server, bucket, _lines(HOURS))
    reader = run_module("influxdb_authorization", influxdb_server.module_args(
        description=f"backup test reader {bucket}", permissions=[{"action": "read", "type": "buckets", "name": bucket}]))
    assert reader["created"]
    values = _values(influxdb_server, bucket)
    assert len(values) == STATIONS * HOURS * FIELDS
    yield {"server": influxdb_server, "bucket": bucket, "reader": reader["token"], "values": values}
    run_module("influxdb_authorization", influxdb_server.module_args(description=f"backup test reader {bucket}",
                                                                     state="absent"))
    run_module("influxdb_bucket", influxdb_server.module_args(name=bucket, state="absent"))


@pytest.fixture(scope="module")
def backup(source, tmp_path_factory):
    server = source["server"]
    path = tmp_path_factory.mktemp("backups") / "first"
    args = server.module_args(path=str(path), count_buckets=[source["bucket"]], label="test")

    predicted = run_module("influxdb_backup", args, check=True)
    assert predicted["changed"] and "files" not in predicted, predicted
    assert not path.exists()

    taken = run_module("influxdb_backup", args)
    assert taken["changed"] and not taken.get("failed"), taken
    # a token created after the backup must not exist after the restore
    late = run_module("influxdb_authorization", server.module_args(
        description=f"backup test late {source['bucket']}",
        permissions=[{"action": "read", "type": "buckets", "name": source["bucket"]}]))
    yield {"path": path, "result": taken, "late": late["token"]}
    run_module("influxdb_authorization", server.module_args(description=f"backup test late {source['bucket']}",
                                                            state="absent"))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A second influxd, started from the artifact store and not set up: the restore target."""
    with start_influxd(tmp_path_factory.mktemp("influxdb-restore"), onboard=False) as server:
        yield server


def test_backup_files_are_the_influx_backup_format_and_private(source, backup):
    result, path = backup["result"], backup["path"]
    base = result["basename"]
    names = [f["name"] for f in result["files"]]
    assert f"{base}.bolt.gz" in names and f"{base}.sqlite.gz" in names and f"{base}.manifest" in names
    assert names[-1] == f"{base}.isobar.json"
    assert sorted(os.listdir(path)) == sorted(names)
    assert _mode(path) == 0o700 and all(_mode(path / n) == 0o600 for n in names)
    assert result["bytes"] == sum(os.path.getsize(path / n) for n in names) and result["seconds"] > 0

    manifest = json.loads((path / f"{base}.manifest").read_text())
    assert manifest["manifestVersion"] == 2 and manifest["kv"] == {
        "fileName": f"{base}.bolt.gz", "size": os.path.getsize(path / f"{base}.bolt.gz"), "compression": 1}
    ours = next(b for b in manifest["buckets"] if b["bucketName"] == source["bucket"])
    shards = [s for rp in ours["retentionPolicies"] for g in rp["shardGroups"] for s in g["shards"]]
    assert len(shards) >= 3, "20 days of points span several 7-day shard groups"
    assert all(s["fileName"] == f"{base}.{s['id']}.tar.gz" and s["compression"] == 1 for s in shards)
    assert result["shards"] >= len(shards)

    sidecar = json.loads((path / f"{base}.isobar.json").read_text())
    assert sidecar["counts"] == {source["bucket"]: STATIONS * HOURS * FIELDS} == result["counts"]
    assert source["server"].token not in (path / f"{base}.isobar.json").read_text()
    assert set(sidecar["files"]) == set(names) - {f"{base}.isobar.json"}


def test_backup_refuses_bad_input_and_a_non_operator_token(source, tmp_path):
    server = source["server"]
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    result = run_module("influxdb_backup", server.module_args(path=str(used)))
    assert result["failed"] and "not an empty directory" in result["msg"] and os.listdir(used) == ["x"]

    denied = run_module("influxdb_backup", server.module_args(path=str(tmp_path / "denied"), token=source["reader"]))
    assert denied["failed"] and "operator" in denied["msg"], denied
    assert not (tmp_path / "denied").exists(), "a failed backup leaves no directory behind"


def test_restore_check_mode_predicts_and_changes_nothing(backup, fresh, source):
    args = fresh.module_args(token=source["server"].token, path=str(backup["path"]))
    predicted = run_module("influxdb_restore", args, check=True, diff=True)
    assert predicted["changed"] and predicted["target_state"] == "fresh" and not predicted.get("failed"), predicted
    assert predicted["diff"]["before"]["state"] == "fresh"
    assert f"{fresh.org}/{source['bucket']}" in predicted["diff"]["after"]["buckets"]
    assert _setup_allowed(fresh), "check mode must not set the instance up"


def test_restore_onto_a_fresh_instance_brings_the_points_back(backup, fresh, source):
    server = source["server"]
    args = fresh.module_args(token=server.token, path=str(backup["path"]),
                             check_tokens={"reader": source["reader"], "late": backup["late"]})
    restored = run_module("influxdb_restore", args)
    assert restored["changed"] and not restored.get("failed"), restored
    assert restored["target_state"] == "fresh" and restored["onboarded"] is True
    assert restored["shards"] == backup["result"]["shards"] and restored["bytes"] > 0
    assert restored["counts_after"] == restored["counts_before"] == {source["bucket"]: STATIONS * HOURS * FIELDS}
    # tokens are the backup's: the operator token and the reader work, a token created after the backup does not
    assert restored["tokens_accepted"] == {"reader": True, "late": False}
    assert not _setup_allowed(fresh)

    assert _values(fresh, source["bucket"], token=server.token) == source["values"]
    assert _values(fresh, source["bucket"], token=source["reader"]) == source["values"]
    status, users = fresh.api("GET", "/api/v2/users", token=server.token)
    names = {u["name"] for u in users["users"]}
    assert status == 200 and server.username in names and "isobar-restore" not in names, "the throw-away setup user is gone"


def test_restoring_the_same_backup_again_changes_nothing(backup, fresh, source):
    """A re-run (playbooks/restore.yml twice, or --check after the restore) on the restored instance: nothing to do,
    with or without force, in check mode and for real."""
    server = source["server"]
    for check in (True, False):
        for force in (False, True):
            again = run_module("influxdb_restore", fresh.module_args(token=server.token, path=str(backup["path"]),
                                                                     force=force, check_tokens={"reader": source["reader"]}),
                               check=check)
            assert not again.get("failed") and again["changed"] is False, (check, force, again)
            assert again["target_state"] == "restored" and again["counts_after"] == again["counts_before"], again
            assert check or again["tokens_accepted"] == {"reader": True}
    assert _values(fresh, source["bucket"], token=server.token) == source["values"]


def _restore_tasks(tmp_path, fresh, source, backup, *extra):
    """The role's restore_backup.yml (the restore step of playbooks/restore.yml: staging copy, check, restore)."""
    playbook = tmp_path / "restore.yml"
    playbook.write_text(json.dumps([{"name": "Restore step", "hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Restore", "ansible.builtin.include_role": {
            "name": "isobar.pipeline.influxdb", "tasks_from": "restore_backup.yml"}}]}]))
    settings = tmp_path / "settings.json"  # the token goes in a file, never on a command line
    settings.write_text(json.dumps({
        "influxdb_api_url": fresh.url, "influxdb_ca_file": fresh.ca_path, "influxdb_restore_token": source["server"].token,
        "influxdb_org": fresh.org, "influxdb_module_python": sys.executable, "influxdb_restore_force": False,
        "influxdb_backup_dir": str(backup["path"].parent), "influxdb_restore_name": backup["path"].name,
        "influxdb_backup_staging_dir": str(tmp_path / "staging"), "influxdb_client_tokens": {"reader": source["reader"]},
        "influxdb_binary_stat": {"stat": {"exists": True}}, "ansible_python_interpreter": sys.executable}))
    settings.chmod(0o600)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           "-e", f"@{settings}", str(playbook), *extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert source["server"].token not in output
    return output


def test_restore_step_reports_no_change_on_the_restored_instance(backup, fresh, source, tmp_path):
    """restore --check (and a re-run) on the restored instance: changed=0, the staging copy removed."""
    (tmp_path / "staging").mkdir(mode=0o700)  # left by the run that restored the instance
    for extra in (["--check"], []):
        output = _restore_tasks(tmp_path, fresh, source, backup, *extra)
        recap = next(line for line in output.splitlines() if line.startswith("localhost") and "ok=" in line)
        assert "changed=0" in recap and "failed=0" in recap, (extra, recap)
    assert os.listdir(tmp_path / "staging") == []


def test_a_target_holding_data_is_refused_without_force(backup, fresh, source):
    # one point written since the restore: the instance no longer holds just the backup
    _write(fresh, source["bucket"], ["weather,station=late temperature=99.0 1790000000"], token=source["server"].token)
    args = fresh.module_args(token=source["server"].token, path=str(backup["path"]))
    for check in (True, False):
        refused = run_module("influxdb_restore", args, check=check)
        assert refused["failed"] and "refusing" in refused["msg"] and "already holds data" in refused["msg"], refused
        assert "Nothing was changed" in refused["msg"] and refused["target_state"] == "data"
        assert f"{fresh.org}/{source['bucket']}" in refused["target_buckets_with_data"]
    assert len(_values(fresh, source["bucket"], token=source["server"].token)) == len(source["values"]) + 1


def test_a_wrong_operator_token_or_a_damaged_backup_is_refused_before_any_change(backup, fresh, source, tmp_path):
    server = source["server"]
    wrong = run_module("influxdb_restore", fresh.module_args(token="x" * 32, path=str(backup["path"]), force=True))
    assert wrong["failed"] and "another operator token" in wrong["msg"] and "Nothing was changed" in wrong["msg"]

    base = backup["result"]["basename"]
    shard = next(f["name"] for f in backup["result"]["files"] if f["name"].endswith(".tar.gz"))
    truncated = tmp_path / "truncated"
    shutil.copytree(backup["path"], truncated)
    with open(truncated / shard, "r+b") as handle:
        handle.truncate(10)
    result = run_module("influxdb_restore", fresh.module_args(token=server.token, path=str(truncated), force=True))
    assert result["failed"] and "truncated" in result["msg"] and "Nothing was changed" in result["msg"], result

    flipped = tmp_path / "flipped"
    shutil.copytree(backup["path"], flipped)
    data = bytearray((flipped / f"{base}.bolt.gz").read_bytes())
    data[-9] ^= 0xFF
    (flipped / f"{base}.bolt.gz").write_bytes(bytes(data))
    result = run_module("influxdb_restore", fresh.module_args(token=server.token, path=str(flipped), force=True))
    assert result["failed"] and "sha256" in result["msg"] and "Nothing was changed" in result["msg"], result
    assert len(_values(fresh, source["bucket"], token=server.token)) == len(source["values"]) + 1


def test_force_replaces_everything_written_since_the_backup(backup, fresh, source):
    server = source["server"]
    # the point written since the restore (test_a_target_holding_data_is_refused_without_force)
    assert len(_values(fresh, source["bucket"], token=server.token)) == len(source["values"]) + 1
    forced = run_module("influxdb_restore", fresh.module_args(token=server.token, path=str(backup["path"]), force=True))
    assert forced["changed"] and not forced.get("failed") and forced["target_state"] == "data", forced
    assert forced["onboarded"] is False
    assert _values(fresh, source["bucket"], token=server.token) == source["values"]


# --- playbooks/backup.yml: a new backup each run, pruned to influxdb_backup_keep ----------------------------------

def _backup_playbook(tmp_path, server, bucket, keep, *extra):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"children": {"influxdb": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}}}}}}))
    settings = tmp_path / "settings.json"  # the token goes in a file, never on a command line
    settings.write_text(json.dumps({
        "influxdb_api_url": server.url, "influxdb_ca_file": server.ca_path, "influxdb_operator_token": server.token,
        "influxdb_org": server.org, "influxdb_bucket": bucket, "influxdb_module_python": sys.executable,
        "influxdb_backup_dir": str(tmp_path / "controller"), "influxdb_backup_staging_dir": str(tmp_path / "staging"),
        "influxdb_backup_keep": keep}))
    settings.chmod(0o600)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory),
                           "-e", f"@{settings}", str(ROOT / "playbooks" / "backup.yml"), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert server.token not in output, "the operator token appeared in the playbook output"
    return output


def _backups(tmp_path):
    root = tmp_path / "controller"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_backup_playbook_keeps_the_newest_and_prunes(source, tmp_path):
    server, bucket = source["server"], source["bucket"]
    first = _backup_playbook(tmp_path, server, bucket, 2, "-vvv")  # the most verbose output still hides the token
    assert "changed=0" not in first
    assert len(_backups(tmp_path)) == 1
    _backup_playbook(tmp_path, server, bucket, 2)
    two = _backups(tmp_path)
    assert len(two) == 2

    predicted = _backup_playbook(tmp_path, server, bucket, 2, "--check")
    assert _backups(tmp_path) == two and "Would take backup" in predicted

    (tmp_path / "controller" / "20000101T000000Z.partial").mkdir()  # leftover of an interrupted run
    third = _backup_playbook(tmp_path, server, bucket, 2)
    kept = _backups(tmp_path)
    assert len(kept) == 2 and kept[0] == two[1] and kept[1] > two[1], (two, kept)
    assert f"removed {two[0]}, 20000101T000000Z.partial" in " ".join(third.split())

    root = tmp_path / "controller"
    assert _mode(root) == 0o700
    for name in kept:
        assert _mode(root / name) == 0o700
        files = list((root / name).iterdir())
        assert len(files) >= 5 and all(_mode(f) == 0o600 for f in files)
        sidecar = json.loads((root / name / f"{name}.isobar.json").read_text())
        assert sidecar["counts"] == {bucket: STATIONS * HOURS * FIELDS} and sidecar["label"] == "localhost"
    assert os.listdir(tmp_path / "staging") == [], "the staging copy is removed"


# --- after a restore, the role re-captures client tokens the backup lacks into the generated vault -----------------

def test_role_recreates_into_the_vault_a_client_token_the_backup_lacks(backup, fresh, source, tmp_path):
    """The converge playbooks/restore.yml runs after the restore, reduced to the role's tokens.yml: the vault's
    reader token (in the backup) is kept, the late one (created after the backup) is re-created and written to the
    generated vault, where the restored instance accepts it."""
    server, bucket = source["server"], source["bucket"]
    vault_file = tmp_path / "vault_generated.yml"
    playbook = tmp_path / "tokens.yml"
    playbook.write_text(json.dumps([{"name": "Client tokens after a restore", "hosts": "localhost",
                                     "gather_facts": False, "tasks": [{
                                         "name": "Tokens", "ansible.builtin.include_role": {
                                             "name": "isobar.pipeline.influxdb", "tasks_from": "tokens.yml"}}]}]))
    settings = tmp_path / "settings.json"
    read = [{"action": "read", "type": "buckets", "name": bucket}]
    settings.write_text(json.dumps({
        "influxdb_api_url": fresh.url, "influxdb_ca_file": fresh.ca_path, "influxdb_operator_token": server.token,
        "influxdb_org": fresh.org, "influxdb_module_python": sys.executable, "isobar_lab_environment": True,
        "influxdb_generated_vault_file": str(vault_file),
        "influxdb_client_tokens": {"reader": source["reader"], "late": backup["late"]},
        "influxdb_tokens": [{"name": "reader", "description": f"backup test reader {bucket}", "permissions": read},
                            {"name": "late", "description": f"backup test late {bucket}", "permissions": read}]}))
    settings.chmod(0o600)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    # ansible.cfg loads no vault identity: the test writes with the lab's published one, as the lab would.
    vault_id = f"lab@{ROOT / 'inventories' / 'lab' / 'vault-password.txt'}"
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           "--vault-id", vault_id, "-e", f"@{settings}", "-e", json.dumps({"ansible_python_interpreter": sys.executable}),
                           str(playbook)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Created and stored: late; kept: reader." in " ".join(output.split())
    assert server.token not in output and backup["late"] not in output and source["reader"] not in output

    from ansible.parsing.vault import VaultLib, VaultSecret  # the lab identity given above
    secret = VaultSecret((ROOT / "inventories" / "lab" / "vault-password.txt").read_bytes().strip())
    stored = yaml.safe_load(VaultLib([("lab", secret)]).decrypt(vault_file.read_bytes()))
    assert set(stored["vault_influxdb_tokens"]) == {"late"} and stored["vault_influxdb_tokens"]["late"] != backup["late"]
    assert _mode(vault_file) == 0o600
    status, _ = fresh.api("GET", "/api/v2/buckets?limit=1", token=stored["vault_influxdb_tokens"]["late"])
    assert status == 200
    assert _values(fresh, bucket, token=stored["vault_influxdb_tokens"]["late"]) == source["values"]


def test_a_backup_taken_while_a_writer_keeps_writing_restores_to_its_counts_and_a_rerun_changes_nothing(
        source, tmp_path):
    """The lab's automatic backups run while the inject service writes a point per station every second: the values
    counted before the snapshot were fewer than the snapshot held, so the restored target never matched the backup's
    counts and a re-run of the restore did not recognise it. Counted to a bound a little in the past, both sides agree."""
    import threading
    import time

    server = source["server"]
    bucket = f"live-{uuid.uuid4().hex[:6]}"
    assert run_module("influxdb_bucket", server.module_args(name=bucket, retention="0"))["changed"]
    _write(server, bucket, _lines(48))  # two past days, then live points on top
    stop = threading.Event()

    def writer():  # a point of the current second every 20 ms (a new series each: none overwrites another)
        n = 0
        while not stop.is_set():
            _write(server, bucket, [f"weather,station=live-{n} temperature={n % 30}.5 {int(time.time())}"])
            n += 1
            time.sleep(0.02)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(3)  # live points before the backup's bound too
        path = tmp_path / "live"
        taken = run_module("influxdb_backup", server.module_args(path=str(path), count_buckets=[bucket]))
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(10)
    try:
        assert taken["changed"] and not taken.get("failed"), taken
        with start_influxd(tmp_path / "influxdb-live-target", onboard=False) as target:
            args = target.module_args(token=server.token, path=str(path))
            restored = run_module("influxdb_restore", args)
            assert restored["changed"] and not restored.get("failed"), restored
            assert restored["counts_after"] == restored["counts_before"] == taken["counts"], restored
            assert restored["counts_before"][bucket] > STATIONS * 48 * FIELDS, "no live point before the bound"
            again = run_module("influxdb_restore", args)
            assert not again.get("failed") and again["changed"] is False, again
            assert again["target_state"] == "restored", again
    finally:
        run_module("influxdb_bucket", server.module_args(name=bucket, state="absent"))
