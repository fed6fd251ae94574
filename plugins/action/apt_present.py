# Copyright: Isobar contributors
# Apache-2.0
"""Action plugin: ansible.builtin.apt with state=present, asked only when a package is missing.

Documented in plugins/modules/apt_present.py (what ansible-doc reads). On a host where every package is installed,
one dpkg-query command answers (no module shipped or started, no apt cache opened): the apt module costs about a
second per host and task even when it changes nothing, which a converged host pays on every run. Otherwise the apt
module runs with the task's options and its result is the task's. The decision is plugin_utils/apt_present.py
(unit-tested)."""

from __future__ import annotations

import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.isobar.pipeline.plugins.plugin_utils.apt_present import (
    PackageListError, checkable, dpkg_query_command, missing, package_names)

# Passed through to ansible.builtin.apt unchanged.
APT_OPTIONS = ("install_recommends", "update_cache", "cache_valid_time", "default_release", "dpkg_options", "lock_timeout")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("name",) + APT_OPTIONS)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        try:
            names = package_names(args.get("name"))
        except PackageListError as exc:
            raise AnsibleActionFail(f"apt_present: {exc}") from None
        result["packages"] = names
        # Without an answer from dpkg-query (a name it cannot check exactly, or a failed query) apt decides for all.
        absent = names
        if checkable(names):
            query = self._low_level_execute_command(" ".join(shlex.quote(word) for word in dpkg_query_command(names)))
            # rc 1: some name unknown to dpkg (its absence is in the output); anything else is not an answer.
            if query.get("rc") in (0, 1):
                absent = missing(names, query.get("stdout", ""))
        result["missing"] = absent
        if not absent:
            result.update(changed=False, apt=False, msg=f"already installed: {', '.join(names)}")
            return result
        apt_args = {"name": names, "state": "present"}
        apt_args.update({key: args[key] for key in APT_OPTIONS if args.get(key) is not None})
        apt = self._execute_module(module_name="ansible.legacy.apt", module_args=apt_args, task_vars=task_vars)
        result.update(apt)
        result["apt"] = True
        return result
