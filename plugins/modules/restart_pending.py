# Copyright: Isobar contributors
# Apache-2.0
"""Tell whether a running service still runs older files than those on disk (a restart a failed run left pending)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: restart_pending
short_description: Tell whether a running systemd service loaded its files before they last changed
version_added: "1.0.0"
author: Isobar contributors (@isobar)
requirements:
  - systemd (C(systemctl)) on the managed host
description:
  - A role's handlers restart a service at the end of the play; a run that fails in between leaves new files on disk
    and the old process running, and the next run sees unchanged files and restarts nothing. This module finds such a
    pending restart from what survives the failure, the time the service's main process started (or last reloaded
    its files, O(loaded_stamp)) against the newest change time (ctime) of its files.
  - Change time, not modification time, because C(ansible.builtin.copy) with C(remote_src) copies the source's
    modification time onto a file it creates; the change time is set by the kernel on every write or rename.
  - Reports C(changed) when a restart is pending, so a task can notify the role's restart handler with it.
  - Read-only; a service that is not active is never pending (it starts with the files on disk).
options:
  service:
    description: systemd unit name, without C(.service).
    type: str
    required: true
  paths:
    description:
      - Absolute paths of the files the service reads at start, exactly those whose tasks notify its restart handler.
        Links are not followed. A directory counts by its own change time only (a file added to it or removed from
        it). Missing paths are ignored.
    type: list
    elements: path
    required: true
  loaded_stamp:
    description:
      - File whose change time also counts as "files loaded", for a service that reloads without restarting its main
        process (nginx); its reload handler touches it after the reload. Missing is ignored.
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
- name: Pending | Restart telegraf if a failed run left newer files than the running agent loaded
  isobar.pipeline.restart_pending:
    service: telegraf
    paths: [/etc/telegraf/telegraf.conf, /etc/systemd/system/telegraf.service]
  notify: Restart telegraf

- name: Pending | Reload nginx if it serves older files than those on disk
  isobar.pipeline.restart_pending:
    service: nginx
    paths: [/etc/nginx/sites-available/kafdrop.conf]
    loaded_stamp: /etc/nginx/isobar/.loaded
  notify: Reload nginx
"""

RETURN = r"""
pending:
  description: The service is active and loaded its files before the newest of them changed. Same as C(changed).
  returned: always
  type: bool
  sample: true
active:
  description: The unit is active.
  returned: always
  type: bool
  sample: true
loaded_at:
  description: When the running service loaded its files (epoch seconds; 0 when not active).
  returned: always
  type: float
  sample: 1796305472.125
newest:
  description: Change time of the most recently changed path (epoch seconds; 0 when none exists).
  returned: always
  type: float
  sample: 1796305490.5
newest_path:
  description: The most recently changed path ("" when none exists).
  returned: always
  type: str
  sample: /etc/telegraf/telegraf.conf
msg:
  description: Why a restart is or is not pending.
  returned: always
  type: str
  sample: "telegraf: /etc/telegraf/telegraf.conf changed 18.4 s after the running process loaded its files"
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.restart_pending import (
    decide, loaded_at, newest_change, parse_show, started_at, validate)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type="str", required=True),
            paths=dict(type="list", elements="path", required=True),
            loaded_stamp=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    service, paths, stamp = module.params["service"], module.params["paths"], module.params["loaded_stamp"]
    error = validate(service, paths)
    if error:
        module.fail_json(msg=error)

    systemctl = module.get_bin_path("systemctl", required=True)
    rc, out, err = module.run_command(
        [systemctl, "show", "--property=ActiveState,ExecMainStartTimestampMonotonic", f"{service}.service"])
    if rc != 0:
        module.fail_json(msg=f"systemctl show {service}: {(err or out).strip()}")
    active, mono = parse_show(out)
    stamp_changed = newest_change([stamp])[0] if stamp else 0.0
    loaded = loaded_at(active, started_at(mono, time.time(), time.monotonic()), stamp_changed)
    newest, newest_path = newest_change(paths)
    pending, msg = decide(active, loaded, newest, newest_path)
    module.exit_json(changed=pending, pending=pending, active=active, loaded_at=round(loaded, 3),
                     newest=round(newest, 3), newest_path=newest_path, msg=f"{service}: {msg}")


if __name__ == "__main__":
    main()
