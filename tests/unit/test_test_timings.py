"""make test's per-phase timings (tools/test_timings.py) and the bench rows made of them (bench/bench.py)."""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


timings = load("test_timings_tool", ROOT / "tools" / "test_timings.py")

# Molecule 26's lines as they reach the pipe (colour codes included), from a real `molecule test --all` log.
ESC = "\x1b"
EXECUTING = f"{ESC}[36mINFO    {ESC}[0m {ESC}[32mdefault{ESC}[0m \u279c {ESC}[33m{{action}}{ESC}[0m: {ESC}[36mExecuting{ESC}[0m\n"
EXECUTED = (f"{ESC}[36mINFO    {ESC}[0m {ESC}[32mdefault{ESC}[0m \u279c {ESC}[33m{{action}}{ESC}[0m: "
            f"{ESC}[32mExecuted: {{result}}{ESC}[0m\n")
RECAP = f"{ESC}[32mdefault{ESC}[0m \u279c {ESC}[33m{{action}}{ESC}[0m: {ESC}[32mExecuted: Successful{ESC}[0m\n"


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_step_is_timed_from_executing_to_executed_and_the_recap_adds_nothing():
    clock = FakeClock()
    steps = timings.StepClock(clock)
    assert steps.feed(EXECUTING.format(action="converge")) is None
    assert steps.feed("  TASK [isobar.pipeline.kafka : Install] ****\n") is None
    clock.now = 640.25
    assert steps.feed(EXECUTED.format(action="converge", result="Successful")) == {
        "scenario": "default", "action": "converge", "seconds": 540.2, "result": "Successful"}
    # the recap at the end repeats the line without an Executing before it
    assert steps.feed(RECAP.format(action="converge")) is None
    # plain (uncoloured) output, another scenario, a failed step
    assert steps.feed("INFO     failover \u279c side_effect: Executing\n") is None
    clock.now = 700.0
    assert steps.feed("INFO     failover \u279c side_effect: Executed: Failed\n") == {
        "scenario": "failover", "action": "side_effect", "seconds": 59.8, "result": "Failed"}


