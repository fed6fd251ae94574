"""A Kafka restart is not lost when a run stops part-way (issue 14.2): rolling, gated, brokers seconds apart.

A run writes server.properties on two brokers with a changed setting and fails before the handlers; the next run of
playbooks/kafka.yml must restart both, one at a time with the cluster check in between (tasks/restart_broker.yml);
then the inventory's setting is put back (a second rolling restart). Two brokers are enough to see the order and cost
two restarts less than three. Not part of a Molecule scenario: its three runs of kafka.yml and two rolling restarts
took 18 min on this 2-core machine under a load of 40-70 (other labs running). Run it against a converged lab:
``pytest tests/lab/restart --ansible-inventory=<inventory>`` (with ANSIBLE_BECOME=true, as Molecule's verifier)."""
from __future__ import annotations

from fixtures.pending_restart import check_restart_left_pending

BROKERS = ["kafka1", "kafka2"]


def test_a_kafka_restart_left_pending_by_a_failed_run_rolls_on_the_next_run(inventory_path, inventory_vars, lab_host):
    brokers = [b for b in BROKERS if b in inventory_vars("localhost", "groups")["groups"]["kafka_brokers"]]
    assert len(brokers) == 2, f"the inventory lacks {BROKERS}"
    after = check_restart_left_pending(inventory_path, lab_host, role="kafka", hosts=brokers, playbook="kafka.yml",
                                       unit="kafka", extra={"kafka_log_retention_hours": 169}, limit=brokers)
    # One broker at a time, the next only after the cluster check: their starts lie seconds apart, never together.
    starts = sorted(after.values())
    gaps = [round((b - a) / 1e6, 1) for a, b in zip(starts, starts[1:])]
    print(f"kafka: brokers restarted {gaps} s apart")
    assert all(gap > 5 for gap in gaps), f"brokers restarted together: {gaps} s apart"
