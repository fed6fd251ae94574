"""A restart is not lost when a run stops part-way (issue 14.2), on Telegraf: the run that fails after writing
telegraf.conf leaves the agent running the old file; the next run of the role restarts it
(tests/fixtures/pending_restart.py). Kafka's rolling case costs two rolling restarts: tests/lab/restart."""
from __future__ import annotations

from fixtures.pending_restart import check_restart_left_pending


def test_a_telegraf_restart_left_pending_by_a_failed_run_happens_on_the_next_run(inventory_path, inventory_vars,
                                                                                lab_host):
    hosts = inventory_vars("localhost", "groups")["groups"]["telegraf"]
    check_restart_left_pending(inventory_path, lab_host, role="telegraf", hosts=hosts, playbook="telegraf.yml",
                               unit="telegraf", extra={"telegraf_flush_interval": "11s"})
