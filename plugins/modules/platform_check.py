# Copyright: Isobar contributors
# Apache-2.0
# Documentation of the platform_check action plugin (plugins/action/platform_check.py), which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: platform_check
author: Isobar contributors (@isobar)
short_description: Refuse a host whose release the calling role does not support
description:
  - Compares the host's gathered facts (C(distribution), C(distribution_release)) with the platforms the calling role
    declares in its C(meta/main.yml) (C(galaxy_info.platforms), Debian releases by codename) and fails with a message
    naming the host's release and the supported ones.
  - Runs on the controller from the facts already gathered. It changes nothing, so a role that calls it first
    refuses an unsupported host before anything is changed.
  - In a play that gathered no facts, it reads the host's release first (C(ansible.builtin.setup), subset
    C(distribution)) and returns those facts.
options:
  platforms:
    description:
      - Platforms to accept instead of the calling role's C(meta/main.yml), in the same form
        (a list of C(name) and C(versions)). Needed outside a role.
    type: list
    elements: dict
  role:
    description: Name of the role in the message (default the calling role's).
    type: str
extends_documentation_fragment:
  - isobar.pipeline.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Preflight | Check the host runs a release this role supports (meta/main.yml)
  isobar.pipeline.platform_check:
  # One unsupported host stops the play before any host is changed.
  any_errors_fatal: true

- name: Check a host outside a role
  isobar.pipeline.platform_check:
    role: pipeline
    platforms:
      - name: Debian
        versions: [bookworm, trixie]
"""

RETURN = r"""
platform:
  description: The host's release, when supported.
  returned: success
  type: str
  sample: Debian 13 (trixie)
supported:
  description: The releases accepted, by distribution.
  returned: always
  type: dict
  sample: {Debian: [bookworm, trixie]}
"""
