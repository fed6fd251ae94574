# Copyright: Isobar contributors
# Apache-2.0
"""The retention of InfluxDB backups for playbooks/backup.yml, the same code isobar-backup.service applies
(module_utils backup_retention.plan_retention; Jinja only renders).

    {{ names | isobar.pipeline.backup_retention(7) }}  ->  {"kept": [newest first], "removed": [oldest first]}

Backups are named by their UTC time: the newest ``keep`` are kept, older ones and leftover <name>.partial directories
removed, other names left alone. ``incoming``: backups about to be added (check mode counts the one it would take)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.isobar.pipeline.plugins.module_utils.backup_retention import plan_retention


def backup_retention(names, keep, incoming=0):
    try:
        kept, removed = plan_retention([str(n) for n in names or []], keep, incoming)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"backup_retention: {exc}") from None
    return {"kept": kept, "removed": removed}


class FilterModule:
    def filters(self):
        return {"backup_retention": backup_retention}
