#!/usr/bin/env python3
"""Wall time of each phase of `make test`, written to .reports/test-timings.json for the bench's test-time rows.

    test_timings.py phase NAME -- COMMAND...   run COMMAND, add its wall time as phase NAME, rewrite the summary
    COMMAND | test_timings.py molecule-steps   pass Molecule's output through, timing each "<scenario> ➜ <action>"
    test_timings.py summary                    (re)write the summary from what was recorded

`make test` runs each of its phases through `phase` and pipes `molecule test` through `molecule-steps`. The summary
(.reports/test-timings.json) holds the commit, each phase's wall time and exit code, each Molecule step's wall time
per scenario (Molecule prints "Executing" and "Executed: ..." around each action; the time between the two lines is
the step's) and, from the pytest JUnit reports (.reports/pytest/*.xml, .reports/molecule-*.xml), the tests counted
and the slowest test files. It is rewritten after every phase, so a run that stopped early still says how far it got
("complete": false). bench/bench.py turns it into rows. Standard library only: it runs before the venv exists.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / ".reports"
SUMMARY = "test-timings.json"
PHASES_LOG = "test-phases.jsonl"  # one JSON line per finished phase of the current run
STEPS_LOG = "molecule-steps.jsonl"  # one JSON line per finished Molecule step of the current run
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# "INFO     default ➜ converge: Executing" / "... ➜ converge: Executed: Successful" (Molecule 25+ section logger)
STEP_LINE = re.compile(r"^\s*(?:[A-Z]+\s+)?(?P<scenario>[\w.-]+) ➜ (?P<action>[\w-]+): (?P<what>Executing|Executed(?:: (?P<result>.*))?)\s*$")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def loadavg() -> float | None:
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            return float(handle.read().split()[0])
    except OSError:
        return None


def append_line(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut by an interrupted run: the others still count
    return records


# -- Molecule's output -------------------------------------------------------------------------------------------
class StepClock:
    """Turns Molecule's "Executing" / "Executed: <result>" lines into timed steps (scenario, action, seconds, result).

    Only an "Executed" that follows an "Executing" of the same scenario and action closes a step: Molecule's final
    recap repeats the "Executed" lines without "Executing" and adds nothing."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.open: dict[tuple[str, str], float] = {}

    def feed(self, line: str) -> dict | None:
        match = STEP_LINE.match(ANSI.sub("", line))
        if not match:
            return None
        key = (match["scenario"], match["action"])
        if match["what"] == "Executing":
            self.open[key] = self.clock()
            return None
        began = self.open.pop(key, None)
        if began is None:
            return None
        return {"scenario": key[0], "action": key[1], "seconds": round(self.clock() - began, 1),
                "result": (match["result"] or "").strip()}


def molecule_steps(reports: Path, stdin=None, stdout=None) -> int:
    """Copy stdin to stdout line by line (flushed at once: the log must stay live) and record each timed step."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    clock = StepClock()
    broken = False
    for raw in iter(stdin.readline, b""):
        stdout.write(raw)
        stdout.flush()
        if broken:
            continue
        try:  # a timing that cannot be recorded must never stop the copy (Molecule would die of SIGPIPE)
            step = clock.feed(raw.decode("utf-8", errors="replace"))
            if step:
                step["finished"] = now_iso()
                append_line(reports / STEPS_LOG, step)
        except Exception as exc:  # noqa: BLE001 - any failure here only costs the timings
            broken = True
            print(f"test_timings.py: Molecule step timings not recorded: {exc}", file=sys.stderr, flush=True)
    return 0


# -- JUnit reports -----------------------------------------------------------------------------------------------
def junit_summary(path: Path, slowest: int = 5) -> dict:
    """Tests, failures, errors, skipped, summed test time and the slowest test files of one pytest JUnit report."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return {"error": f"unreadable: {exc}"}
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    per_file: dict[str, float] = {}
    total = 0.0
    for case in root.iter("testcase"):
        counts["tests"] += 1
        for kind, key in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            if case.find(kind) is not None:
                counts[key] += 1
        seconds = float(case.get("time") or 0)
        total += seconds
        # pytest's classname is the dotted module path (plus the class): the file is what a reader looks for
        module = (case.get("file") or case.get("classname") or "?").split("::")[0]
        module = re.sub(r"\.Test[A-Za-z0-9_]*$", "", module)
        per_file[module] = per_file.get(module, 0.0) + seconds
    top = sorted(per_file.items(), key=lambda item: -item[1])[:slowest]
    return dict(counts, test_seconds=round(total, 1),
                slowest_files=[{"file": name, "seconds": round(secs, 1)} for name, secs in top])


