#!/usr/bin/env python3
"""Isobar benchmark: converge, inject, produce, end-to-end latency and failover figures of the pipeline,
each next to a reference measured in the same run on the same machine, as ratios.

One command (`make bench` or `bench/run`) brings up a private bench lab (bench/inventory: containers
isobar-bench-*, network isobar-bench, 172.30.30.0/24, environment bench), measures, prints a markdown table,
writes bench/results/<date>.json and .md, and destroys the bench lab. Raw logs stay under
$ISOBAR_CACHE/bench/<time>/. The dev lab (inventories/lab) and the test lab (isobar-test-*) are never touched.
See bench/README.md for what each figure is.
"""
from __future__ import annotations

import argparse
import datetime
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

# Workload sizes (also in the table's conditions).
INJECT_STATIONS = 100  # x one day at 1 point/min = 144,000 points per run and side
PRODUCE_STATIONS = 20  # x one day at 1 point/min = 28,800 messages per run and side
WINDOW_INTERVAL_S = 60
FAILOVER_BROKER = "kafka2"


# -- small helpers -----------------------------------------------------------------------------------
def loadavg() -> list[float]:
    with open("/proc/loadavg", encoding="ascii") as handle:
        return [float(x) for x in handle.read().split()[:3]]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (the value below which `fraction` of the samples lie)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ratio(ours: float | None, ref: float | None) -> float | None:
    return round(ours / ref, 3) if ours is not None and ref else None


def day(n: int, year: int) -> tuple[str, str]:
    """RFC 3339 start and stop of the n-th day of January of `year` (one window per run)."""
    start = datetime.datetime(year, 1, n, tzinfo=datetime.timezone.utc)
    return (start.strftime("%Y-%m-%dT%H:%M:%SZ"), (start + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))


def load_project_modules(src: Path):
    """weather_inject (simulation, line protocol) and pipeline_producer (message format), as the unit tests do."""
    import ansible.module_utils  # noqa: PLC0415 - the venv's ansible, extended with our module_utils

    ansible.module_utils.__path__.append(str(src / "plugins" / "module_utils"))
    spec = importlib.util.spec_from_file_location("weather_inject", src / "plugins" / "modules" / "weather_inject.py")
    inject = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inject)
    from ansible.module_utils import pipeline_producer  # noqa: PLC0415

    return inject, pipeline_producer


class StepFailed(Exception):
    """A bench step failed; the message says which and where its log is."""


