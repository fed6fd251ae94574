# Copyright: Isobar contributors
# Apache-2.0
"""The automatic InfluxDB backup (isobar-backup.service, started by isobar-backup.timer on the InfluxDB host).

    python -m ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_auto --config FILE

One run takes a full backup with the code of the influxdb_backup module (influxdb_backup_take: the format of
`influx backup` plus our sidecar) into <backup_dir>/<UTC time>.partial, renames it to <backup_dir>/<UTC time> when
complete, and applies the retention of playbooks/backup.yml (plan_retention: the newest ``keep`` kept, older ones and
leftover .partial directories removed). A restore takes such a directory as it is (playbooks/restore.yml after a copy
to the controller, or influxdb_restore on the host).

Settings and the operator token come from a JSON file (mode 0600/0640, never the command line). The outcome goes to
a status file (JSON, mode 0640, no secret) that monitoring reads: last_run, last_run_ok, last_success, backup, path,
size_bytes, counts, kept/removed, last_error, last_error_time, consecutive_failures. Exit status 0 on success, 1 when
the backup failed (the unit fails: systemctl --failed shows it), 2 when the settings are unusable.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import sys
import tempfile
import time

from ansible_collections.isobar.pipeline.plugins.module_utils.backup_retention import PARTIAL_SUFFIX, plan_retention
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_common import server_version
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_backup_take import BackupFailed, take_backup, utc_name
from ansible_collections.isobar.pipeline.plugins.module_utils.influxdb_client_common import InfluxDBApi, InfluxDBError

LOG = logging.getLogger("isobar-backup")
EXIT_FAILED = 1
EXIT_CONFIG = 2  # bad settings: a retry cannot help
STATUS_MODE = 0o640  # monitoring reads it through the group of its directory (setgid); it holds no secret
KEEP_RANGE = (1, 1000)

# name -> (type, default; None = required). Checked before anything runs.
SETTINGS = {
    "url": (str, None), "token": (str, None), "org": (str, None), "ca_path": (str, ""), "validate_certs": (bool, True),
    "timeout": (int, 60), "backup_dir": (str, None), "keep": (int, None), "count_buckets": (list, []),
    "label": (str, ""), "status_path": (str, None),
}


class ConfigError(Exception):
    """The settings file is unusable; the message lists every problem."""


class ServiceFailure(Exception):
    """What a module would have reported with fail_json."""


class ServiceModule:
    """The part of AnsibleModule that InfluxDBApi and the backup code use; fail_json raises."""

    check_mode = False
    _diff = False

    def __init__(self, params):
        self.params = params

    def fail_json(self, msg, **_ignored):
        raise ServiceFailure(msg)

    def warn(self, msg):
        LOG.warning("%s", msg)


def load_settings(path):
    """The settings file as a dict of typed values with defaults; raises ConfigError listing every problem."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    problems = []
    if st.st_mode & 0o027:
        problems.append(f"{path} is mode {st.st_mode & 0o777:04o}: it holds the operator token, make it 0600 or 0640")
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        problems.append(f"unknown settings {unknown}")
    settings = {}
    for name, (kind, default) in SETTINGS.items():
        value = raw.get(name, default)
        if value is None:
            problems.append(f"{name} is required")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{name} must be {kind.__name__}, got {type(value).__name__}")
        else:
            settings[name] = value
    problems += check_settings(settings)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return settings


def check_settings(settings):
    """Checks across values (only of the values present). Returns a list of problems."""
    problems = []
    low, high = KEEP_RANGE
    if "keep" in settings and not low <= settings["keep"] <= high:
        problems.append(f"keep must be between {low} and {high}, got {settings['keep']}")
    for name in ("backup_dir", "status_path"):
        if name in settings and not os.path.isabs(settings[name]):
            problems.append(f"{name} must be an absolute path, got {settings[name]!r}")
    if "url" in settings and not settings["url"].startswith(("https://", "http://")):
        problems.append(f"url {settings['url']!r} must start with https:// (or http://)")
    if "token" in settings and not settings["token"]:
        problems.append("token is empty: a backup needs the operator token")
    if not all(isinstance(b, str) and b for b in settings.get("count_buckets", [])):
        problems.append("count_buckets must be a list of bucket names")
    if settings.get("count_buckets") and not settings.get("org"):
        problems.append("count_buckets needs org")
    if ("backup_dir" in settings and "status_path" in settings
            and os.path.dirname(os.path.abspath(settings["status_path"])) == os.path.abspath(settings["backup_dir"])):
        problems.append("status_path must not be inside backup_dir (the backups are private, the status is not)")
    return problems


