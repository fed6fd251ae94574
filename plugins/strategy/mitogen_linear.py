# Copyright: Isobar contributors
# Apache-2.0
"""Ansible's linear strategy run through Mitogen (mitogen, pinned in requirements.txt): one persistent Python
interpreter per host over the same SSH connection and sudo, instead of a new module upload and interpreter per task.

The Molecule scenarios of ``make test`` use it (molecule/*/molecule.yml): the idempotent re-run of site.yml on the
test lab took 133 s against 303 s with the plain strategy, the first converge 322 s against 458 s. It is opt-in for
an environment (docs/deploy-real-vms.md): ansible.cfg keeps the plain strategy, and ansible-core 2.19 warns that
strategy plugins from outside ansible.builtin carry no compatibility guarantee. To use it:

    ANSIBLE_STRATEGY_PLUGINS=plugins/strategy ANSIBLE_STRATEGY=mitogen_linear ansible-playbook site.yml ...

This file only names Mitogen's own plugin, so that the path above holds whatever the virtualenv's Python version."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_linear
short_description: Ansible's linear strategy run through Mitogen (one Python per host)
version_added: "0.2.0"
author: Isobar contributors (@isobar)
description:
  - Names the pinned C(mitogen) package's own C(mitogen_linear) strategy, so that a C(strategy_plugins) path to this
    directory works whatever the virtualenv's Python version.
  - Tasks run in the order of the linear strategy, over the same connection and become method, in one persistent
    interpreter per host instead of a module upload and a new interpreter per task.
requirements:
  - mitogen (requirements.txt pins the version)
"""

try:
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule
except ImportError as exc:  # a venv without mitogen: the play stops at once, naming what is missing
    MITOGEN_IMPORT_ERROR = exc

    from ansible.errors import AnsibleError
    from ansible.plugins.strategy.linear import StrategyModule as _LinearStrategy

    class StrategyModule(_LinearStrategy):
        """Refuses to run: the strategy this file names is not installed."""

        def __init__(self, *args, **kwargs):
            raise AnsibleError(f"strategy mitogen_linear needs the mitogen package (requirements.txt pins it): "
                               f"{MITOGEN_IMPORT_ERROR}")

__all__ = ["StrategyModule"]