# -- the bench ---------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.started = datetime.datetime.now(datetime.timezone.utc)
        cache = os.environ.get("ISOBAR_CACHE") or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "isobar")
        self.work = Path(cache) / "bench" / self.started.strftime("%Y%m%dT%H%M%SZ")
        self.work.mkdir(parents=True, exist_ok=True)
        self.src, self.commit = self.source(Path(cache) / "bench" / "src")
        self.rows: list[dict] = []
        self.details: dict = {}
        self.env = dict(os.environ, ANSIBLE_CONFIG=str(self.src / "ansible.cfg"),
                        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        self.inject_mod, self.producer_mod = load_project_modules(self.src)

    def source(self, export: Path) -> tuple[Path, str]:
        """The tree measured: a clean export of a commit (default HEAD; others' uncommitted edits in a shared
        working tree must not decide the figures), or the working tree itself with --working-tree. The export is
        kept at one place because the bench lab's vault copy and generated secrets live in its bench/inventory:
        --reuse-lab measures with the export the lab was converged from."""
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

        if self.args.working_tree:
            return ROOT, git("rev-parse", "HEAD") + ("+working-tree" if git("status", "--porcelain") else "")
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
                 env: dict | None = None) -> tuple[float, dict | None]:
        """Run one playbook (path relative to the measured tree) on the bench lab; returns (wall seconds, the json
        callback's report when report=True). Output goes to <work>/<name>.log (or .json); a failure raises
        StepFailed with the failed tasks."""
        command = [str(VENV_BIN / "ansible-playbook"), str(playbook), "-i", "bench/inventory"]
        if extra:
            command += ["-e", json.dumps(extra)]
        run_env = dict(self.env, **(env or {}))
        if report:
            run_env.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="",
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
                data = None
        if rc != 0:
            raise StepFailed(f"{Path(playbook).name} failed (rc {rc}): {self.failures(data) if data else ''} log: {out}")
        return seconds, data

    @staticmethod
    def failures(report: dict) -> str:
        found = []
        for play in report.get("plays", []):
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    if result.get("failed") or result.get("unreachable"):
                        found.append(f"{task['task']['name']} on {host}: {str(result.get('msg', ''))[:300]}")
        return "; ".join(found[:3])

    @staticmethod
    def changed_tasks(report: dict) -> list[str]:
        return [f"{task['task']['name']} ({host})" for play in report.get("plays", []) for task in play.get("tasks", [])
                for host, result in task.get("hosts", {}).items() if result.get("changed")]

    def add_row(self, **row) -> None:
        row.setdefault("status", "measured")
        self.rows.append(row)

    def not_measured(self, key: str, measure: str, unit: str, why: str) -> None:
        self.add_row(key=key, measure=measure, unit=unit, ours=None, reference=None, ratio=None,
                     status="not measured", conditions=why)

    # -- 1. converge --------------------------------------------------------------------------------
    def bench_converge(self) -> None:
        print("Converge (cold, idempotent re-run, Ansible floor)")
        load_before = loadavg()
        create_s, _ = self.playbook("bench/create.yml", "create")
        cold_s, cold = self.playbook("site.yml", "converge-cold", report=True)
        load_cold = loadavg()
        rerun_s, rerun = self.playbook("site.yml", "converge-rerun", report=True)
        load_rerun = loadavg()
        floor_book, floor_plays = self.floor_playbook(rerun)
        floor_s, _ = self.playbook(floor_book, "converge-floor")
        changed = sum(stats.get("changed", 0) for stats in rerun["stats"].values())
        cold_tasks = sum(s.get("ok", 0) + s.get("changed", 0) for s in cold["stats"].values())
        rerun_tasks = sum(s.get("ok", 0) + s.get("changed", 0) for s in rerun["stats"].values())
        floor_tasks = sum(p["tasks"] * len(p["hosts"]) for p in floor_plays)
        self.details["converge"] = {
            "create_hosts_s": round(create_s, 1), "cold_s": round(cold_s, 1), "rerun_s": round(rerun_s, 1),
            "floor_s": round(floor_s, 1), "cold_stats": cold["stats"], "rerun_stats": rerun["stats"],
            "rerun_changed_tasks": self.changed_tasks(rerun), "floor_plays": floor_plays,
            "loadavg": {"before": load_before, "after_cold": load_cold, "after_rerun": load_rerun}}
        floor_text = (f"reference = Ansible floor: the re-run's {len(floor_plays)} plays on the same hosts with as many tasks "
                      f"each as the re-run executed ({floor_tasks} host-tasks), every task `command: /bin/true`")
        self.add_row(key="converge_cold", measure="Cold converge (site.yml on bare hosts)", unit="s",
                     ours=round(cold_s, 1), reference=round(floor_s, 1), ratio=ratio(cold_s, floor_s),
                     conditions=f"5 hosts created from the base image first ({create_s:.0f} s, not included); "
                                f"{cold_tasks} host-tasks ok/changed; {floor_text}; load {load_before[0]:.1f} -> {load_cold[0]:.1f}")
        self.add_row(key="converge_rerun", measure=f"Idempotent re-run (changed = {changed})", unit="s",
                     ours=round(rerun_s, 1), reference=round(floor_s, 1), ratio=ratio(rerun_s, floor_s),
                     changed=changed,
                     conditions=f"{rerun_tasks} host-tasks ok/changed, changed must be 0"
                                f"{'' if changed == 0 else ' - CHANGED: ' + ', '.join(self.changed_tasks(rerun)[:5])}; "
                                f"same reference; load {load_rerun[0]:.1f}")

    def floor_playbook(self, rerun: dict) -> tuple[Path, list[dict]]:
        """The re-run's plays, same hosts, as many no-op tasks as each play executed (skipped-everywhere excluded)."""
        plays = []
        for play in rerun["plays"]:
            hosts: set[str] = set()
            tasks = 0
            for task in play["tasks"]:
                ran = {h for h, r in task["hosts"].items() if not r.get("skipped")}
                if ran:
                    tasks += 1
                    hosts |= ran
            if tasks:
                plays.append({"name": play["play"]["name"], "hosts": sorted(hosts), "tasks": tasks})
        book = [{"name": f"Floor | {p['name']}", "hosts": ":".join(p["hosts"]), "gather_facts": False,
                 "become": "localhost" not in p["hosts"],  # site.yml's plays become root on the lab hosts
                 "tasks": [{"name": f"No-op {i}", "ansible.builtin.command": "/bin/true", "changed_when": False}
                           for i in range(p["tasks"])]} for p in plays]
        path = self.work / "floor.yml"
        path.write_text(json.dumps(book, indent=1), encoding="utf-8")
        return path, plays

    # -- setup --------------------------------------------------------------------------------------
    def setup(self) -> None:
        print("Bench setup (reference topic and principal, scripts, Kafka tools)")
        self.playbook("bench/playbooks/setup.yml", "setup")

    # -- 2. inject ----------------------------------------------------------------------------------
    def bench_inject(self) -> None:
        runs = []
        print(f"Inject throughput ({self.args.runs} runs)")
        for n in range(1, self.args.runs + 1):
            start, stop = day(n, 2021)
            lines = self.reference_lines(f"bench_ref_r{n}", start, stop)
            out = self.work / f"inject-r{n}.json"
            load = loadavg()
            self.playbook("bench/playbooks/inject.yml", f"inject-r{n}", {
                "bench_run": n, "bench_order": ["ref", "ours"] if n % 2 else ["ours", "ref"],
                "bench_ref_lines": str(lines), "bench_out": str(out), "bench_inject_start": start,
                "bench_inject_stop": stop, "bench_inject_stations": INJECT_STATIONS,
                "bench_inject_interval": f"{WINDOW_INTERVAL_S}s"})
            lines.unlink()
            result = json.loads(out.read_text(encoding="utf-8"))
            ours, ref = result["ours"], result["ref"]
            if ours["points_written"] != ref["points"]:
                raise StepFailed(f"inject run {n}: weather_inject wrote {ours['points_written']} points, the reference {ref['points']}")
            points = ref["points"]
            runs.append({"run": n, "order": result["order"], "points": points, "loadavg": load,
                         "ours_task_s": round(ours["task_wall_s"], 3), "ours_write_s": ours["duration"],
                         "ref_task_s": round(ref["task_wall_s"], 3), "ref_write_s": ref["seconds"],
                         "ours_task_rate": round(points / ours["task_wall_s"], 1), "ours_write_rate": ours["rate"],
                         "ref_task_rate": round(points / ref["task_wall_s"], 1), "ref_write_rate": ref["rate"]})
        self.details["inject"] = {"runs": runs}
        points = runs[0]["points"]
        cond = (f"{points:,} points per run and side ({INJECT_STATIONS} stations x 1 day at 1/min, 4 float fields), batches of "
                f"5000, HTTPS + inject token, both from the pipeline host; median of {len(runs)} runs, order alternated; "
                f"load {min(r['loadavg'][0] for r in runs):.1f}-{max(r['loadavg'][0] for r in runs):.1f}")
        for key, measure, ours_key, ref_key, what in (
                ("inject_task", "Inject throughput, whole Ansible task", "ours_task_rate", "ref_task_rate",
                 "points / wall time of the task on the controller (ours: read-back + simulation + write; ref: read file + write)"),
                ("inject_write", "Inject throughput, write loop only", "ours_write_rate", "ref_write_rate",
                 "points / seconds of the write loop as each program reports it")):
            ours_v, ref_v = median([r[ours_key] for r in runs]), median([r[ref_key] for r in runs])
            self.add_row(key=key, measure=measure, unit="points/s", ours=ours_v, reference=ref_v, ratio=ratio(ours_v, ref_v),
                         conditions=f"{what}; reference = plain batched influxdb-client write of the same points; {cond}")

    def reference_lines(self, measurement: str, start: str, stop: str) -> Path:
        """The points weather_inject writes for this window, as line protocol under another measurement name."""
        params = {"interval": f"{WINDOW_INTERVAL_S}s", "now_granularity": None, "start": start, "stop": stop,
                  "stations": INJECT_STATIONS, "station_prefix": "station-", "max_points": 1_000_000, "heat_spike": None}
        stamps, stations, _spike, _interval = self.inject_mod.plan_window(params, int(time.time()))
        path = self.work / f"{measurement}.lp"
        with open(path, "w", encoding="utf-8") as handle:
            for station in stations:
                profile = self.inject_mod._station_profile(42, station)
                for ts in stamps:
                    values = self.inject_mod.simulate(42, station, ts, profile)
                    handle.write(self.inject_mod.line(measurement, station, ts, values) + "\n")
        return path

    # -- 3. produce ---------------------------------------------------------------------------------
    def record_size(self, start: str, stop: str) -> tuple[int, float, float]:
        """Mean size (key + value bytes) of the messages influx_to_kafka makes of this window's points."""
        params = {"interval": f"{WINDOW_INTERVAL_S}s", "now_granularity": None, "start": start, "stop": stop,
                  "stations": PRODUCE_STATIONS, "station_prefix": "station-", "max_points": 1_000_000, "heat_spike": None}
        stamps, stations, _spike, _interval = self.inject_mod.plan_window(params, int(time.time()))
        keys, values = [], []
        for station in stations:
            profile = self.inject_mod._station_profile(42, station)
            for ts in stamps:
                point = {"time_ns": ts * 10**9, "key": station, "measurement": "weather", "tags": {"station": station},
                         "fields": self.inject_mod.simulate(42, station, ts, profile)}
                key, value = self.producer_mod.message_for(point, "station")
                keys.append(len(key.encode()))
                values.append(len(value.encode()))
        mean_key, mean_value = statistics.mean(keys), statistics.mean(values)
        return round(mean_key + mean_value), mean_key, mean_value

    def bench_produce(self) -> None:
        print(f"Producer throughput ({self.args.runs} runs)")
        runs = []
        size, mean_key, mean_value = self.record_size(*day(1, 2020))
        self.details["record_size"] = {"bytes": size, "mean_key": round(mean_key, 1), "mean_value": round(mean_value, 1)}
        for n in range(1, self.args.runs + 1):
            start, stop = day(n, 2020)
            points = PRODUCE_STATIONS * 86400 // WINDOW_INTERVAL_S
            out = self.work / f"produce-r{n}.json"
            load = loadavg()
            self.playbook("bench/playbooks/produce.yml", f"produce-r{n}", {
                "bench_run": n, "bench_order": ["ref", "ours"] if n % 2 else ["ours", "ref"], "bench_out": str(out),
                "bench_record_size": size, "bench_produce_start": start, "bench_produce_stop": stop,
                "bench_produce_stations": PRODUCE_STATIONS, "bench_produce_interval": f"{WINDOW_INTERVAL_S}s",
                "bench_points": points})
            result = json.loads(out.read_text(encoding="utf-8"))
            ours, ref = result["ours"], result["ref"]
            tool = self.parse_producer_performance(ref["stdout"])
            if tool["records"] != points:
                raise StepFailed(f"produce run {n}: ProducerPerformance sent {tool['records']} records, expected {points}")
            runs.append({"run": n, "order": result["order"], "messages": ours["messages"], "loadavg": load,
                         "ours_task_s": round(ours["task_wall_s"], 3), "ours_module_s": ours["duration"],
                         "ours_batches": ours["batches"], "ref_task_s": round(ref["task_wall_s"], 3), "ref_tool": tool,
                         "ours_task_rate": round(points / ours["task_wall_s"], 1), "ours_module_rate": ours["rate"],
                         "ref_task_rate": round(points / ref["task_wall_s"], 1), "ref_tool_rate": tool["rate"]})
        self.details["produce"] = {"runs": runs}
        cond = (f"{runs[0]['messages']:,} messages per run and side, {size} B each (mean key {mean_key:.0f} + JSON value "
                f"{mean_value:.0f}); acks=all, idempotent, linger.ms 20, no compression, SASL_SSL SCRAM-SHA-512, topics of 4 "
                f"partitions RF 3 min ISR 2; both on the pipeline host; ours: batch_size 500 (produce.yml's default) "
                f"read from InfluxDB, journaled and checkpointed; median of {len(runs)} runs, order alternated; "
                f"load {min(r['loadavg'][0] for r in runs):.1f}-{max(r['loadavg'][0] for r in runs):.1f}")
        for key, measure, ours_key, ref_key, what in (
                ("produce_task", "Producer throughput, whole Ansible task", "ours_task_rate", "ref_task_rate",
                 "messages / wall time of the task on the controller (ref includes the JVM start)"),
                ("produce_tool", "Producer throughput, as each program reports it", "ours_module_rate", "ref_tool_rate",
                 "ours: influx_to_kafka's rate (module start to end: queries, sends, checkpoints); ref: ProducerPerformance's "
                 "records/sec (first send to last ack)")):
            ours_v, ref_v = median([r[ours_key] for r in runs]), median([r[ref_key] for r in runs])
            self.add_row(key=key, measure=measure, unit="msg/s", ours=ours_v, reference=ref_v, ratio=ratio(ours_v, ref_v),
                         conditions=f"{what}; reference = org.apache.kafka.tools.ProducerPerformance on its own topic; {cond}")

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

    # -- 4. end-to-end latency ----------------------------------------------------------------------
    def bench_latency(self) -> None:
        print(f"End-to-end latency ({self.args.latency_duration} s of flow)")
        size, mean_key, mean_value = self.record_size(*day(1, 2020))
        # The producer of the loop is the very invocation of playbooks/produce.yml: Ansible keeps its module file.
        self.playbook("playbooks/produce.yml", "latency-capture-producer",
                      env={"ANSIBLE_KEEP_REMOTE_FILES": "1"})
        load = loadavg()
        self.playbook("bench/playbooks/latency.yml", "latency", {
            "bench_out_dir": str(self.work), "bench_record_key_size": round(mean_key),
            "bench_record_value_size": round(mean_value),
            "bench_latency_duration": self.args.latency_duration})
        run = json.loads((self.work / "latency.json").read_text(encoding="utf-8"))
        e2e = json.loads((self.work / "e2e_reference.json").read_text(encoding="utf-8"))
        points = run["points"]
        received = [p for p in points if p["t_recv"] is not None]
        from_ack = [(p["t_recv"] - p["t_ack"]) / 1e9 for p in received]
        from_point = [(p["t_recv"] - p["t_point"]) / 1e9 for p in received]
        write_s = [(p["t_ack"] - p["t_point"]) / 1e9 for p in points]
        producer_runs = run["producer_runs"]
        durations = [(r["ended"] - r["began"]) / 1e9 for r in producer_runs]
        ref = self.parse_end_to_end(e2e["stdout"])
        summary = {
            "points_written": len(points), "points_received": len(received), "lost": len(points) - len(received),
            "duplicates": run["consumer"]["duplicates"], "consumer_error": run["consumer"]["error"],
            "p50_s": percentile(from_ack, 0.50), "p99_s": percentile(from_ack, 0.99), "max_s": max(from_ack, default=None),
            "mean_s": statistics.mean(from_ack) if from_ack else None,
            "from_point_time": {"p50_s": percentile(from_point, 0.50), "p99_s": percentile(from_point, 0.99)},
            "influx_write_ack_s": {"p50": percentile(write_s, 0.50), "p99": percentile(write_s, 0.99)},
            "producer_runs": len(producer_runs), "producer_runs_failed": sum(1 for r in producer_runs if r.get("failed")),
            "producer_run_s": {"p50": percentile(durations, 0.50), "max": max(durations, default=None)},
            "messages_per_run": {"p50": percentile([r.get("messages") or 0 for r in producer_runs], 0.50),
                                 "max": max((r.get("messages") or 0 for r in producer_runs), default=None)},
            "loadavg": [run["loadavg_start"], run["loadavg_end"]], "reference": ref,
            "definition": "latency = t_recv - t_ack: t_ack is the writer's clock when InfluxDB answered the write "
                          "request (HTTP 204) holding the point, t_recv the consumer's clock when poll() handed over "
                          "the record (matched by the message id measurement/station/time_ns); one host, one clock"}
        self.details["latency"] = summary
        settings = run["settings"]
        cond = (f"{len(points)} points ({settings['stations']} stations x 1/s for {settings['duration']:.0f} s), "
                f"{summary['lost']} not delivered within {settings['drain']:.0f} s, {summary['duplicates']} duplicates; "
                f"producer = produce.yml's influx_to_kafka invocation run back to back ({summary['producer_runs']} runs, "
                f"p50 {summary['producer_run_s']['p50']:.1f} s each incl. Python start, TLS+SCRAM connect, query, "
                f"checkpoint); {summary['definition']}; reference = org.apache.kafka.tools.EndToEndLatency "
                f"({e2e['messages']} synchronous acks=all sends, key {mean_key:.0f} B + value {mean_value:.0f} B, each polled "
                f"back, ms resolution) on its "
                f"own topic; load {summary['loadavg'][0][0]:.1f} -> {summary['loadavg'][1][0]:.1f}")
        for key, name, ours_v, ref_v in (("latency_p50", "End-to-end latency p50", summary["p50_s"], ref["p50_s"]),
                                         ("latency_p99", "End-to-end latency p99", summary["p99_s"], ref["p99_s"])):
            self.add_row(key=key, measure=f"{name}, InfluxDB write -> Kafka delivery", unit="s",
                         ours=round(ours_v, 3) if ours_v is not None else None, reference=ref_v,
                         ratio=ratio(ours_v, ref_v), conditions=cond)

    @staticmethod
    def parse_end_to_end(stdout: str) -> dict:
        m = re.search(r"Percentiles: 50th = (\d+), 99th = (\d+), 99\.9th = (\d+)", stdout)
        avg = re.search(r"Avg latency: ([\d.]+) ms", stdout)
        if not m:
            raise StepFailed(f"no percentiles in EndToEndLatency's output: {stdout[-300:]}")
        return {"p50_s": int(m.group(1)) / 1000, "p99_s": int(m.group(2)) / 1000, "p999_s": int(m.group(3)) / 1000,
                "avg_s": float(avg.group(1)) / 1000 if avg else None}

    # -- 5. failover drill --------------------------------------------------------------------------
    def bench_failover(self) -> None:
        print(f"Failover drill (playbooks/broker-failover.yml, {FAILOVER_BROKER})")
        drill = self.src / "playbooks" / "broker-failover.yml"
        measure_w, measure_l = "Failover drill: unavailability window, one broker down", "Failover drill: acknowledged messages lost"
        if not drill.exists():
            why = "playbooks/broker-failover.yml is not in the repository yet"
            self.not_measured("failover_window", measure_w, "s", why)
            self.not_measured("failover_loss", measure_l, "messages", why)
            return
        report_path = self.work / "failover.json"
        load = loadavg()
        error = None
        try:
            self.playbook(drill, "failover", {"failover_broker": FAILOVER_BROKER, "failover_report_path": str(report_path)})
        except StepFailed as exc:
            error = str(exc)
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
            one = report["one_broker_down"]
            window = one["unavailability_window_s"]
            baseline = one["unavailability"]["baseline_p99_ack_wait_s"]
            messages = one["messages"] or {}
            lost = messages.get("acked_missing_from_topic")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            why = f"the drill gave no usable report ({type(exc).__name__}: {exc}){'; ' + error if error else ''}"
            self.not_measured("failover_window", measure_w, "s", why)
            self.not_measured("failover_loss", measure_l, "messages", why)
            return
        self.details["failover"] = {"report": str(report_path), "passed": report.get("passed"), "error": error,
                                    "checks": report.get("checks"), "one_broker_down": one}
        verdict = "drill passed" if report.get("passed") else f"DRILL FAILED: {error or [c['name'] for c in report.get('checks', []) if not c.get('ok')]}"
        cond = (f"{report.get('mode')} stop of {report.get('broker')} under acks=all idempotent traffic at "
                f"{report.get('rate_per_s')} msg/s on a {report.get('partitions')}-partition RF 3 topic; window = time "
                f"acks=all sends waited over {one['unavailability']['stall_threshold_s']} s (the drill's definition); "
                f"down {one.get('down_for_s')} s, all partitions led after {one.get('all_partitions_led_after_s')} s, full ISR "
                f"{one.get('time_to_full_isr_s')} s after restart; {verdict}; load {load[0]:.1f}")
        if window is None:
            self.not_measured("failover_window", measure_w, "s", f"the drill reported no window; {cond}")
        else:
            self.add_row(key="failover_window", measure=measure_w, unit="s", ours=window, reference=baseline,
                         ratio=ratio(window, baseline),
                         conditions=f"reference = the same run's p99 ack wait before the stop (baseline); {cond}")
        self.add_row(key="failover_loss", measure=measure_l, unit="messages", ours=lost, reference=0, ratio=None,
                     conditions=f"acked by Kafka but not read back by the drill's consumer: sent {messages.get('sent')}, "
                                f"acked {messages.get('acked')}, consumed {messages.get('consumed')}, failed "
                                f"{messages.get('failed')}; reference = 0 (acks=all, min ISR 2)")

    # -- results ------------------------------------------------------------------------------------
    def table(self) -> str:
        def fmt(value):
            if value is None:
                return "-"
            if isinstance(value, float):
                return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
            return f"{value:,}" if isinstance(value, int) else str(value)

        lines = ["| Measure | Unit | Ours | Reference | Ratio ours/ref | Conditions |", "|---|---|---:|---:|---:|---|"]
        for row in self.rows:
            ours = fmt(row["ours"]) if row["status"] == "measured" else "not measured"
            lines.append(f"| {row['measure']} | {row['unit']} | {ours} | {fmt(row['reference'])} | {fmt(row['ratio'])} "
                         f"| {row['conditions'].replace('|', '/')} |")
        return "\n".join(lines)

    def meta(self) -> dict:
        return {"started": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "commit": self.commit, "tree": "working tree" if self.args.working_tree else "clean export of the commit",
                "cpus": os.cpu_count(), "loadavg_end": loadavg(), "runs": self.args.runs, "raw": str(self.work),
                "note": "2 shared cores: other labs and tests ran beside the bench; ratios against references measured "
                        "beside ours in the same run are what count, absolute figures are this machine's at this time."}

    def write_results(self, errors: list[str]) -> Path | None:
        meta = self.meta()
        meta["errors"] = errors
        table = self.table()
        document = {"meta": meta, "rows": self.rows, "details": self.details}
        out_dir = Path(self.args.results_dir) if self.args.results_dir else RESULTS
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = out_dir / self.started.strftime("%Y-%m-%d")
        stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        md = [f"# Isobar bench, {meta['started']}", "",
              f"Commit `{meta['commit']}` ({meta['tree']}), {meta['cpus']} CPUs, {meta['runs']} runs per throughput "
              f"figure (median). {meta['note']}", "", table, ""]
        if errors:
            md += ["Errors:", ""] + [f"- {e}" for e in errors] + [""]
        md += ["Definitions and raw figures: the .json file next to this one; how each is measured: bench/README.md.", ""]
        stem.with_suffix(".md").write_text("\n".join(md), encoding="utf-8")
        print("\n" + table + "\n")
        print(f"Results: {stem}.json, {stem}.md; raw logs: {self.work}")
        return stem

    # -- the whole run ------------------------------------------------------------------------------
    def run(self) -> int:
        errors: list[str] = []
        lab_ready = True
        steps = self.args.only or ["converge", "inject", "produce", "latency", "failover"]
        try:
            if not self.args.reuse_lab:
                print("Bench lab: removing leftovers of an earlier bench run")
                self.playbook("bench/destroy.yml", "destroy-before")
            if "converge" in steps and not self.args.reuse_lab:
                try:
                    self.bench_converge()
                except StepFailed as exc:
                    errors.append(f"converge: {exc}")
                    lab_ready = False
            elif not self.args.reuse_lab:
                self.playbook("bench/create.yml", "create")
                self.playbook("site.yml", "converge")
            else:
                for key, name in (("converge_cold", "Cold converge"), ("converge_rerun", "Idempotent re-run")):
                    self.not_measured(key, name, "s", "--reuse-lab: the bench lab was not created by this run")
            if lab_ready:
                self.setup()
                for step, method in (("inject", self.bench_inject), ("produce", self.bench_produce),
                                     ("latency", self.bench_latency), ("failover", self.bench_failover)):
                    if step not in steps:
                        continue
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
            if not self.args.keep_lab:
                print("Bench lab: destroying it")
                try:
                    self.playbook("bench/destroy.yml", "destroy-after")
                except StepFailed as exc:
                    errors.append(f"destroy: {exc}")
        self.write_results(errors)
        return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Isobar benchmark on a private bench lab (see bench/README.md).")
    parser.add_argument("--runs", type=int, default=3, help="runs of each throughput figure (median), default 3")
    parser.add_argument("--latency-duration", type=int, default=180, help="seconds of continuous flow, default 180")
    parser.add_argument("--only", nargs="+", choices=["converge", "inject", "produce", "latency", "failover"],
                        help="measure only these (the others are left out of the table)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the bench lab running at the end")
    parser.add_argument("--reuse-lab", action="store_true",
                        help="measure on the bench lab left by --keep-lab (no create, no converge rows)")
    parser.add_argument("--results-dir", help="write <date>.json/.md here instead of bench/results/")
    parser.add_argument("--commit", default="HEAD", help="commit to measure (a clean export of it), default HEAD")
    parser.add_argument("--working-tree", action="store_true",
                        help="measure the working tree as it is (uncommitted edits included) instead of a commit")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
