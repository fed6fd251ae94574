# Copyright: Isobar contributors
# Apache-2.0
"""Whether a running service still runs older files than those on disk: a restart a failed run left pending.

A role's handlers restart a service at the end of the play; a run that fails in between leaves new files on disk and
the old process running, and the next run finds the files unchanged and restarts nothing. What survives the failure
is the time the service's main process started (or, for a service that reloads in place, a stamp its reload handler
touches) and the files' change times. Change time (ctime), not modification time: ``copy`` with ``remote_src``
copies the source's mtime onto a new file, so a file copied in after the start can carry an older mtime; ctime is
set by the kernel on every write, rename, chmod or chown and cannot be set back.
"""

from __future__ import annotations

import os


def newest_change(paths):
    """(ctime, path) of the most recently changed existing path; (0.0, "") when none exists.

    Links are not followed (a moved ``current`` link counts by the link itself). A directory counts by its own
    change time only (a file created in it or removed from it), never by what lies below it."""
    best = (0.0, "")
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        best = max(best, (st.st_ctime, path))
    return best


def started_at(monotonic_usec, now_real, now_mono):
    """Wall-clock time of a systemd monotonic timestamp (ExecMainStartTimestampMonotonic, microseconds); 0 if unset."""
    return now_real - (now_mono - monotonic_usec / 1e6) if monotonic_usec else 0.0


def parse_show(text):
    """(active, ExecMainStartTimestampMonotonic) from ``systemctl show --property=ActiveState,...`` output."""
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    try:
        mono = int(props.get("ExecMainStartTimestampMonotonic") or 0)
    except ValueError:
        mono = 0
    return props.get("ActiveState") == "active", mono


def loaded_at(active, main_started, stamp_changed=0.0):
    """When the running service last loaded its files: its main process's start, or a later reload stamp."""
    return max(main_started, stamp_changed) if active else 0.0


def decide(active, loaded, newest, newest_path):
    """(pending, message)."""
    if not active:
        return False, "not active: it starts with the files on disk"
    if not loaded:
        return False, "active but no start time known: nothing to compare"
    if newest > loaded:
        return True, f"{newest_path} changed {newest - loaded:.1f} s after the running process loaded its files"
    return False, "the running process loaded the newest files"


def validate(service, paths):
    """Error message for bad options, None when they are fine."""
    if not service or "/" in service or service.endswith(".service") or any(c.isspace() for c in service):
        return f"service must be a systemd unit name without .service (got {service!r})"
    if not paths:
        return "paths must list at least one file"
    relative = [p for p in paths if not os.path.isabs(p)]
    if relative:
        return f"paths must be absolute (got {relative})"
    return None
