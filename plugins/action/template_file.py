# Copyright: Isobar contributors
# Apache-2.0
"""Action plugin: ansible.builtin.template, answered by one command on the host where the file is already right
(documented in plugins/modules/template_file.py).

The builtin renders the template on the controller and hands the result to the copy action (four remote round trips
on a converged host). This is the builtin template itself - same rendering, same options, same result - whose copy
step is isobar.pipeline.copy_file: one command (stat and sha256sum) ends the task when the rendered content, owner,
group and mode are already on the host; otherwise the builtin copy writes it."""

from __future__ import annotations

from ansible.plugins.action.template import ActionModule as BuiltinTemplate

COPY = "ansible.legacy.copy"
CHECKED_COPY = "isobar.pipeline.copy_file"


class _ActionLoader:
    """The action loader the builtin template sees: the copy it asks for is copy_file."""

    def __init__(self, real):
        self._real = real

    def get(self, name, *args, **kwargs):
        return self._real.get(CHECKED_COPY if name == COPY else name, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


class _SharedLoaders:
    """The builtin template's shared loader object, with _ActionLoader as its action loader."""

    def __init__(self, real):
        self._real = real
        self.action_loader = _ActionLoader(real.action_loader)

    def __getattr__(self, name):
        return getattr(self._real, name)


class ActionModule(BuiltinTemplate):
    # The builtin makes its remote temporary directory up front; copy_file makes it only when the file is written.
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        real = self._shared_loader_obj
        self._shared_loader_obj = _SharedLoaders(real)
        try:
            return super().run(tmp, task_vars)
        finally:
            self._shared_loader_obj = real
