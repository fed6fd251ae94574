# Copyright: Isobar contributors
# Apache-2.0
"""Which InfluxDB backups to keep: the retention of playbooks/backup.yml (filter backup_retention) and of
isobar-backup.service (influxdb_backup_auto).

Standard library only, on purpose: the filter plugin imports it, and Ansible loads every filter file of the
collection in each worker process the first time a task uses any of the collection's filters, so an import here is
paid once per host and task all over a converge (the InfluxDB client and numpy cost 0.3 s each time).
"""

from __future__ import annotations

import re

BACKUP_NAME_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
PARTIAL_SUFFIX = ".partial"


def plan_retention(names, keep, incoming=0):
    """Which backups of a directory to keep and which to remove, by their names (the retention of
    playbooks/backup.yml and of isobar-backup.service).

    Backups are named by their UTC time (20260102T030405Z), so the name order is the time order: the newest
    ``keep`` are kept, older ones removed, and so is every <name>.partial (left by an interrupted run). Other names
    are not ours and are left alone. ``incoming`` backups not in ``names`` yet count as the newest (a check-mode run
    predicts the retention after the backup it would take). Returns (kept newest first, removed oldest first).
    """
    keep, incoming = int(keep), int(incoming)
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    room = max(keep - incoming, 0)
    complete = sorted((n for n in names if BACKUP_NAME_RE.match(n)), reverse=True)
    partial = sorted(n for n in names if n.endswith(PARTIAL_SUFFIX) and BACKUP_NAME_RE.match(n[:-len(PARTIAL_SUFFIX)]))
    return complete[:room], sorted(complete[room:]) + partial