def test_molecule_output_passes_through_unchanged_and_each_step_is_recorded(tmp_path):
    text = (EXECUTING.format(action="destroy") + "PLAY RECAP *****\n" + EXECUTED.format(action="destroy", result="Successful")
            + EXECUTING.format(action="create") + "caf\u00e9\n"
            + EXECUTED.format(action="create", result="Successful") + RECAP.format(action="create"))
    raw = text.encode("utf-8") + b"\xff broken utf-8, no newline at the end"
    out = io.BytesIO()
    assert timings.molecule_steps(tmp_path, io.BytesIO(raw), out) == 0
    assert out.getvalue() == raw
    recorded = timings.read_lines(tmp_path / timings.STEPS_LOG)
    assert [(s["scenario"], s["action"], s["result"]) for s in recorded] == [
        ("default", "destroy", "Successful"), ("default", "create", "Successful")]
    assert all(s["seconds"] >= 0 for s in recorded)


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.integration.kafka.test_kafka_topic" name="test_a" time="12.5"/>
<testcase classname="tests.integration.kafka.test_kafka_topic" name="test_b" time="7.5"><failure message="x"/></testcase>
<testcase classname="tests.integration.influxdb.test_backup_restore.TestRestore" name="test_c" time="30.0"/>
<testcase classname="tests.integration.test_artifacts" name="test_d" time="0.1"><skipped message="no jar"/></testcase>
</testsuite></testsuites>"""


def test_junit_summary_counts_and_names_the_slowest_files(tmp_path):
    path = tmp_path / "integration.xml"
    path.write_text(JUNIT)
    summary = timings.junit_summary(path, slowest=2)
    assert summary["tests"] == 4 and summary["failures"] == 1 and summary["skipped"] == 1 and summary["errors"] == 0
    assert summary["test_seconds"] == 50.1
    assert summary["slowest_files"] == [{"file": "tests.integration.influxdb.test_backup_restore", "seconds": 30.0},
                                        {"file": "tests.integration.kafka.test_kafka_topic", "seconds": 20.0}]
    (tmp_path / "cut.xml").write_text("<testsuites><testsuite>")
    assert "unreadable" in timings.junit_summary(tmp_path / "cut.xml")["error"]


def test_phases_are_timed_with_their_exit_code_and_a_failed_or_missing_phase_leaves_the_run_incomplete(tmp_path, capsys):
    expect = ["lint", "unit"]
    ok = [sys.executable, "-c", "import time; time.sleep(0.3)"]
    assert timings.main(["--reports", str(tmp_path), "--expect", "lint,unit", "phase", "lint", "--", *ok]) == 0
    summary = json.loads((tmp_path / timings.SUMMARY).read_text())
    assert [p["name"] for p in summary["phases"]] == ["lint"] and summary["phases"][0]["seconds"] >= 0.3
    assert summary["complete"] is False  # unit has not run yet
    assert "make test phase lint" in capsys.readouterr().out

    (tmp_path / "pytest").mkdir()
    (tmp_path / "pytest" / "unit.xml").write_text(JUNIT)
    assert timings.run_phase(tmp_path, "unit", [sys.executable, "-c", "raise SystemExit(3)"], expect) == 3
    summary = json.loads((tmp_path / timings.SUMMARY).read_text())
    assert summary["phases"][1]["rc"] == 3 and summary["failed_phases"] == ["unit"] and summary["complete"] is False
    assert summary["junit"]["unit"]["tests"] == 4

    timings.main(["--reports", str(tmp_path), "reset"])
    assert not (tmp_path / timings.SUMMARY).exists() and not (tmp_path / timings.PHASES_LOG).exists()
    for name in expect:
        assert timings.run_phase(tmp_path, name, [sys.executable, "-c", "pass"], expect) == 0
    summary = json.loads((tmp_path / timings.SUMMARY).read_text())
    assert summary["complete"] is True and summary["failed_phases"] == []
    assert summary["commit"] and len(summary["commit"]) == 40


# -- the bench rows --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bench():
    return load("bench_for_timings", ROOT / "bench" / "bench.py")


def document(complete=True):
    phases = [{"name": "setup", "seconds": 3.0, "rc": 0, "loadavg": [1.0, 1.5]},
              {"name": "lint", "seconds": 300.0, "rc": 0, "loadavg": [1.5, 2.0]},
              {"name": "unit", "seconds": 30.0, "rc": 0},
              {"name": "integration", "seconds": 900.0, "rc": 0},
              {"name": "molecule", "seconds": 1500.0, "rc": 0 if complete else 2}]
    steps = [{"scenario": "default", "action": "destroy", "seconds": 10.0},
             {"scenario": "default", "action": "syntax", "seconds": 4.0},
             {"scenario": "default", "action": "converge", "seconds": 540.0},
             {"scenario": "default", "action": "idempotence", "seconds": 330.0},
             {"scenario": "default", "action": "verify", "seconds": 180.0},
             {"scenario": "failover", "action": "side_effect", "seconds": 480.0},
             {"scenario": "default", "action": "destroy", "seconds": 12.0}]
    return {"commit": "a" * 40, "dirty": False, "finished": "2026-12-03T15:00:00Z", "complete": complete,
            "failed_phases": [] if complete else ["molecule"], "phases": phases, "molecule_steps": steps,
            "junit": {"integration": {"tests": 290, "skipped": 1, "slowest_files": [
                {"file": "tests.integration.influxdb.test_backup_restore", "seconds": 120.0}]},
                "molecule-default": {"tests": 60, "failures": 1, "errors": 0}}}


def test_rows_total_against_the_budget_each_phase_and_each_molecule_step(bench):
    rows = {row["key"]: row for row in bench.test_time_rows(document(), "a" * 40)}
    total = rows["make_test_total"]
    assert total["ours"] == 2730.0 and total["reference"] == 2400 and "setup (venv, artifact store) 3 s" in total["conditions"]
    assert "lint 300 s, unit 30 s, integration 900 s, molecule 1500 s" in total["conditions"]
    assert "load 1.0-2.0" in total["conditions"] and "not the commit" not in total["conditions"]
    assert [rows[f"make_test_{p}"]["ours"] for p in ("lint", "unit", "integration", "molecule")] == [300, 30, 900, 1500]
    assert "make_test_setup" not in rows
    assert rows["make_test_integration"]["conditions"].startswith("290 tests, 1 skipped; slowest: test_backup_restore 120 s")
    assert rows["make_test_molecule_default_destroy"]["ours"] == 22.0  # both destroys of the run
    assert rows["make_test_molecule_default_converge"]["ours"] == 540.0
    assert rows["make_test_molecule_default_verify"]["conditions"].startswith("60 tests, 1 failed")
    assert rows["make_test_molecule_default_other"]["ours"] == 4.0
    assert rows["make_test_molecule_failover_side_effect"]["ours"] == 480.0
    assert all(row["reference"] is None for key, row in rows.items() if key != "make_test_total")


def test_phases_that_ran_side_by_side_count_once_in_the_total(bench):
    """make test runs lint beside unit and integration: the total is the wall time from the first start to the last
    end, not the sum of the phases."""
    doc = document()
    start = 1_000_000.0
    spans = {"setup": (start - 3, start), "lint": (start, start + 300), "unit": (start, start + 30),
             "integration": (start + 30, start + 930), "molecule": (start + 930, start + 2430)}
    for phase in doc["phases"]:
        phase["started_epoch"], phase["finished_epoch"] = spans[phase["name"]]
    total = {row["key"]: row for row in bench.test_time_rows(doc, "a" * 40)}["make_test_total"]
    assert total["ours"] == 2430.0 and "side by side: 300 s of phase time overlapped" in total["conditions"]


def test_an_incomplete_run_has_no_total_and_another_commit_is_said(bench):
    rows = {row["key"]: row for row in bench.test_time_rows(document(complete=False), "b" * 40 + " + uncommitted changes")}
    total = rows["make_test_total"]
    assert total["status"] == "not measured" and total["ours"] is None
    assert "did not complete (failed phases: molecule" in total["conditions"]
    assert "make_test_molecule" not in rows and "make_test_integration" in rows
    assert "not the commit measured by the other rows" in rows["make_test_lint"]["conditions"]


def test_bench_only_tests_reports_the_rows_without_any_lab(bench, tmp_path, monkeypatch):
    source = tmp_path / "test-timings.json"
    source.write_text(json.dumps(document()))
    monkeypatch.setenv("ISOBAR_CACHE", str(tmp_path / "cache"))

    def no_lab(self, *args, **kwargs):
        raise AssertionError(f"--only tests ran a playbook: {args}")

    monkeypatch.setattr(bench.Bench, "playbook", no_lab)
    args = argparse.Namespace(runs=1, converge_runs=1, latency_duration=1, catchup_points=0, only=["tests"], keep_lab=False, reuse_lab=False,
                              results_dir=str(tmp_path / "results"), commit="HEAD", working_tree=True,
                              test_timings=str(source))
    assert bench.Bench(args).run() == 0
    [result] = (tmp_path / "results").glob("*.json")
    written = json.loads(result.read_text())
    assert written["rows"][0]["key"] == "make_test_total" and written["rows"][0]["ratio"] == round(2730 / 2400, 3)
    assert written["details"]["make_test"]["phases"][1]["name"] == "lint"
    assert "| Warm make test (lint + unit + integration + Molecule) | s | 2,730 | 2,400 | 1.137 |" in \
        result.with_suffix(".md").read_text()

    source.write_text("not json")
    assert bench.Bench(args).run() == 0
    [result] = (tmp_path / "results").glob("*.json")
    assert json.loads(result.read_text())["rows"][0]["status"] == "not measured"


def test_a_timing_that_cannot_be_recorded_never_stops_the_copy(tmp_path, capsys):
    (tmp_path / "blocked").write_text("a file where the report directory should be")
    raw = (EXECUTING.format(action="converge") + EXECUTED.format(action="converge", result="Successful")
           + "after the failure\n").encode()
    out = io.BytesIO()
    assert timings.molecule_steps(tmp_path / "blocked", io.BytesIO(raw), out) == 0
    assert out.getvalue() == raw
    assert "Molecule step timings not recorded" in capsys.readouterr().err
