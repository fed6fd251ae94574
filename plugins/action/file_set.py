# Copyright: Isobar contributors
# Apache-2.0
"""Action plugin: keep a set of the controller's files on a host (documented in plugins/modules/file_set.py).

One module call compares the host's files with the controller's manifest (sha256 of each) and puts owners and modes
right; only the files whose content differs are packed into one archive, sent, and unpacked by a second call. The
manifest and the archive are plugin_utils/file_set.py's, the host side module_utils/file_set.py's (unit-tested)."""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.isobar.pipeline.plugins.module_utils.file_set import FileSetError
from ansible_collections.isobar.pipeline.plugins.plugin_utils.file_set import diff_lines, manifest, pack, source_files

MODULE = "isobar.pipeline.file_set"
HOST_OPTIONS = ("dest", "owner", "group", "mode", "directory_mode")


class ActionModule(ActionBase):
    # No remote temporary directory up front: a host that has the files answers in one call; the directory is made
    # only when an archive is sent.
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("src", "files") + HOST_OPTIONS)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if not args.get("dest"):
            raise AnsibleActionFail("file_set: dest is required (the directory on the host)")
        src = args.get("src")
        if src:
            src = self._find_needle("files", src) if not os.path.isabs(str(src)) else str(src)
        try:
            sources = source_files(src, args.get("files"))
            wanted = manifest(sources)
        except (FileSetError, OSError) as exc:
            raise AnsibleActionFail(f"file_set: {exc}") from None
        host_args = {key: args[key] for key in HOST_OPTIONS if args.get(key) is not None}
        host_args.update(src=src, manifest=wanted)

        answer = self._execute_module(module_name=MODULE, module_args=host_args, task_vars=task_vars)
        if answer.get("failed"):
            result.update(answer)
            return result
        before = answer.pop("before", {})
        names = answer.get("sent", [])
        if names and self._task.diff:
            old, new = diff_lines(names, before, wanted)
            answer["diff"] = {"before_header": args["dest"], "after_header": args["dest"], "before": old, "after": new}
        if not names or self._task.check_mode:
            result.update(answer)
            return result

        diff = answer.get("diff")
        local_fd, local_path = tempfile.mkstemp(prefix="isobar-file-set-", suffix=".tar")
        try:
            with os.fdopen(local_fd, "wb") as handle:
                pack(sources, names, handle)
            if self._connection._shell.tmpdir is None:
                self._make_tmp_path()  # sets the shell's tmpdir
            remote_path = self._connection._shell.join_path(self._connection._shell.tmpdir, "file_set.tar")
            self._transfer_file(local_path, remote_path)
            self._fixup_perms2((self._connection._shell.tmpdir, remote_path))
            answer = self._execute_module(module_name=MODULE, module_args=dict(host_args, archive=remote_path),
                                          task_vars=task_vars)
        finally:
            os.unlink(local_path)
            self._remove_tmp_path(self._connection._shell.tmpdir)
        answer.pop("before", None)
        if diff and not answer.get("failed"):
            answer["diff"] = diff
        result.update(answer)
        return result
