#!/usr/bin/env python3
"""Isobar benchmark: converge, inject, produce, end-to-end latency and failover figures of the pipeline,
each next to a reference measured in the same run on the same machine, and their ratio.

One command (`make bench` or `bench/run`) exports the commit to measure, brings up a private bench lab
(bench/inventory: containers isobar-bench-*, network isobar-bench, 172.30.30.0/24, environment bench),
measures, prints a markdown table, writes bench/results/<date>.json and .md, and destroys the bench lab.
Raw logs stay under $ISOBAR_CACHE/bench/<time>/. The dev lab (inventories/lab) and the test lab
(isobar-test-*) are never touched. What each figure is: bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: results and the toolchain (.venv)
RESULTS = ROOT / "bench" / "results"
VENV_BIN = ROOT / ".venv" / "bin"

def _load_sibling(name: str):
    """bench/<name>.py, next to this file (programs of the repository, not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


charts = _load_sibling("charts")
profiles = _load_sibling("profile")  # where a playbook run's time goes (bench/profile.py)

# Workloads (repeated in each row's conditions).
INJECT_STATIONS = 100  # x one day at 1 point/min = 144,000 points per run and side
PRODUCE_STATIONS = 20  # x one day at 1 point/min = 28,800 messages per run and side
WINDOW_INTERVAL_S = 60
INJECT_BATCH = 5000  # weather_inject's default batch_size, used by the reference too
FAILOVER_BROKER = "kafka2"
# Run n writes the UTC day <X>_DAYS_AGO + n days back: inside the weather bucket's 30 days, before the pipeline's
# own checkpoint (yesterday's end, so its producer never sees these windows), inject and produce days apart.
PRODUCE_DAYS_AGO = 1
INJECT_DAYS_AGO = 10
MAX_RUNS = 9
# Records of one scraping-cost measurement (ProducerPerformance), default: about a minute and a half of the brokers'
# full speed on the bench lab (200,000 records, ~20 s, gave per-run ratios 0.67-1.45 at load 4-8: too short).
SCRAPE_RECORDS = 1_000_000
# "tests" needs no lab: it reads the timings the last `make test` of this checkout wrote (tools/test_timings.py).
STEPS = ["converge", "inject", "produce", "latency", "scrape", "failover", "tests"]
LAB_STEPS = set(STEPS) - {"tests"}
TEST_TIMINGS = ROOT / ".reports" / "test-timings.json"
TEST_BUDGET_S = 2400  # the whole warm make test within 40 minutes (issues 12, 14, 15, 18)
# Molecule actions that get a row of their own, per scenario; the others (dependency, syntax, cleanup, prepare...)
# are summed into one "other steps" row.
MOLECULE_ROW_ACTIONS = ("create", "converge", "idempotence", "side_effect", "verify", "destroy")
# The lab engine's docker connection as root instead of SSH, for the bench lab's hosts only (docker_overlay).
DOCKER_CONNECTION = {"ansible_connection": "community.docker.docker", "ansible_user": "root"}


# -- helpers -----------------------------------------------------------------------------------------
def docker_overlay(hostvars: dict) -> dict:
    """An extra inventory source giving each lab host (one with a lab_container) the docker connection to its
    container, by name. Host variables, not extra variables: extra variables also reach the tasks a play delegates
    to localhost (the pki role's CA tasks failed with "'lab_container' is undefined")."""
    hosts = {name: dict(DOCKER_CONNECTION, ansible_host=values["lab_container"])
             for name, values in sorted(hostvars.items()) if values.get("lab_container") and name != "localhost"}
    if not hosts:
        raise ValueError("no host of the bench inventory has a lab_container: nothing to reach through docker")
    return {"all": {"hosts": hosts}}


def loadavg() -> float:
    """The machine's 1-minute load average (containers share the kernel: the lab's load is in it)."""
    with open("/proc/loadavg", encoding="ascii") as handle:
        return float(handle.read().split()[0])


def produce_order(run: int) -> list[str]:
    """The producers of a produce run in turn: the reference, ours (the default client library), alt (the other),
    rotated from one run to the next so that none always runs first on a cold or warm cluster."""
    sides = ["ref", "ours", "alt"]
    shift = (run - 1) % len(sides)
    return sides[shift:] + sides[:shift]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ratio(ours: float | None, ref: float | None) -> float | None:
    return round(ours / ref, 3) if ours is not None and ref else None


def load_range(values: list[float]) -> str:
    return f"load {min(values):.1f}" if max(values) - min(values) < 0.05 else f"load {min(values):.1f}-{max(values):.1f}"


def day(days_ago: int) -> tuple[str, str]:
    """RFC 3339 start and stop of the UTC day `days_ago` days before today (one window per run)."""
    today = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - datetime.timedelta(days=days_ago)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ"), (start + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_project_modules(src: Path):
    """weather_inject (simulation, line protocol) and pipeline_producer (message format) of the measured tree, under
    their collection names as the unit tests import them (pytest.ini: pythonpath collections). The modules import
    their module_utils as ansible_collections.isobar.pipeline...: a bare file import fails since the checkout is a
    collection."""
    sys.path.insert(0, str(src / "collections"))
    inject = importlib.import_module("ansible_collections.isobar.pipeline.plugins.modules.weather_inject")
    producer = importlib.import_module("ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_producer")
    for module in (inject, producer):  # the measured tree's code, not another checkout's
        if not Path(module.__file__).resolve().is_relative_to(src.resolve()):
            raise SystemExit(f"bench: {module.__name__} was imported from {module.__file__}, not from {src}")
    return inject, producer


def window_points(inject, stations: int, start: str, stop: str):
    """(station, epoch second, fields) of every point weather_inject writes for this window (seed 42)."""
    params = {"interval": f"{WINDOW_INTERVAL_S}s", "now_granularity": None, "start": start, "stop": stop,
              "stations": stations, "station_prefix": "station-", "max_points": 1_000_000, "heat_spike": None}
    stamps, names, _spike, _interval = inject.plan_window(params, int(time.time()))
    for station in names:
        profile = inject._station_profile(42, station)
        for ts in stamps:
            yield station, ts, inject.simulate(42, station, ts, profile)


def wall_time(phases: list[dict]) -> tuple[float, str]:
    """(seconds, note) of phases, some of which may have run side by side: from the first start to the last end when
    every phase has its epochs (tools/test_timings.py), else the sum of their times. The note names the overlap."""
    if phases and all("started_epoch" in p and "finished_epoch" in p for p in phases):
        span = max(p["finished_epoch"] for p in phases) - min(p["started_epoch"] for p in phases)
        added = sum(p["seconds"] for p in phases)
        note = f" (side by side: {added - span:.0f} s of phase time overlapped)" if added - span > 1 else ""
        return round(span, 1), note
    return round(sum(p["seconds"] for p in phases), 1), ""


def test_time_rows(timings: dict, measured_commit: str | None = None) -> list[dict]:
    """The rows of warm `make test`'s wall time from its summary (.reports/test-timings.json), as add_row arguments.

    One row for the whole run against the 40-minute budget (only when every phase ran and passed: a partial run's
    total says nothing), one per phase that passed (lint, unit, integration, molecule) and one per Molecule
    scenario and action, without reference: they show where a regression is. setup (toolchain, artifact store) is
    left out of the total and said in the conditions: it is what separates a warm run from a cold one."""
    phases = timings.get("phases") or []
    commit = str(timings.get("commit") or "?")
    origin = f"make test of {commit[:10]}{' + uncommitted changes' if timings.get('dirty') else ''}, finished " \
             f"{timings.get('finished') or '?'}"
    if measured_commit and commit != measured_commit.split()[0]:
        origin += " (not the commit measured by the other rows)"
    how = ("wall time of each phase as make test timed it (tools/test_timings.py: .reports/test-timings.json; Molecule "
           "steps from its \"Executing\"/\"Executed\" lines)")
    setup = next((p for p in phases if p["name"] == "setup"), None)
    setup_text = f"setup (venv, artifact store) {setup['seconds']:.0f} s not included" if setup else "setup not timed"
    loads = [v for p in phases for v in (p.get("loadavg") or []) if v is not None]
    load_text = f"; {load_range(loads)}" if loads else ""
    passed = [p for p in phases if p["name"] != "setup" and not p.get("rc")]
    rows = []
    if timings.get("complete"):
        total, overlap = wall_time(passed)
        rows.append(dict(key="make_test_total", measure="Warm make test (lint + unit + integration + Molecule)", unit="s",
                         ours=total, reference=TEST_BUDGET_S,
                         conditions=f"{origin}; " + ", ".join(f"{p['name']} {p['seconds']:.0f} s" for p in passed)
                                    + f"{overlap}; {setup_text}{load_text}",
                         how=f"{how}; reference = the budget of the whole warm suite, {TEST_BUDGET_S // 60} min"))
    else:
        failed = ", ".join(timings.get("failed_phases") or []) or "none"
        rows.append(dict(key="make_test_total", measure="Warm make test (lint + unit + integration + Molecule)",
                         unit="s", ours=None, reference=None, status="not measured", how=how,
                         conditions=f"{origin} did not complete (failed phases: {failed}; ran: "
                                    f"{', '.join(p['name'] for p in phases) or 'none'})"))
    junit = timings.get("junit") or {}
    reports = {"unit": ["unit"], "integration": ["integration"]}
    for phase in passed:
        details = []
        for report in reports.get(phase["name"], []):
            summary = junit.get(report) or {}
            if "tests" in summary:
                slow = ", ".join(f"{f['file'].rsplit('.', 1)[-1]} {f['seconds']:.0f} s"
                                 for f in summary.get("slowest_files", [])[:3])
                details.append(f"{summary['tests']} tests, {summary.get('skipped', 0)} skipped; slowest: {slow}")
        rows.append(dict(key=f"make_test_{phase['name']}", measure=f"make test: {phase['name']}", unit="s",
                         ours=phase["seconds"], reference=None, how="",
                         conditions="; ".join(details + [origin])))
    grouped: dict[tuple[str, str], float] = {}
    for step in timings.get("molecule_steps") or []:
        action = step["action"] if step["action"] in MOLECULE_ROW_ACTIONS else "other"
        grouped[(step["scenario"], action)] = grouped.get((step["scenario"], action), 0.0) + step["seconds"]
    for (scenario, action), seconds in grouped.items():
        if action == "other" and seconds < 1:
            continue
        verify = junit.get(f"molecule-{scenario}") if action == "verify" else None
        extra = [f"{verify['tests']} tests, {verify.get('failures', 0) + verify.get('errors', 0)} failed"] \
            if verify and "tests" in verify else []
        label = "other steps (dependency, syntax, cleanup, prepare)" if action == "other" else action
        rows.append(dict(key=f"make_test_molecule_{scenario}_{action}", measure=f"make test: Molecule {scenario} {label}",
                         unit="s", ours=round(seconds, 1), reference=None, how="",
                         conditions="; ".join(extra + [origin])))
    return rows


class StepFailed(Exception):
    """A bench step failed; the message says which and where its log is."""


# -- the bench ---------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.started = datetime.datetime.now(datetime.timezone.utc)
        cache = Path(os.environ.get("ISOBAR_CACHE")
                     or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "isobar")
        self.tag = self.started.strftime("%Y%m%dT%H%M%SZ")  # names of this run's measurements and checkpoints
        self.work = cache / "bench" / self.tag
        self.work.mkdir(parents=True, exist_ok=True)
        self.src, self.commit = self.source(cache / "bench" / "src")
        # ansible.cfg loads no vault identity: the bench lab's vault is a copy of the lab's (bench/create.yml), under
        # the lab's published throwaway identity (isobar_vault_id: lab).
        self.env = dict(os.environ, ANSIBLE_CONFIG=str(self.src / "ansible.cfg"),
                        ANSIBLE_VAULT_IDENTITY_LIST=f"lab@{self.src / 'inventories' / 'lab' / 'vault-password.txt'}",
                        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        self.inject_mod, self.producer_mod = load_project_modules(self.src)
        self.rows: list[dict] = []
        self.details: dict = {}
        self.agent_switches: list[bool] = []

    def source(self, export: Path) -> tuple[Path, str]:
        """The tree measured: a clean export of a commit (default HEAD: others' uncommitted edits in a shared
        working tree must not decide the figures), or the working tree itself with --working-tree. The export
        stays at one place because the bench lab's vault copy and generated secrets live in its bench/inventory:
        --reuse-lab measures with the export the lab was converged from."""
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

        if self.args.working_tree:
            return ROOT, git("rev-parse", "HEAD") + (" + uncommitted changes" if git("status", "--porcelain") else "")
        if self.args.reuse_lab:
            if not (export / ".commit").exists():
                raise SystemExit(f"--reuse-lab: no exported tree at {export} (run once with --keep-lab first)")
            return export, (export / ".commit").read_text(encoding="utf-8").strip()
        commit = git("rev-parse", "--verify", f"{self.args.commit}^{{commit}}")
        shutil.rmtree(export, ignore_errors=True)
        export.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(export)], input=archive, check=True)
        (export / ".commit").write_text(commit + "\n", encoding="utf-8")
        print(f"Measuring commit {commit[:12]} (exported to {export})")
        return export, commit

    # -- running Ansible -------------------------------------------------------------------------
    def playbook(self, playbook: Path | str, name: str, extra: dict | None = None, *, report: bool = False,
                 env: dict | None = None, inventory: dict | None = None) -> tuple[float, dict | None]:
        """Run a playbook (path relative to the measured tree) on the bench lab, with inventory as an extra inventory
        source when given. Returns (wall seconds, the json callback's report when report=True). Output:
        <work>/<name>.log or .json. Failure: StepFailed."""
        command = [str(VENV_BIN / "ansible-playbook"), str(playbook), "-i", "bench/inventory"]
        if inventory:
            overlay = self.work / f"{name}.inventory.yml"
            overlay.write_text(json.dumps(inventory, indent=2), encoding="utf-8")  # JSON is YAML
            command += ["-i", str(overlay)]
        if extra:
            command += ["-e", json.dumps(extra)]
        run_env = dict(self.env, **(env or {}))
        if report:
            run_env.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
                           ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
        out = self.work / f"{name}.{'json' if report else 'log'}"
        print(f"  - {name} ... ", end="", flush=True)
        began = time.monotonic()
        with open(out, "w", encoding="utf-8") as stdout, open(self.work / f"{name}.stderr", "w", encoding="utf-8") as stderr:
            rc = subprocess.run(command, cwd=self.src, env=run_env, stdout=stdout, stderr=stderr, check=False).returncode
        seconds = time.monotonic() - began
        print(f"{seconds:.0f} s{'' if rc == 0 else f' (failed, rc {rc})'}", flush=True)
        data = None
        if report:
            try:
                data = json.loads(out.read_text(encoding="utf-8"))
            except ValueError:
                pass
        if rc != 0:
            why = self.report_failures(data) if data else self.log_failures(out)
            raise StepFailed(f"{Path(playbook).name} failed (rc {rc}): {why} (log {out})")
        return seconds, data

    def inventory_hostvars(self) -> dict:
        """{host: {lab_container}} of the bench inventory as Ansible reads it (only that name is kept: the rest may
        hold the environment's secrets)."""
        proc = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", "bench/inventory", "--list"], cwd=self.src,
                              env=self.env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise StepFailed(f"ansible-inventory -i bench/inventory --list failed: {proc.stderr.strip()[-500:]}")
        hostvars = json.loads(proc.stdout).get("_meta", {}).get("hostvars", {})
        return {name: {"lab_container": values.get("lab_container")} for name, values in hostvars.items()}

    @staticmethod
    def report_failures(report: dict) -> str:
        found = [f"{task['task']['name']} on {host}: {str(result.get('msg', ''))[:300]}"
                 for play in report.get("plays", []) for task in play.get("tasks", [])
                 for host, result in task.get("hosts", {}).items() if result.get("failed") or result.get("unreachable")]
        return "; ".join(found[:3])

    @staticmethod
    def log_failures(log: Path) -> str:
        found = [line.strip()[:300] for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.startswith(("fatal:", "[ERROR]:"))]
        return "; ".join(found[:2])

    @staticmethod
    def changed_tasks(report: dict) -> list[str]:
        return [f"{task['task']['name']} ({host})" for play in report.get("plays", []) for task in play.get("tasks", [])
                for host, result in task.get("hosts", {}).items() if result.get("changed")]

    # -- rows ---------------------------------------------------------------------------------------
    def add_row(self, key: str, measure: str, unit: str, ours, reference, *, conditions: str, how: str,
                per_run: list[float] | None = None, status: str = "measured") -> None:
        self.rows.append({"key": key, "measure": measure, "unit": unit, "ours": ours, "reference": reference,
                          "ratio": ratio(ours, reference) if status == "measured" else None, "per_run_ratios": per_run,
                          "status": status, "conditions": conditions, "how": how})

    def not_measured(self, key: str, measure: str, unit: str, why: str) -> None:
        self.add_row(key, measure, unit, None, None, conditions=why, how="", status="not measured")

    def throughput_rows(self, runs: list[dict], rows: tuple, unit: str, conditions: str) -> None:
        """One row per (key, measure, ours field, reference field, how): medians over the runs."""
        for key, measure, ours_key, ref_key, how in rows:
            ours, ref = median([r[ours_key] for r in runs]), median([r[ref_key] for r in runs])
            self.add_row(key, measure, unit, ours, ref, conditions=conditions, how=how,
                         per_run=[ratio(r[ours_key], r[ref_key]) for r in runs])

    # -- 1. converge --------------------------------------------------------------------------------
    def converge_once(self, n: int) -> dict:
        """One cold converge on hosts just created, its idempotent re-run and the floor of that re-run, measured one
        after the other (run n > 1: on hosts destroyed and created again). The first run also re-runs through the
        docker connection and through Mitogen."""
        suffix = "" if n == 1 else f"-{n}"
        if n > 1:
            self.playbook("bench/destroy.yml", f"destroy{suffix}")
        create_s, _ = self.playbook("bench/create.yml", f"create{suffix}")
        run: dict = {"create_s": create_s, "load": {"cold": [loadavg()]}}
        run["cold_s"], cold = self.playbook("site.yml", f"converge-cold{suffix}", report=True)
        run["load"]["cold"].append(loadavg())
        run["rerun_s"], rerun = self.playbook("site.yml", f"converge-rerun{suffix}", report=True)
        run["load"]["rerun"] = [run["load"]["cold"][-1], loadavg()]
        last = run["load"]["rerun"][-1]
        if n == 1:
            # The same re-run through the docker connection (as root, no SSH): what reaching the hosts like VMs costs.
            run["docker_s"], run["docker"] = self.playbook(
                "site.yml", "converge-rerun-docker", report=True, inventory=docker_overlay(self.inventory_hostvars()))
            run["load"]["rerun_docker"] = [last, loadavg()]
            # The same re-run through Mitogen (plugins/strategy/mitogen_linear.py, what make test's scenarios use).
            run["mitogen_s"], run["mitogen"] = self.playbook("site.yml", "converge-rerun-mitogen", report=True, env={
                "ANSIBLE_STRATEGY_PLUGINS": str(self.src / "plugins" / "strategy"), "ANSIBLE_STRATEGY": "mitogen_linear"})
            run["load"]["rerun_mitogen"] = [run["load"]["rerun_docker"][-1], loadavg()]
            last = run["load"]["rerun_mitogen"][-1]
        floor_book, run["floor_plays"] = self.floor_playbook(rerun, suffix)
        run["floor_s"], _ = self.playbook(floor_book, f"converge-floor{suffix}")
        run["load"]["floor"] = [last, loadavg()]
        run.update(cold=cold, rerun=rerun)
        return run

    def bench_converge(self) -> None:
        runs_n = self.args.converge_runs
        print(f"Converge ({runs_n} run{'s' if runs_n > 1 else ''}): create the hosts, site.yml on bare hosts, again "
              "(idempotent), Ansible floor")
        runs = [self.converge_once(n) for n in range(1, runs_n + 1)]
        first = runs[0]
        changed_count = lambda report: sum(s.get("changed", 0) for s in report["stats"].values())  # noqa: E731
        host_tasks = lambda report: sum(s.get("ok", 0) + s.get("changed", 0) for s in report["stats"].values())  # noqa: E731
        cold_s, rerun_s, floor_s = (median([r[k] for r in runs]) for k in ("cold_s", "rerun_s", "floor_s"))
        changed = [changed_count(r["rerun"]) for r in runs]
        floor_plays = first["floor_plays"]
        floor_tasks = sum(p["tasks"] * len(p["hosts"]) for p in floor_plays)
        load_cold = [x for r in runs for x in r["load"]["cold"]]
        load_rerun = [x for r in runs for x in r["load"]["rerun"]]
        load_floor = [x for r in runs for x in r["load"]["floor"]]
        self.details["converge"] = {
            "runs": [{"create_hosts_s": round(r["create_s"], 1), "cold_s": round(r["cold_s"], 1),
                      "rerun_s": round(r["rerun_s"], 1), "floor_s": round(r["floor_s"], 1),
                      "cold_stats": r["cold"]["stats"], "rerun_stats": r["rerun"]["stats"],
                      "rerun_changed_tasks": self.changed_tasks(r["rerun"]), "floor_plays": r["floor_plays"],
                      "loadavg": r["load"]} for r in runs],
            "rerun_docker_s": round(first["docker_s"], 1), "rerun_docker_stats": first["docker"]["stats"],
            "rerun_mitogen_s": round(first["mitogen_s"], 1), "rerun_mitogen_stats": first["mitogen"]["stats"],
            # Where the time goes (issue 19.1): the first run's converge and re-runs, per role and task.
            "profile": {"cold": profiles.profile(first["cold"]), "rerun": profiles.profile(first["rerun"]),
                        "rerun_mitogen": profiles.profile(first["mitogen"])}}
        how_floor = (f"reference = Ansible floor: the re-run's {len(floor_plays)} plays on the same hosts, each with as many "
                     f"tasks as it executed there ({floor_tasks} host-tasks in all), every task `command: /bin/true`, "
                     "measured right after each run's re-run")
        of_runs = f"median of {len(runs)} runs on hosts created again for each" if len(runs) > 1 else "one run"
        self.add_row("converge_cold", "Cold converge (site.yml on bare hosts)", "s", round(cold_s, 1), round(floor_s, 1),
                     conditions=f"5 hosts, {host_tasks(first['cold'])} host-tasks ok/changed; {of_runs}; host creation "
                                f"from the base image {median([r['create_s'] for r in runs]):.0f} s, not included; "
                                f"{load_range(load_cold)} (floor {load_range(load_floor)})",
                     how=f"wall time of `ansible-playbook site.yml` on hosts just created; {how_floor}",
                     per_run=[ratio(r["cold_s"], r["floor_s"]) for r in runs])
        changed_text = "" if not any(changed) else "; CHANGED: " + ", ".join(
            t for r in runs for t in self.changed_tasks(r["rerun"]))[:400]
        self.add_row("converge_rerun", f"Idempotent re-run (changed = {max(changed)})", "s", round(rerun_s, 1),
                     round(floor_s, 1),
                     conditions=f"{host_tasks(first['rerun'])} host-tasks ok/changed; {of_runs}, changed per run "
                                f"{changed}{changed_text}; {load_range(load_rerun)} (floor {load_range(load_floor)})",
                     how=f"wall time of `ansible-playbook site.yml` right after the cold converge, changed count summed "
                         f"over the recap's hosts (must be 0); {how_floor}",
                     per_run=[ratio(r["rerun_s"], r["floor_s"]) for r in runs])
        docker_changed = changed_count(first["docker"])
        self.add_row("converge_rerun_ssh_vs_docker", "Idempotent re-run over SSH as deploy + sudo", "s",
                     round(first["rerun_s"], 1), round(first["docker_s"], 1),
                     conditions=f"changed = {changed[0]} over SSH, {docker_changed} through docker; first converge run; "
                                f"{load_range(first['load']['rerun'])} (docker {load_range(first['load']['rerun_docker'])})",
                     how="reference = the same `ansible-playbook site.yml` re-run right after, through the docker "
                         "connection as root (ansible_connection=community.docker.docker, ansible_host=lab_container; "
                         "the plays' become is then root to root): the cost of reaching the hosts like VMs (SSH with ControlPersist and pipelining, "
                         "sudo)")
        mitogen_changed = changed_count(first["mitogen"])
        self.add_row("converge_rerun_mitogen", f"Idempotent re-run through Mitogen (changed = {mitogen_changed})", "s",
                     round(first["mitogen_s"], 1), round(first["floor_s"], 1),
                     conditions=f"{host_tasks(first['mitogen'])} host-tasks ok/changed; first converge run, where the "
                                f"plain re-run took {first['rerun_s']:.1f} s ({ratio(first['mitogen_s'], first['rerun_s'])} "
                                f"of it); {load_range(first['load']['rerun_mitogen'])} (floor "
                                f"{load_range(first['load']['floor'])})",
                     how="the same `ansible-playbook site.yml` re-run over SSH as deploy + sudo with "
                         "ANSIBLE_STRATEGY=mitogen_linear (plugins/strategy); reference = the Ansible floor of the plain "
                         "strategy, as for converge_rerun")

    def floor_playbook(self, rerun: dict, suffix: str = "") -> tuple[Path, list[dict]]:
        """The re-run's plays on the same hosts with as many no-op tasks as each play executed (tasks skipped on
        every host left out)."""
        plays = []
        for play in rerun["plays"]:
            hosts: set[str] = set()
            tasks = 0
            for task in play["tasks"]:
                ran = {host for host, result in task["hosts"].items() if not result.get("skipped")}
                if ran:
                    tasks += 1
                    hosts |= ran
            if tasks:
                plays.append({"name": play["play"]["name"], "hosts": sorted(hosts), "tasks": tasks})
        book = [{"name": f"Floor | {p['name']}", "hosts": ":".join(p["hosts"]), "gather_facts": False,
                 "become": "localhost" not in p["hosts"],  # as site.yml's plays on the lab hosts
                 "tasks": [{"name": f"No-op {i}", "ansible.builtin.command": "/bin/true", "changed_when": False}
                           for i in range(p["tasks"])]} for p in plays]
        path = self.work / f"floor{suffix}.yml"
        path.write_text(json.dumps(book, indent=1), encoding="utf-8")  # JSON is YAML
        return path, plays

    # -- 2. inject ----------------------------------------------------------------------------------
    def bench_inject(self) -> None:
        print(f"Inject throughput ({self.args.runs} runs)")
        runs = []
        for n in range(1, self.args.runs + 1):
            start, stop = day(INJECT_DAYS_AGO + n)
            lines = self.work / f"inject-ref-r{n}.lp"
            with open(lines, "w", encoding="utf-8") as handle:
                for station, ts, values in window_points(self.inject_mod, INJECT_STATIONS, start, stop):
                    handle.write(self.inject_mod.line(f"bench_ref_{self.tag}_r{n}", station, ts, values) + "\n")
            out = self.work / f"inject-r{n}.json"
            load = loadavg()
            self.playbook("bench/playbooks/inject.yml", f"inject-r{n}", {
                "bench_run": n, "bench_tag": self.tag, "bench_order": ["ref", "ours"] if n % 2 else ["ours", "ref"],
                "bench_ref_lines": str(lines),
                "bench_out": str(out), "bench_inject_start": start, "bench_inject_stop": stop,
                "bench_inject_stations": INJECT_STATIONS, "bench_inject_interval": f"{WINDOW_INTERVAL_S}s",
                "bench_batch_size": INJECT_BATCH})
            lines.unlink()
            result = json.loads(out.read_text(encoding="utf-8"))
            ours, ref = result["ours"], result["ref"]
            if ours["points_written"] != ref["points"]:
                raise StepFailed(f"run {n}: weather_inject wrote {ours['points_written']} points, the reference {ref['points']}")
            points = ref["points"]
            runs.append({"run": n, "order": result["order"], "window": [start, stop], "points": points,
                         "loadavg": [load, loadavg()],
                         "ours_task_s": round(ours["task_wall_s"], 3), "ours_write_s": ours["duration"],
                         "ref_task_s": round(ref["task_wall_s"], 3), "ref_write_s": ref["seconds"],
                         "ours_task_rate": round(points / ours["task_wall_s"], 1), "ours_write_rate": ours["rate"],
                         "ref_task_rate": round(points / ref["task_wall_s"], 1), "ref_write_rate": ref["rate"]})
        self.details["inject"] = {"runs": runs}
        conditions = (f"{runs[0]['points']:,} points per run and side ({INJECT_STATIONS} stations x 1 day at 1/min, "
                      f"4 float fields), batches of {INJECT_BATCH}; median of {len(runs)} runs, order alternated; "
                      f"{load_range([x for r in runs for x in r['loadavg']])}")
        reference = ("reference = the same points (made on the controller by weather_inject's own simulation, another "
                     "measurement name) written by a plain influxdb-client synchronous batched write (bench/scripts/"
                     "influx_write_ref.py), same pipeline host, same InfluxDB, HTTPS with the CA, same inject token")
        self.throughput_rows(runs, (
            ("inject_task", "Inject throughput, whole Ansible task", "ours_task_rate", "ref_task_rate",
             "points / wall time of the task, taken on the controller around it (ours: read the window back, simulate, "
             f"write; reference: read its file, write); {reference}"),
            ("inject_write", "Inject throughput, write loop only", "ours_write_rate", "ref_write_rate",
             f"points / seconds of the write loop as each program reports it (weather_inject's rate); {reference}"),
        ), "points/s", conditions)

    # -- 3. produce ---------------------------------------------------------------------------------
    def record_sizes(self) -> tuple[float, float]:
        """Mean key and value sizes (bytes) of the messages influx_to_kafka makes of a produce window's points."""
        keys, values = [], []
        for station, ts, fields in window_points(self.inject_mod, PRODUCE_STATIONS, *day(PRODUCE_DAYS_AGO + 1)):
            point = {"time_ns": ts * 10**9, "key": station, "measurement": "weather", "tags": {"station": station},
                     "fields": fields}
            key, value = self.producer_mod.message_for(point, "station")
            keys.append(len(key.encode()))
            values.append(len(value.encode()))
        return statistics.mean(keys), statistics.mean(values)

    def bench_produce(self) -> None:
        print(f"Producer throughput ({self.args.runs} runs)")
        mean_key, mean_value = self.record_sizes()
        size = round(mean_key + mean_value)
        points = PRODUCE_STATIONS * 86400 // WINDOW_INTERVAL_S
        runs = []
        for n in range(1, self.args.runs + 1):
            start, stop = day(PRODUCE_DAYS_AGO + n)
            out = self.work / f"produce-r{n}.json"
            load = loadavg()
            self.playbook("bench/playbooks/produce.yml", f"produce-r{n}", {
                "bench_run": n, "bench_tag": self.tag, "bench_order": produce_order(n),
                "bench_out": str(out), "bench_record_size": size, "bench_produce_start": start, "bench_produce_stop": stop,
                "bench_produce_stations": PRODUCE_STATIONS, "bench_produce_interval": f"{WINDOW_INTERVAL_S}s",
                "bench_points": points})
            result = json.loads(out.read_text(encoding="utf-8"))
            ours, alt, ref = result["ours"], result["alt"], result["ref"]
            clients = result["clients"]
            tool = self.parse_producer_performance(ref["stdout"])
            if tool["records"] != points or ours["messages"] != points or alt["messages"] != points:
                raise StepFailed(f"run {n}: influx_to_kafka sent {ours['messages']} ({clients['ours']}) and "
                                 f"{alt['messages']} ({clients['alt']}), ProducerPerformance {tool['records']}, expected {points}")
            runs.append({"run": n, "order": result["order"], "window": [start, stop], "messages": points,
                         "loadavg": [load, loadavg()], "clients": clients, "ours_batches": ours["batches"],
                         "ours_task_s": round(ours["task_wall_s"], 3), "ours_module_s": ours["duration"],
                         "alt_task_s": round(alt["task_wall_s"], 3), "alt_module_s": alt["duration"],
                         "ref_task_s": round(ref["task_wall_s"], 3), "ref_tool": tool,
                         "ours_task_rate": round(points / ours["task_wall_s"], 1), "ours_module_rate": ours["rate"],
                         "alt_task_rate": round(points / alt["task_wall_s"], 1), "alt_module_rate": alt["rate"],
                         "ref_task_rate": round(points / ref["task_wall_s"], 1), "ref_tool_rate": tool["rate"]})
        self.details["produce"] = {"record_size": {"bytes": size, "mean_key": round(mean_key, 1),
                                                   "mean_value": round(mean_value, 1)}, "runs": runs}
        conditions = (f"{points:,} messages per run and side of {size} B (key {mean_key:.0f} + JSON value {mean_value:.0f}); "
                      f"topics 4 partitions, RF 3, min ISR 2; median of {len(runs)} runs, order rotated (reference, ours, other client); "
                      f"{load_range([x for r in runs for x in r['loadavg']])}")
        reference = ("reference = org.apache.kafka.tools.ProducerPerformance (the brokers' Kafka version, from the artifact "
                     "store) on the same pipeline host, as a bench principal on a bench topic with the weather topic's "
                     "partitions/RF/configs, same SASL_SSL SCRAM-SHA-512 and CA, same producer settings (acks=all, "
                     "idempotence, max in flight 5, linger.ms 20, no compression), unkeyed records of our mean size; "
                     "ours = influx_to_kafka with playbooks/produce.yml's settings (topic weather, producer principal, "
                     f"the pipeline role's batch_size and Kafka client library, {clients['ours']}) publishing a day of fresh "
                     "points written just before, from its own checkpoint")
        alt_client = f"the same influx_to_kafka run with the other Kafka client library ({clients['alt']}, kafka_client)"
        self.throughput_rows(runs, (
            ("produce_task", "Producer throughput, whole Ansible task", "ours_task_rate", "ref_task_rate",
             f"messages / wall time of the task, taken on the controller (the reference's includes the JVM start); {reference}"),
            ("produce_tool", "Producer throughput, as each program reports it", "ours_module_rate", "ref_tool_rate",
             "ours: influx_to_kafka's rate (module start to end: connects, InfluxDB queries, sends, journal and "
             f"checkpoint writes); reference: ProducerPerformance's records/sec (first send to last ack); {reference}"),
            ("produce_task_alt", f"Producer throughput, whole Ansible task, with {clients['alt']}", "alt_task_rate",
             "ref_task_rate", f"as the whole-task row, ours = {alt_client}"),
            ("produce_tool_alt", f"Producer throughput, as each program reports it, with {clients['alt']}",
             "alt_module_rate", "ref_tool_rate", f"as the as-reported row, ours = {alt_client}"),
        ), "msg/s", conditions)

    @staticmethod
    def parse_producer_performance(stdout: str) -> dict:
        pattern = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                             r"([\d.]+) ms max latency(?:, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th)?")
        matches = [m for m in (pattern.search(line) for line in stdout.splitlines()) if m]
        if not matches:
            raise StepFailed(f"no summary line in ProducerPerformance's output: {stdout[-300:]}")
        m = matches[-1]
        return {"records": int(m.group(1)), "rate": float(m.group(2)), "mb_per_s": float(m.group(3)),
                "avg_latency_ms": float(m.group(4)), "max_latency_ms": float(m.group(5)),
                "p50_ms": int(m.group(6)) if m.group(6) else None, "p99_ms": int(m.group(8)) if m.group(8) else None}

    # -- 4. the live producer service: end-to-end latency and backlog catch-up ----------------------
    def bench_latency(self) -> None:
        print(f"Live producer service: end-to-end latency ({self.args.latency_duration} s of streaming) and catch-up "
              f"({self.args.catchup_points} points)")
        mean_key, mean_value = self.record_sizes()
        size = round(mean_key + mean_value)
        load = loadavg()
        self.playbook("bench/playbooks/latency.yml", "latency", {
            "bench_out_dir": str(self.work), "bench_record_size": size,
            "bench_latency_duration": self.args.latency_duration, "bench_catchup_points": self.args.catchup_points})
        run = json.loads((self.work / "latency.json").read_text(encoding="utf-8"))
        summary = self.latency_summary(run)
        client = run.get("service_kafka_client", "kafka-python")
        summary["service_kafka_client"] = client
        self.details["latency"] = summary
        conditions = (f"{summary['points_written']} points ({summary['stations']} stations x 1/s for "
                      f"{summary['duration_s']:.0f} s); service: {summary['lost']} not delivered within "
                      f"{summary['drain_s']:.0f} s, {summary['duplicates']} duplicates; reference: "
                      f"{summary['reference_lost']} not delivered; poll interval and stop lag of the lab's service; "
                      f"{load_range(summary['loadavg'])}")
        how = ("per point, t_recv - t_ack: t_ack = the writer's clock when InfluxDB answered (HTTP 204) the write "
               "holding the point, t_recv = a consumer's clock when poll() handed over its record (matched by the "
               "message id measurement/station/time_ns); ours: isobar-producer.service (polls InfluxDB, acks=all, "
               f"idempotent, checkpointed, sends with {client}) to the weather topic; reference: the writer's own loop sending the same "
               "points with kafka-python (acks=all, idempotent, flushed) to the bench topic right after the write "
               "(issue 15's plain streaming program); writer, service and consumers on the pipeline host, one clock, "
               "the same points for both. Goal: service p99 <= 0.5 s")
        for key, name in (("latency_p50", "p50"), ("latency_p99", "p99")):
            ours, ref_value = summary["service"][f"{name}_s"], summary["reference"][f"{name}_s"]
            self.add_row(key, f"End-to-end latency {name}, InfluxDB write -> Kafka delivery (live service)", "s",
                         round(ours, 3) if ours is not None else None,
                         round(ref_value, 3) if ref_value is not None else None, conditions=conditions, how=how)
        if not self.args.catchup_points:
            return
        catchup = run.get("catchup") or {}
        ref_out = json.loads((self.work / "catchup_reference.json").read_text(encoding="utf-8"))
        tool = self.parse_producer_performance(ref_out["stdout"])
        summary["catchup"] = dict(catchup, reference=tool, record_size=size)
        if not catchup.get("complete"):
            raise StepFailed(f"catch-up: the service delivered {catchup.get('received')} of {catchup.get('points')} "
                             f"points within {run['settings']['catchup_timeout']:.0f} s")
        self.add_row("catchup", "Backlog catch-up of the live producer service", "msg/s",
                     round(catchup["rate_from_start"], 1), tool["rate"],
                     conditions=(f"{catchup['points']:,} points of {catchup['stations']} stations written while the "
                                 f"service was stopped; {size} B per message (key {mean_key:.0f} + JSON value "
                                 f"{mean_value:.0f}); first delivered to last: {catchup['rate_first_to_last']:,.0f} "
                                 f"msg/s; {load_range([load, loadavg()])}"),
                     how=("ours: the points / (last delivered - systemctl start), so it includes the service's start, "
                          f"connections and InfluxDB queries (the service sends with {client}); reference: ProducerPerformance's records/sec for as many "
                          "records of our mean size (bench principal, bench topic, acks=all, idempotence, linger.ms "
                          "20), run right after. Goal: >= 0.7"))

    @staticmethod
    def latency_summary(run: dict) -> dict:
        """Percentiles of both paths over the same points, what each lost or doubled."""
        points, settings = run["points"], run["settings"]
        ours = [(p["t_recv"] - p["t_ack"]) / 1e9 for p in points if p["t_recv"] is not None]
        ref = [(p["t_ref_recv"] - p["t_ack"]) / 1e9 for p in points if p["t_ref_recv"] is not None]
        write_ack = [(p["t_ack"] - p["t_point"]) / 1e9 for p in points]

        def stats(values: list[float]) -> dict:
            return {"p50_s": percentile(values, 0.50), "p99_s": percentile(values, 0.99),
                    "max_s": max(values, default=None), "mean_s": statistics.mean(values) if values else None}

        return {"points_written": len(points), "stations": settings["stations"], "duration_s": settings["duration"],
                "drain_s": settings["drain"], "lost": len(points) - len(ours), "reference_lost": len(points) - len(ref),
                "duplicates": run["consumers"]["service"]["duplicates"],
                "reference_duplicates": run["consumers"]["reference"]["duplicates"],
                "consumer_errors": {k: v["error"] for k, v in run["consumers"].items() if v["error"]},
                "service": stats(ours), "reference": stats(ref),
                "influxdb_write_ack_s": {"p50": percentile(write_ack, 0.50), "p99": percentile(write_ack, 0.99)},
                "loadavg": [run["loadavg_start"][0], run["loadavg_end"][0]], "settings": settings}

    # -- 5. failover drill --------------------------------------------------------------------------
    # -- 5. what scraping the brokers costs -----------------------------------------------------------
    def switch_agent(self, on: bool) -> None:
        """The brokers with the JMX exporter agent on or off: the kafka play, which restarts them one at a time."""
        self.playbook("playbooks/kafka.yml", f"agent-{'on' if on else 'off'}-{len(self.agent_switches)}",
                      {"kafka_jmx_exporter_enabled": on})
        self.agent_switches.append(on)

    def bench_scrape(self) -> None:
        """Produce throughput of the brokers with the agent on (Prometheus scraping it every scrape interval) and off,
        same run, order alternated; ratio = on / off (issue 17 asks >= 0.95)."""
        print(f"Scraping cost: brokers' produce throughput, JMX exporter agent on vs off ({self.args.runs} runs)")
        key, measure = "scrape_cost", "Brokers' produce throughput, JMX exporter agent on and scraped vs off"
        if not (self.src / "bench" / "playbooks" / "scrape.yml").exists():
            self.not_measured(key, measure, "msg/s", "bench/playbooks/scrape.yml is not in the measured commit")
            return
        records = self.args.scrape_records
        mean_key, mean_value = self.record_sizes()
        size = round(mean_key + mean_value)
        self.agent_switches, restarts = [], 0
        runs, state = [], True
        try:
            self.switch_agent(True)  # the inventory's setting (on in the lab); no restart when it already is
            for n in range(1, self.args.runs + 1):
                order = [True, False] if state else [False, True]
                rates, load = {}, [loadavg()]
                for on in order:
                    # Every measurement comes right after the same plain rolling restart, switch or not: brokers fresh
                    # from a restart were up to 45 % slower whatever the agent, and the agent switch's kafka play
                    # (86 s, more time after the last restart) left them warmer than rolling-restart.yml (45 s) did.
                    if on != state:
                        self.switch_agent(on)
                        state = on
                    restarts += 1
                    self.playbook("playbooks/rolling-restart.yml", f"scrape-r{n}-restart-{'on' if on else 'off'}")
                    out = self.work / f"scrape-r{n}-{'on' if on else 'off'}.json"
                    self.playbook("bench/playbooks/scrape.yml", f"scrape-r{n}-{'on' if on else 'off'}", {
                        "bench_agent": on, "bench_out": str(out), "bench_points": records,
                        "bench_warmup_points": max(records // 4, 1000),
                        "bench_record_size": size})
                    result = json.loads(out.read_text(encoding="utf-8"))
                    tool = self.parse_producer_performance(result["stdout"])
                    if tool["records"] != records:
                        raise StepFailed(f"run {n}: ProducerPerformance sent {tool['records']}, expected {records}")
                    rates["on" if on else "off"] = tool
                load.append(loadavg())
                runs.append({"run": n, "order": ["on" if o else "off" for o in order], "loadavg": load,
                             "on_rate": rates["on"]["rate"], "off_rate": rates["off"]["rate"],
                             "on_p99_ms": rates["on"]["p99_ms"], "off_p99_ms": rates["off"]["p99_ms"]})
        finally:
            if not state:
                self.switch_agent(True)  # leave the lab as its inventory says
        self.details["scrape"] = {"records": records, "record_size": size, "runs": runs,
                                  "agent_switches": len(self.agent_switches), "plain_restarts": restarts}
        self.throughput_rows(runs, ((
            key, measure, "on_rate", "off_rate",
            "ProducerPerformance (acks=all, idempotence, linger.ms 20) as the bench principal on the reference topic "
            "(the weather topic's partitions, RF 3, min ISR 2), run on the producer host after a preferred leader "
            "election and a discarded warm-up run of a quarter of the records; ours = the brokers with the JMX exporter agent (kafka_jmx_exporter_enabled, the lab's setting) "
            "while the monitor's Prometheus scrapes it every 15 s; reference = the same brokers with the agent off "
            "(playbooks/kafka.yml -e kafka_jmx_exporter_enabled=false: a rolling restart), same run, order "
            "alternated, every measurement right after playbooks/rolling-restart.yml (after the switch when there is one); "
            "issue 17 asks ratio >= 0.95"),), "msg/s",
            f"{records:,} records of {size} B per measurement; median of {len(runs)} runs; "
            f"{len(self.agent_switches)} agent switches and {restarts} plain rolling restarts; "
            f"{load_range([x for r in runs for x in r['loadavg']])}")

    def bench_failover(self) -> None:
        print(f"Failover drill (playbooks/broker-failover.yml, {FAILOVER_BROKER})")
        window_row = ("failover_window", "Failover drill: unavailability window, one broker down", "s")
        loss_row = ("failover_loss", "Failover drill: acknowledged messages lost", "messages")
        if not (self.src / "playbooks" / "broker-failover.yml").exists():
            for row in (window_row, loss_row):
                self.not_measured(*row, "playbooks/broker-failover.yml is not in the measured commit")
            return
        report_path = self.work / "failover.json"
        load = [loadavg()]
        error = None
        try:
            self.playbook("playbooks/broker-failover.yml", "failover",
                          {"failover_broker": FAILOVER_BROKER, "failover_report_path": str(report_path)})
        except StepFailed as exc:
            error = str(exc)
        load.append(loadavg())
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
            one = report["one_broker_down"]
            window = one["unavailability_window_s"]
            stalls = one["unavailability"]
            messages = one["messages"] or {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            why = f"the drill gave no usable report ({type(exc).__name__}: {exc}){'; ' + error if error else ''}"
            for row in (window_row, loss_row):
                self.not_measured(*row, why)
            return
        failed_checks = [c["name"] for c in report.get("checks", []) if not c.get("ok")]
        self.details["failover"] = {"report": str(report_path), "passed": report.get("passed"), "error": error,
                                    "failed_checks": failed_checks, "one_broker_down": one}
        verdict = "drill passed" if report.get("passed") else f"DRILL FAILED ({error or ', '.join(failed_checks)})"
        conditions = (f"{report.get('mode')} stop of {report.get('broker')}, down {one.get('down_for_s')} s, "
                      f"{report.get('rate_per_s')} msg/s acks=all idempotent on a {report.get('partitions')}-partition "
                      f"RF 3 topic; leaders moved after {one.get('all_partitions_led_after_s')} s, max ack wait "
                      f"{stalls.get('max_ack_wait_s')} s, full ISR {one.get('time_to_full_isr_s')} s after the restart; "
                      f"{verdict}; {load_range(load)}")
        drill = "playbooks/broker-failover.yml -e failover_broker=kafka2 (service mode) on the bench lab, its JSON report"
        if window is None:
            self.not_measured(*window_row, f"the drill reported no window; {conditions}")
        else:
            self.add_row(*window_row, window, stalls.get("baseline_p99_ack_wait_s"), conditions=conditions,
                         how=f"{drill}: one_broker_down.unavailability_window_s = the longest span, merged where they "
                             f"overlap, of [send, ack] of the acks=all sends that waited over "
                             f"{stalls.get('stall_threshold_s')} s (0 when none did); reference = the same run's p99 ack "
                             "wait before the stop")
        self.add_row(*loss_row, messages.get("acked_missing_from_topic"), 0, conditions=(
                         f"sent {messages.get('sent')}, acked {messages.get('acked')}, consumed {messages.get('consumed')}, "
                         f"failed {messages.get('failed')}; {verdict}"),
                     how=f"{drill}: messages acknowledged by Kafka that its consumer did not read back "
                         "(acked_missing_from_topic); reference = 0, what acks=all with min ISR 2 promises")

    # -- 6. make test's wall time -----------------------------------------------------------------------
    def bench_tests(self) -> None:
        """Rows of the last warm `make test` of this checkout (no lab: make test timed itself)."""
        path = Path(self.args.test_timings) if self.args.test_timings else TEST_TIMINGS
        print(f"make test wall time per phase (from {path})")
        try:
            timings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.not_measured("make_test_total", "Warm make test (lint + unit + integration + Molecule)", "s",
                              f"no readable {path} ({type(exc).__name__}): run make test first")
            return
        try:
            rows = test_time_rows(timings, self.commit)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.not_measured("make_test_total", "Warm make test (lint + unit + integration + Molecule)", "s",
                              f"{path} is not make test's timings ({type(exc).__name__}: {exc})")
            return
        self.details["make_test"] = timings
        for row in rows:
            key, measure, unit, ours, ref = (row.pop(k) for k in ("key", "measure", "unit", "ours", "reference"))
            self.add_row(key, measure, unit, ours, ref, **row)

    # -- results ------------------------------------------------------------------------------------
    @staticmethod
    def fmt(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    def table(self) -> str:
        lines = ["| Measure | Unit | Ours | Reference | Ratio ours/ref | Conditions |", "|---|---|---:|---:|---:|---|"]
        for row in self.rows:
            ours = self.fmt(row["ours"]) if row["status"] == "measured" else "not measured"
            per_run = row.get("per_run_ratios") or []
            spread = f" ({', '.join(self.fmt(r) for r in per_run)})" if len(per_run) > 1 else ""
            lines.append(f"| {row['measure']} | {row['unit']} | {ours} | {self.fmt(row['reference'])} | "
                         f"{self.fmt(row['ratio'])}{spread} | {row['conditions'].replace('|', '/')} |")
        return "\n".join(lines)

    def write_results(self, errors: list[str]) -> None:
        meta = {"started": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "commit": self.commit, "tree": "working tree" if self.args.working_tree else "clean export of the commit",
                "cpus": os.cpu_count(), "runs": self.args.runs, "converge_runs": self.args.converge_runs, "raw_logs": str(self.work), "errors": errors,
                "note": f"{os.cpu_count()} shared cores: other labs and tests ran beside the bench (see the load averages); "
                        "ratios against references measured beside ours in the same run are what count, absolute "
                        "figures are this machine's at this time."}
        table = self.table()
        out_dir = Path(self.args.results_dir) if self.args.results_dir else RESULTS
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = out_dir / self.started.strftime("%Y-%m-%d")
        document = {"meta": meta, "rows": self.rows, "details": self.details}
        stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        md = [f"# Isobar bench, {meta['started']}", "",
              f"Commit `{self.commit}` ({meta['tree']}), {meta['cpus']} CPUs; throughput rows: median of {self.args.runs} "
              f"runs, converge rows: median of {self.args.converge_runs} cold converges and their re-runs; per-run "
              f"ratios in brackets. {meta['note']}", "", table, ""]
        if errors:
            md += ["## Errors", ""] + [f"- {e}" for e in errors] + [""]
        profile = self.details.get("converge", {}).get("profile")
        if profile:
            md += ["## Where the converge time goes (first converge run, bench/profile.py)", ""]
            for key, title in (("cold", "Cold converge"), ("rerun", "Idempotent re-run"),
                               ("rerun_mitogen", "Idempotent re-run through Mitogen")):
                md += profiles.markdown(title, profile[key])
        md += ["## How each figure is measured", ""]
        md += [f"- **{row['measure']}**: {row['how']}." for row in self.rows if row["how"]]
        md += ["", f"Raw figures of every run: `{stem.name}.json` next to this file. Ratio = ours / reference: below 1 "
                   "is slower for throughput, above 1 is slower for times and latencies.", ""]
        stem.with_suffix(".md").write_text("\n".join(md), encoding="utf-8")
        try:  # the picture of the ratios next to the JSON (bench/charts.py)
            charts.render_bench(document, stem.with_suffix(".png"))
        except ValueError as exc:  # no ratio measured: no picture, said so
            print(f"No chart: {exc}")
        print("\n" + table + "\n")
        print(f"Results: {stem}.json, {stem}.md, {stem}.png; raw logs: {self.work}")

    # -- the whole run ------------------------------------------------------------------------------
    def run(self) -> int:
        errors: list[str] = []
        steps = self.args.only or STEPS
        try:
            lab_ready = True
            if not set(steps) & LAB_STEPS:
                pass  # nothing to measure on a lab
            elif self.args.reuse_lab:
                if "converge" in steps:
                    for key, name in (("converge_cold", "Cold converge"), ("converge_rerun", "Idempotent re-run")):
                        self.not_measured(key, name, "s", "--reuse-lab: the bench lab was not created by this run")
            else:
                print("Bench lab: removing leftovers of an earlier bench run")
                self.playbook("bench/destroy.yml", "destroy-before")
                try:
                    if "converge" in steps:
                        self.bench_converge()
                    else:
                        self.playbook("bench/create.yml", "create")
                        self.playbook("site.yml", "converge")
                except StepFailed as exc:
                    errors.append(f"converge: {exc}")
                    lab_ready = False
            if lab_ready and set(steps) & (LAB_STEPS - {"converge"}):
                print("Bench setup: reference topic and principal, scripts, Kafka's tools")
                self.playbook("bench/playbooks/setup.yml", "setup")
                for step, method in (("inject", self.bench_inject), ("produce", self.bench_produce),
                                     ("latency", self.bench_latency), ("scrape", self.bench_scrape),
                                     ("failover", self.bench_failover)):
                    if step in steps:
                        try:
                            method()
                        except StepFailed as exc:
                            errors.append(f"{step}: {exc}")
                            print(f"    {step} not measured: {exc}")
        except StepFailed as exc:
            errors.append(str(exc))
        except KeyboardInterrupt:
            errors.append("interrupted")
        finally:
            if "tests" in steps:
                self.bench_tests()
            if not self.args.keep_lab and set(steps) & LAB_STEPS:
                print("Bench lab: destroying it")
                try:
                    self.playbook("bench/destroy.yml", "destroy-after")
                except StepFailed as exc:
                    errors.append(f"destroy: {exc}")
        self.write_results(errors)
        return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Isobar benchmark on a private bench lab (bench/README.md).")
    parser.add_argument("--runs", type=int, default=3, help="runs of each throughput figure (median), default 3")
    parser.add_argument("--converge-runs", type=int, default=3,
                        help="cold converges (hosts created again for each) and their re-runs (median), default 3")
    parser.add_argument("--scrape-records", type=int, default=SCRAPE_RECORDS,
                        help=f"records of each scraping-cost measurement, default {SCRAPE_RECORDS:,}")
    parser.add_argument("--latency-duration", type=int, default=120, help="seconds of streaming, default 120")
    parser.add_argument("--catchup-points", type=int, default=50000,
                        help="backlog of the live service's catch-up, default 50000 (0: none)")
    parser.add_argument("--only", nargs="+", choices=STEPS, help="measure only these (the lab is still converged)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the bench lab running at the end")
    parser.add_argument("--reuse-lab", action="store_true",
                        help="measure on the bench lab left by --keep-lab (no create, no converge rows)")
    parser.add_argument("--results-dir", help="write <date>.json/.md there instead of bench/results/")
    parser.add_argument("--commit", default="HEAD", help="commit to measure (from a clean export), default HEAD")
    parser.add_argument("--test-timings", help=f"make test's timings to report, default {TEST_TIMINGS.relative_to(ROOT)}")
    parser.add_argument("--working-tree", action="store_true",
                        help="measure the working tree as it is (uncommitted edits included) instead of a commit")
    args = parser.parse_args()
    if not 1 <= args.runs <= MAX_RUNS:
        parser.error(f"--runs must be between 1 and {MAX_RUNS}")
    if not 1 <= args.converge_runs <= MAX_RUNS:
        parser.error(f"--converge-runs must be between 1 and {MAX_RUNS}")
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
