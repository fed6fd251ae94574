# Copyright: Isobar contributors
# Apache-2.0
# Documentation of the apt_present action plugin (plugins/action/apt_present.py), which runs on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apt_present
author: Isobar contributors (@isobar)
short_description: Have Debian packages installed, asking apt only when one is missing
description:
  - The outcome of M(ansible.builtin.apt) with O(ignore:state=present), for a converged host at the cost of one
    command. It first asks C(dpkg-query) for the packages' status (one command, no module started, no apt cache
    opened); when every package is fully installed (status C(ii)) it reports no change and stops there.
  - Otherwise, or when a name is not a plain package name (a version, an architecture, a glob), it runs
    M(ansible.builtin.apt) with O(ignore:state=present) and the options below, and returns its result.
  - The apt module costs about a second per host and task even when it changes nothing; a converge of Isobar's five
    hosts runs eight such tasks on every run.
options:
  name:
    description:
      - The packages, as for M(ansible.builtin.apt) (a list, or a comma-separated string).
    type: list
    elements: str
    required: true
  install_recommends:
    description: Passed to M(ansible.builtin.apt) when it runs.
    type: bool
  update_cache:
    description: Passed to M(ansible.builtin.apt) when it runs (so the cache is refreshed only when something is installed).
    type: bool
  cache_valid_time:
    description: Passed to M(ansible.builtin.apt) when it runs.
    type: int
  default_release:
    description: Passed to M(ansible.builtin.apt) when it runs.
    type: str
  dpkg_options:
    description: Passed to M(ansible.builtin.apt) when it runs.
    type: str
  lock_timeout:
    description: Passed to M(ansible.builtin.apt) when it runs.
    type: int
extends_documentation_fragment:
  - isobar.pipeline.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff of M(ansible.builtin.apt), when it runs.
notes:
  - Only installs; upgrades and removals are M(ansible.builtin.apt)'s (C(playbooks/patch.yml) upgrades).
seealso:
  - module: ansible.builtin.apt
"""

EXAMPLES = r"""
- name: Packages | Install the base packages
  isobar.pipeline.apt_present:
    name: [nftables, chrony]
    update_cache: true
    cache_valid_time: 3600

- name: Install Java without the recommended packages
  isobar.pipeline.apt_present:
    name: openjdk-17-jre-headless
    install_recommends: false
"""

RETURN = r"""
packages:
  description: The packages asked for.
  returned: always
  type: list
  elements: str
  sample: [nftables, chrony]
missing:
  description: Those dpkg-query did not report fully installed (all of them when it could not tell).
  returned: always
  type: list
  elements: str
  sample: [chrony]
apt:
  description: Whether M(ansible.builtin.apt) ran (its return values are then the task's too).
  returned: always
  type: bool
  sample: false
"""
