# Copyright: Isobar contributors
# Apache-2.0
"""Action plugin: ansible.builtin.copy, answered by one command on the host where the file is already right
(documented in plugins/modules/copy_file.py).

The builtin costs four remote round trips on a converged host (temporary directory, stat with checksum, file module,
removing the directory). Here the content's sha256 is computed on the controller and one command on the host (stat
and sha256sum, through become) gives the file's; with owner, group and mode all matching the task ends there,
unchanged. Otherwise, and for every case the check cannot compare exactly (plugin_utils/file_check.py), the builtin
runs with the task's options and its result is the task's: writing, validate, backup, diff and check mode are the
builtin's own."""

from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action.copy import ActionModule as BuiltinCopy
from ansible_collections.isobar.pipeline.plugins.module_utils.file_set import sha256_of
from ansible_collections.isobar.pipeline.plugins.plugin_utils.file_check import (
    compare, content_bytes, parse_state, sha256_hex, state_command, why_not_checkable)


class ActionModule(BuiltinCopy):
    # The builtin makes its remote temporary directory up front; here it is made only when the builtin runs.
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        answer = self._already_right(task_vars)
        if answer is not None:
            return answer
        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        return super().run(tmp, task_vars)

    def _already_right(self, task_vars):
        """The task's result when the host's file is right; None to let the builtin run."""
        args = dict(self._task.args)
        if why_not_checkable(args):
            return None
        digest = self._desired_sha256(args)
        if digest is None:
            return None
        answer = self._low_level_execute_command(state_command(args["dest"]), sudoable=True)
        right, _why = compare(parse_state(answer.get("rc"), answer.get("stdout", "")), args, digest)
        if not right:
            return None
        return {"changed": False, "dest": str(args["dest"]), "sha256": digest,
                "msg": "already right (content, owner, group and mode checked in one call)"}

    def _desired_sha256(self, args):
        if "content" in args:
            return sha256_hex(content_bytes(args["content"]))
        try:
            source = self._find_needle("files", str(args["src"]))
        except AnsibleError:
            return None  # the builtin says why
        if not os.path.isfile(source):
            return None
        real = self._loader.get_real_file(source, decrypt=boolean(args.get("decrypt", True), strict=False))
        try:
            return sha256_of(real)
        finally:
            self._loader.cleanup_tmp_file(real)
