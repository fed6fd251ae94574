"""make bench's converge rows over several cold converges (--converge-runs): each run recreates the hosts (destroy,
create) before its cold converge, measures its re-run and its own floor right after; the rows are the medians with
one ratio per run, the docker and Mitogen re-runs come from the first run only, and a changed task in any re-run shows.
The playbook runner is replaced by recorded timings: this checks the bench's arithmetic and order of steps, the
playbooks themselves run in make bench."""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_converge", ROOT / "bench" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def report(changed=0, task="Some task"):
    host = {"ok": 10, "changed": changed}
    return {"stats": {"kafka1": host}, "plays": [{"play": {"name": "Kafka"}, "tasks": [
        {"task": {"name": task}, "hosts": {"kafka1": {"changed": bool(changed)}}}]}]}


class RecordedBench(bench.Bench):
    """A Bench whose playbooks take the recorded seconds instead of running."""

    def __init__(self, seconds, changed_in_rerun=None, tmp_path=None):  # pylint: disable=super-init-not-called
        self.args = argparse.Namespace(converge_runs=len(seconds["converge-cold"]))
        self.rows, self.details, self.calls = [], {}, []
        self.work = self.src = tmp_path
        self.seconds = {name: list(values) for name, values in seconds.items()}
        self.changed_in_rerun = changed_in_rerun or {}

    def inventory_hostvars(self):
        return {"kafka1": {"lab_container": "isobar-bench-kafka1"}}

    def playbook(self, playbook, name, extra=None, *, report=False, env=None, inventory=None):
        self.calls.append(name)
        base = name.rsplit("-", 1)[0] if name[-1].isdigit() else name
        seconds = self.seconds[base].pop(0) if base in self.seconds else 1.0
        changed = self.changed_in_rerun.get(name, 0)
        return seconds, (globals()["report"](changed, "Template the config") if report else None)


def test_three_runs_give_medians_per_run_ratios_and_recreate_the_hosts(tmp_path):
    b = RecordedBench({"converge-cold": [300.0, 200.0, 220.0], "converge-rerun": [100.0, 80.0, 90.0],
                       "converge-floor": [50.0, 40.0, 70.0], "converge-rerun-docker": [70.0],
                       "converge-rerun-mitogen": [45.0]}, tmp_path=tmp_path)
    b.bench_converge()
    assert b.calls == ["create", "converge-cold", "converge-rerun", "converge-rerun-docker", "converge-rerun-mitogen",
                       "converge-floor",
                       "destroy-2", "create-2", "converge-cold-2", "converge-rerun-2", "converge-floor-2",
                       "destroy-3", "create-3", "converge-cold-3", "converge-rerun-3", "converge-floor-3"]
    rows = {row["key"]: row for row in b.rows}
    assert (rows["converge_cold"]["ours"], rows["converge_cold"]["reference"]) == (220.0, 50.0)
    assert rows["converge_cold"]["per_run_ratios"] == [6.0, 5.0, round(220 / 70, 3)]
    assert (rows["converge_rerun"]["ours"], rows["converge_rerun"]["reference"]) == (90.0, 50.0)
    assert rows["converge_rerun"]["measure"] == "Idempotent re-run (changed = 0)"
    assert "median of 3 runs" in rows["converge_rerun"]["conditions"]
    # docker and Mitogen: the first run's re-run and floor
    assert (rows["converge_rerun_ssh_vs_docker"]["ours"], rows["converge_rerun_ssh_vs_docker"]["reference"]) == (100.0, 70.0)
    assert (rows["converge_rerun_mitogen"]["ours"], rows["converge_rerun_mitogen"]["reference"]) == (45.0, 50.0)
    assert len(b.details["converge"]["runs"]) == 3 and (tmp_path / "floor-3.yml").exists()


def test_a_change_in_any_rerun_is_shown(tmp_path):
    b = RecordedBench({"converge-cold": [300.0, 200.0], "converge-rerun": [100.0, 80.0], "converge-floor": [50.0, 40.0],
                       "converge-rerun-docker": [70.0], "converge-rerun-mitogen": [45.0]},
                      changed_in_rerun={"converge-rerun-2": 1}, tmp_path=tmp_path)
    b.bench_converge()
    row = {r["key"]: r for r in b.rows}["converge_rerun"]
    assert row["measure"] == "Idempotent re-run (changed = 1)"
    assert "changed per run [0, 1]" in row["conditions"] and "Template the config (kafka1)" in row["conditions"]