# -- the summary ---------------------------------------------------------------------------------------------------
def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def summarise(reports: Path, phases: list[dict], steps: list[dict], expected: list[str] | None = None) -> dict:
    """The summary document of one `make test` run (see the module docstring)."""
    junit = {}
    for path in sorted((reports / "pytest").glob("*.xml")) + sorted(reports.glob("molecule-*.xml")):
        junit[path.stem] = junit_summary(path)
    finished = [p["name"] for p in phases]
    failed = [p["name"] for p in phases if p.get("rc")]
    complete = not failed and (expected is None or all(name in finished for name in expected))
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "started": min(p["started"] for p in phases) if phases else None,
        "finished": max(p["finished"] for p in phases) if phases else None,
        "complete": complete,
        "failed_phases": failed,
        "cpus": os.cpu_count(),
        "phases": phases,
        "molecule_steps": steps,
        "junit": junit,
    }


def write_summary(reports: Path, expected: list[str] | None = None) -> Path:
    document = summarise(reports, read_lines(reports / PHASES_LOG), read_lines(reports / STEPS_LOG), expected)
    out = reports / SUMMARY
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return out


def run_phase(reports: Path, name: str, command: list[str], expected: list[str] | None) -> int:
    if not command:
        raise SystemExit("phase: no command given after --")
    started, load_start, began, began_epoch = now_iso(), loadavg(), time.monotonic(), time.time()
    try:
        rc = subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        rc = 130
    seconds = round(time.monotonic() - began, 1)
    # The epochs place phases that ran side by side (lint beside unit and integration) on one time line.
    append_line(reports / PHASES_LOG, {"name": name, "seconds": seconds, "rc": rc, "started": started,
                                       "finished": now_iso(), "loadavg": [load_start, loadavg()],
                                       "started_epoch": round(began_epoch, 1), "finished_epoch": round(time.time(), 1)})
    out = write_summary(reports, expected)
    print(f"==> make test phase {name}: {seconds:.0f} s{'' if rc == 0 else f' (failed, rc {rc})'} ({out})", flush=True)
    return rc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=REPORTS, help="report directory, default .reports/")
    parser.add_argument("--expect", default="", help="comma-separated phases of a complete run (for 'complete')")
    sub = parser.add_subparsers(dest="command", required=True)
    phase = sub.add_parser("phase", help="run a command as one timed phase")
    phase.add_argument("name")
    phase.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND...")
    sub.add_parser("molecule-steps", help="pass Molecule's output through, timing its steps")
    sub.add_parser("summary", help="rewrite the summary")
    sub.add_parser("reset", help="forget the phases and steps of an earlier run")
    args = parser.parse_args(argv)
    expected = [name for name in args.expect.split(",") if name] or None
    if args.command == "phase":
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        return run_phase(args.reports, args.name, command, expected)
    if args.command == "molecule-steps":
        return molecule_steps(args.reports)
    if args.command == "reset":
        for name in (PHASES_LOG, STEPS_LOG, SUMMARY):
            (args.reports / name).unlink(missing_ok=True)
        return 0
    print(write_summary(args.reports, expected))
    return 0


if __name__ == "__main__":
    sys.exit(main())
