# Copyright: Isobar contributors
# Apache-2.0
"""Action plugin: refuse a host whose Debian release the calling role does not declare in its meta/main.yml.

Documented in plugins/modules/platform_check.py (what ansible-doc reads). The decision is
plugin_utils/platform_support.py (unit-tested); this only gathers the inputs."""

from __future__ import annotations

import os
import platform

import yaml

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.isobar.pipeline.plugins.plugin_utils.platform_support import (
    PlatformError, declared_platforms, describe_release, host_release, platform_problem)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("role", "platforms"))

    def _declared(self, args):
        if args.get("platforms"):
            return declared_platforms({"galaxy_info": {"platforms": args["platforms"]}})
        role = self._task._role
        if role is None:
            raise AnsibleActionFail("platform_check: outside a role, pass 'platforms' (a list of {name, versions})")
        meta = os.path.join(role._role_path, "meta", "main.yml")
        with open(meta, encoding="utf-8") as handle:
            return declared_platforms(yaml.safe_load(handle))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        role = args.get("role") or (self._task._role.get_name(include_role_fqcn=False) if self._task._role else "calling")
        try:
            declared = self._declared(args)
        except (OSError, PlatformError) as exc:
            raise AnsibleActionFail(f"platform_check: cannot read the {role} role's supported platforms: {exc}") from exc
        facts = task_vars.get("ansible_facts") or {}
        if not facts.get("distribution") and getattr(self._connection, "transport", "") == "local":
            # The host is this controller: its os-release says it without running a module.
            release = platform.freedesktop_os_release()
            facts = {"distribution": release.get("ID", "unknown").capitalize(),
                     "distribution_release": release.get("VERSION_CODENAME", ""),
                     "distribution_version": release.get("VERSION_ID", "")}
        if not facts.get("distribution"):
            # A play without fact gathering (e.g. the rotation's): read just the release, keep it as facts.
            setup = self._execute_module(module_name="ansible.legacy.setup", task_vars=task_vars,
                                         module_args={"gather_subset": ["!all", "!min", "distribution"]})
            if setup.get("failed") or setup.get("unreachable"):
                raise AnsibleActionFail(f"platform_check: could not read the host's release: {setup.get('msg', setup)}")
            gathered = setup.get("ansible_facts") or {}
            result["ansible_facts"] = gathered
            facts = {key.removeprefix("ansible_"): value for key, value in gathered.items()}
        problem = platform_problem(role, declared, facts, host=task_vars.get("inventory_hostname", "this host"))
        result["changed"] = False
        result["supported"] = {name: list(codenames) for name, codenames in declared.items()}
        if problem:
            result["failed"] = True
            result["msg"] = problem
            return result
        distribution, codename, _version = host_release(facts)
        result["platform"] = describe_release(distribution, codename)
        result["msg"] = f"{result['platform']} is supported by the {role} role"
        return result
