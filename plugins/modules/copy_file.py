# Copyright: Isobar contributors
# Apache-2.0
# Documentation of the copy_file action plugin (plugins/action/copy_file.py), which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: copy_file
author: Isobar contributors (@isobar)
short_description: ansible.builtin.copy of one file or content, one command where the file is already right
description:
  - The outcome of M(ansible.builtin.copy) for one file (O(src)) or a content (O(content)), at the cost of one
    command on a host where the file already has that content, owner, group and mode.
  - The content's sha256 is computed on the controller; one command on the host (C(stat) and C(sha256sum), through
    become, no module) gives the file's, compared with O(owner), O(group) and O(mode) when given. When everything
    matches the task ends, unchanged.
  - Otherwise M(ansible.builtin.copy) runs with the task's options and its result is the task's; so does it for
    what the check cannot compare exactly (a directory, a symbolic O(mode), O(remote_src) or any option not listed
    here).
  - M(ansible.builtin.copy) costs four remote round trips on a converged host (a temporary directory, a stat with
    checksum, the file module, removing the directory); Isobar's converged re-run runs about 80 such copies. No
    module on the check's side also means no forked module process through Mitogen (which forks every module that
    imports a collection's module_utils).
options:
  src:
    description: As M(ansible.builtin.copy)'s (a file on the controller, searched in the role's C(files)).
    type: path
  content:
    description: As M(ansible.builtin.copy)'s.
    type: str
  decrypt:
    description: As M(ansible.builtin.copy)'s (a vault-encrypted O(src) is compared decrypted).
    type: bool
    default: true
  directory_mode:
    description: As M(ansible.builtin.copy)'s.
    type: raw
  remote_src:
    description: As M(ansible.builtin.copy)'s; the builtin always runs.
    type: bool
    default: false
extends_documentation_fragment:
  - isobar.pipeline.attributes
  - isobar.pipeline.file_check
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: M(ansible.builtin.copy)'s diff, when it runs (there is nothing to show when the file is right).
seealso:
  - module: ansible.builtin.copy
  - module: isobar.pipeline.template_file
"""

EXAMPLES = r"""
- name: Write the settings (operator token)
  isobar.pipeline.copy_file:
    content: "{{ settings | to_nice_json }}\n"
    dest: /etc/isobar/backup.json
    owner: root
    group: isobar-backup
    mode: "0640"
  no_log: true
"""

RETURN = r"""
changed:
  description: Whether the file was (in check mode, would be) written or its attributes changed.
  returned: always
  type: bool
  sample: false
sha256:
  description: The content's sha256, when the one command found the file right (otherwise the builtin's return values).
  returned: when the file was already right
  type: str
  sample: 3f786850e387550fdab836ed7e6dc881de23001b6c08a8e4ac2f5fdaf1b1f2b3
"""