def now_text():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_status(path):
    """The previous status (to carry last_success over a failed run); {} when there is none or it is unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def merge_status(previous, run):
    """The new status from the previous one and this run's outcome.

    run: {"time", "seconds", "ok"} plus, on success, {"backup", "path", "size_bytes", "files", "shards", "counts",
    "kept", "removed"}, or, on failure, {"error"}. A failure keeps what the last success recorded (its time, backup,
    size), so monitoring sees both how old the newest backup is and why the last run failed.
    """
    status = dict(previous)
    status.update(service="isobar-backup", last_run=run["time"], last_run_seconds=run["seconds"], last_run_ok=run["ok"])
    status.setdefault("last_success", None)
    status.setdefault("last_error", None)
    status.setdefault("last_error_time", None)
    if run["ok"]:
        status.update(last_success=run["time"], consecutive_failures=0,
                      **{k: run[k] for k in ("backup", "path", "size_bytes", "files", "shards", "counts", "kept", "removed")})
    else:
        status.update(last_error=run["error"], last_error_time=run["time"],
                      consecutive_failures=int(previous.get("consecutive_failures") or 0) + 1)
    return status


def write_status(path, status):
    """Replace the status file atomically (readers never see half of it), mode 0640."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".status-", dir=directory)
    try:
        os.fchmod(fd, STATUS_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(status, handle, sort_keys=True, indent=1)
            handle.write("\n")
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def free_name(backup_dir):
    """A name for a backup taken now that no backup or partial directory of backup_dir has (two runs in one
    second: the second waits for the next one)."""
    for dummy in range(5):
        name = utc_name()
        if not any(os.path.exists(os.path.join(backup_dir, n)) for n in (name, name + PARTIAL_SUFFIX)):
            return name
        time.sleep(1.0)
    raise BackupFailed(f"{backup_dir} holds backups named after the next seconds already: is the clock wrong? "
                       f"Nothing was changed.")


def apply_retention(backup_dir, keep):
    """Remove what plan_retention says; returns (kept, removed)."""
    kept, removed = plan_retention(os.listdir(backup_dir), keep)
    for name in removed:
        shutil.rmtree(os.path.join(backup_dir, name))
    return kept, removed


def backup_once(settings):
    """One backup and its retention. Returns the run's outcome for merge_status (never raises for a failed backup)."""
    started = time.monotonic()
    run = {"time": now_text(), "ok": False}
    api = None
    try:
        module = ServiceModule(dict(url=settings["url"], token=settings["token"], org=settings["org"],
                                    ca_path=settings["ca_path"] or None, validate_certs=settings["validate_certs"],
                                    timeout=settings["timeout"]))
        os.makedirs(settings["backup_dir"], mode=0o700, exist_ok=True)
        api = InfluxDBApi(module)
        version = server_version(api)
        try:
            api.request("GET", "/api/v2/orgs", {"limit": 1})
        except InfluxDBError as exc:
            raise BackupFailed(f"cannot use the token: {exc.message}. Nothing was changed.") from None
        count_ids = {}
        if settings["count_buckets"]:
            org_id = api.org(settings["org"])["id"]
            for name in settings["count_buckets"]:
                count_ids[name] = (org_id, api.bucket(name, org_id)["id"])
        name = free_name(settings["backup_dir"])
        partial = os.path.join(settings["backup_dir"], name + PARTIAL_SUFFIX)
        final = os.path.join(settings["backup_dir"], name)
        taken = take_backup(module, api, partial, name, count_ids, settings["token"], org=settings["org"],
                            label=settings["label"], influxdb_version=version)
        os.rename(partial, final)
        kept, removed = apply_retention(settings["backup_dir"], settings["keep"])
        run.update(ok=True, backup=name, path=final, size_bytes=taken["bytes"], files=len(taken["files"]),
                   shards=taken["shards"], counts=taken["counts"], kept=kept, removed=removed)
        LOG.info("backup %s: %d bytes, %d shards, values %s; kept %s, removed %s", name, taken["bytes"],
                 taken["shards"], json.dumps(taken["counts"], sort_keys=True), ", ".join(kept),
                 ", ".join(removed) or "none")
    except (BackupFailed, ServiceFailure, InfluxDBError, OSError) as exc:
        run["error"] = exc.message if isinstance(exc, InfluxDBError) else str(exc)
        LOG.error("%s", run["error"])
    finally:
        if api is not None:
            api.close()
        run["seconds"] = round(time.monotonic() - started, 3)
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--config", required=True, help="JSON settings file (mode 0600/0640: it holds the operator token)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        LOG.error("%s. Nothing was changed.", exc)
        return EXIT_CONFIG
    run = backup_once(settings)
    try:
        write_status(settings["status_path"], merge_status(read_status(settings["status_path"]), run))
    except OSError as exc:
        LOG.error("cannot write the status file %s: %s", settings["status_path"], exc)
        return EXIT_FAILED
    return 0 if run["ok"] else EXIT_FAILED


if __name__ == "__main__":  # the service's entry point (systemd reads its exit status)
    raise SystemExit(main())
