# Copyright: Isobar contributors
# Apache-2.0
"""The options copy_file and template_file share: passed to ansible.builtin.copy, and compared by their one-command
check where they are attributes of the file."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  dest:
    description: As M(ansible.builtin.copy)'s (the file on the host).
    type: path
    required: true
  owner:
    description: As M(ansible.builtin.copy)'s; compared by the check.
    type: str
  group:
    description: As M(ansible.builtin.copy)'s; compared by the check.
    type: str
  mode:
    description:
      - As M(ansible.builtin.copy)'s. An octal mode is compared by the check; a symbolic one, or C(preserve), leaves
        the task to the builtin.
    type: raw
  validate:
    description: As M(ansible.builtin.copy)'s (runs only when the file is written).
    type: str
  backup:
    description: As M(ansible.builtin.copy)'s.
    type: bool
    default: false
  force:
    description: As M(ansible.builtin.copy)'s.
    type: bool
    default: true
  follow:
    description: As M(ansible.builtin.copy)'s (a symbolic link as O(dest) leaves the task to the builtin).
    type: bool
    default: false
"""
