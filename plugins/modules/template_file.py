# Copyright: Isobar contributors
# Apache-2.0
# Documentation of the template_file action plugin (plugins/action/template_file.py), which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: template_file
author: Isobar contributors (@isobar)
short_description: ansible.builtin.template, one command where the file is already right
description:
  - M(ansible.builtin.template) itself (same rendering, options and results), whose copy step is
    M(isobar.pipeline.copy_file) instead of M(ansible.builtin.copy).
  - The template is rendered on the controller as the builtin does; one command on the host (C(stat) and
    C(sha256sum), through become) compares the rendered content's sha256, O(owner), O(group) and O(mode) with the
    host's file. When everything matches the
    task ends, unchanged; otherwise M(ansible.builtin.copy) writes it (O(validate), O(backup), diff and check mode as
    with the builtin).
  - M(ansible.builtin.template) costs four remote round trips on a converged host; Isobar's converged re-run renders
    about 85 templates.
options:
  src:
    description: As M(ansible.builtin.template)'s (searched in the role's C(templates)).
    type: path
    required: true
  newline_sequence:
    description: As M(ansible.builtin.template)'s.
    type: str
    default: "\n"
  trim_blocks:
    description: As M(ansible.builtin.template)'s.
    type: bool
    default: true
  lstrip_blocks:
    description: As M(ansible.builtin.template)'s.
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
    details: M(ansible.builtin.template)'s diff, when the file is written (there is nothing to show when it is right).
seealso:
  - module: ansible.builtin.template
  - module: isobar.pipeline.copy_file
"""

EXAMPLES = r"""
- name: Config | Write server.properties
  isobar.pipeline.template_file:
    src: server.properties.j2
    dest: /etc/kafka/server.properties
    owner: root
    group: kafka
    mode: "0640"
"""

RETURN = r"""
changed:
  description: Whether the file was (in check mode, would be) written or its attributes changed.
  returned: always
  type: bool
  sample: false
sha256:
  description: The rendered content's sha256, when the one command found the file right (otherwise the builtin's return values).
  returned: when the file was already right
  type: str
  sample: 3f786850e387550fdab836ed7e6dc881de23001b6c08a8e4ac2f5fdaf1b1f2b3
"""
