# Copyright: Isobar contributors
# Apache-2.0
"""Tell whether a running service still runs older files than those on disk (a restart a failed run left pending)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: restart_pending
short_description: Tell whether a running systemd service started before its files last changed
version_added: "1.0.0"
author: Isobar contributors
requirements:
  - systemd (C(systemctl)) on the managed host
description:
  - A role's handlers restart a service at the end of the play; a run that fails in between leaves new files on disk
    and the old process running, and the next run sees unchanged files and restarts nothing. This module finds such a
    pending restart from what is durable, the time the service's main process started (or last reloaded its files,
    O(loaded_stamp)) against the newest modification time of its files.
  - Reports C(changed) when a restart is pending, so a task can notify the role's restart handler with it.
  - Read-only; a service that is not active is never pending (it starts with the files on disk).
options:
  service:
    description: systemd unit name (without C(.service)).
    type: str
    required: true
  paths:
    description:
      - Files and directories the service reads at start. A directory counts with everything below it (and its own
        modification time, so a removed file counts too). Missing paths are ignored.
    type: list
    elements: path
    required: true
  loaded_stamp:
    description:
      - File whose modification time also counts as "files loaded" (a handler touches it after a reload that does not
        restart the main process, like nginx's). Missing is ignored.
    type: path
extends_documentation_fragment:
  - isobar.pipeline.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Pending | Restart telegraf if a failed run left newer files than the running agent
  isobar.pipeline.restart_pending:
    service: telegraf
    paths: [/etc/telegraf, /etc/systemd/system/telegraf.service]
  register: telegraf_pending
  changed_when: telegraf_pending.pending
  notify: Restart telegraf
"""

RETURN = r"""
pending:
  description: The service is active and started (or last loaded its files) before the newest of its files changed.
  returned: always
  type: bool
active:
  description: The unit is active.
  returned: always
  type: bool
loaded_at:
  description: When the running service loaded its files (epoch seconds; 0 when not active).
  returned: always
  type: float
newest:
  description: Modification time of the newest file (epoch seconds; 0 when none exists).
  returned: always
  type: float
newest_path:
  description: The newest file (or directory).
  returned: always
  type: str
msg:
  description: Why a restart is or is not pending.
  returned: always
  type: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule


def newest_mtime(paths):
    """(mtime, path) of the newest existing path; directories count with their whole tree. Links are not followed."""
    best = (0.0, "")
    for top in paths:
        try:
            st = os.lstat(top)
        except FileNotFoundError:
            continue
        best = max(best, (st.st_mtime, top))
        if os.path.isdir(top) and not os.path.islink(top):
            for root, dirs, files in os.walk(top):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    try:
                        best = max(best, (os.lstat(path).st_mtime, path))
                    except FileNotFoundError:
                        continue
    return best


def started_at(monotonic_usec, now_real, now_mono):
    """Wall-clock time of a systemd monotonic timestamp (ExecMainStartTimestampMonotonic, microseconds)."""
    return now_real - (now_mono - monotonic_usec / 1e6) if monotonic_usec else 0.0


def decide(active, loaded_at, newest, newest_path):
    """(pending, message)."""
    if not active:
        return False, "not active: it starts with the files on disk"
    if newest > loaded_at:
        return True, f"{newest_path} changed {newest - loaded_at:.1f} s after the running process loaded its files"
    return False, "the running process loaded the newest files"


def unit_state(module, service):
    """(active, ExecMainStartTimestampMonotonic in microseconds)."""
    systemctl = module.get_bin_path("systemctl", required=True)
    rc, out, err = module.run_command([systemctl, "show", "--property=ActiveState,ExecMainStartTimestampMonotonic",
                                       f"{service}.service"])
    if rc != 0:
        module.fail_json(msg=f"systemctl show {service}: {err.strip() or out.strip()}")
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    try:
        mono = int(props.get("ExecMainStartTimestampMonotonic") or 0)
    except ValueError:
        mono = 0
    return props.get("ActiveState") == "active", mono


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type="str", required=True),
            paths=dict(type="list", elements="path", required=True),
            loaded_stamp=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    service = module.params["service"]
    if not service or "/" in service or service.endswith(".service"):
        module.fail_json(msg=f"service must be a unit name without .service (got {service!r})")
    if not module.params["paths"]:
        module.fail_json(msg="paths must list at least one file or directory")

    active, mono = unit_state(module, service)
    loaded = started_at(mono, time.time(), time.monotonic()) if active else 0.0
    stamp = module.params["loaded_stamp"]
    if active and stamp and os.path.exists(stamp):
        loaded = max(loaded, os.stat(stamp).st_mtime)
    newest, newest_path = newest_mtime(module.params["paths"])
    pending, msg = decide(active, loaded, newest, newest_path)
    module.exit_json(changed=pending, pending=pending, active=active, loaded_at=round(loaded, 3),
                     newest=round(newest, 3), newest_path=newest_path, msg=f"{service}: {msg}")


if __name__ == "__main__":
    main()
