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

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
