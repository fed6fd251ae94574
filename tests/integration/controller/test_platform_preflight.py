"""Each role refuses a host on an unsupported Debian release with a clear message, before anything is changed, and one
such host stops the play for every host (a real ansible-playbook run of each role).

The hosts of these runs can be checked but not changed: their facts are set on the controller (set_fact), and they are
reached over SSH at 127.0.0.1:<closed port>. platform_check runs on the controller, so a refused host ends 'failed'
with the message; a check that let a host through would make the role's next task try to connect ('unreachable')."""
from __future__ import annotations

import pytest

from fixtures.offline_hosts import TESTED_PLAY, run_offline
from fixtures.playbook_run import results_by_host

# base runs first on every host (site.yml); kafka and kafdrop load release-specific values after the check. That every
# other role checks first too is tests/unit/test_platform_support.py's (its first task); each run here costs ~15 s.
ROLES = ["base", "kafka", "kafdrop"]

PLAY = """
- name: Apply the role
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the role
      ansible.builtin.include_role:
        name: "isobar.pipeline.{{ role_under_test }}"
"""


def run_role(tmp_path, role, hosts):
    return run_offline(tmp_path, PLAY, {"role_under_test": role,
                                        # required options of the roles, so that their argument specs pass
                                        "kafka_node_id": 1, "pki_ca_passphrase": "x" * 24,
                                        "isobar_address": "127.0.0.1"}, hosts=hosts)


@pytest.mark.parametrize("role", ROLES)
def test_debian_11_is_refused_and_stops_every_host_unchanged(tmp_path, role):
    run = run_role(tmp_path, role, {"old": {"release": "bullseye", "version": "11.11"},
                                    "new": {"release": "trixie", "version": "13.2"}})
    assert run.rc == 2, run.failed
    stats = run.stats
    assert stats["old"]["failures"] == 1 and stats["old"]["unreachable"] == 0, stats
    # the supported host was checked, then stopped with the play: it was never connected to, nothing changed
    assert stats["new"]["failures"] == 0 and stats["new"]["unreachable"] == 0, stats
    assert stats["old"]["changed"] == 0 and stats["new"]["changed"] == 0, stats
    results = results_by_host(run, TESTED_PLAY)
    name, refused = results["old"][-1]
    assert "platform_check" in refused.get("action", name) or "release this role supports" in name
    assert refused["msg"] == (
        f"old runs Debian 11.11 (bullseye), which the {role} role does not support. Supported: Debian 12 (bookworm),"
        f" Debian 13 (trixie) (roles/{role}/meta/main.yml). Use a supported release (docs/deploy-real-vms.md)."
        " Nothing was changed.")
    assert results["new"][-1][1]["platform"] == "Debian 13 (trixie)"
