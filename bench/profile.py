#!/usr/bin/env python3
"""Where a playbook run's wall time goes, from its JSON callback report (ansible.posix.json): each task's wall time
(first host's start to last host's end; the linear strategy runs a task on every host before the next), summed per
role (the "<role> : " prefix of a role task's name) and per task name. make bench puts the top of the converge's and
re-run's profiles into its results; by hand:

    python bench/profile.py ~/.cache/isobar/bench/<time>/converge-rerun.json [--top 15]
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections import defaultdict
from pathlib import Path

PLAY_TASKS = "(play tasks, no role)"


def seconds(duration: dict) -> float:
    """Seconds between the callback's ISO start and end (0 when either is missing)."""
    try:
        start, end = (datetime.datetime.fromisoformat(duration[k].replace("Z", "+00:00")) for k in ("start", "end"))
    except (KeyError, AttributeError, ValueError):
        return 0.0
    return max((end - start).total_seconds(), 0.0)


def profile(report: dict, top: int = 15) -> dict:
    """{total_s, wall_s, overlap, task_count, host_results, roles: [{role, seconds, tasks}], tasks: [{task, seconds,
    runs, hosts}]}: the top roles and task names by summed wall time (a task name run in several plays or loops sums).
    wall_s is the plays' wall time; overlap says the tasks' times add up to more than it (a strategy that does not run
    the hosts in lockstep, e.g. Mitogen's, reports a task per host batch): the shares are then of summed task time."""
    roles: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    tasks: dict[str, list] = defaultdict(lambda: [0.0, 0, 0])
    total, count, results = 0.0, 0, 0
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            name = task["task"]["name"]
            wall = seconds(task["task"].get("duration", {}))
            ran = [h for h, r in task.get("hosts", {}).items() if not r.get("skipped")]
            role = name.split(" : ", 1)[0] if " : " in name else PLAY_TASKS
            roles[role][0] += wall
            roles[role][1] += 1
            tasks[name][0] += wall
            tasks[name][1] += 1
            tasks[name][2] += len(ran)
            total += wall
            count += 1
            results += len(ran)
    by_time = lambda item: -item[1][0]  # noqa: E731
    wall = sum(seconds(play["play"].get("duration", {})) for play in report.get("plays", []))
    return {"total_s": round(total, 1), "wall_s": round(wall, 1), "overlap": total > 1.05 * wall > 0,
            "task_count": count, "host_results": results,
            "roles": [{"role": r, "seconds": round(s, 1), "tasks": n} for r, (s, n) in sorted(roles.items(), key=by_time)[:top]],
            "tasks": [{"task": t, "seconds": round(s, 1), "runs": n, "hosts": h}
                      for t, (s, n, h) in sorted(tasks.items(), key=by_time)[:top]]}


def markdown(title: str, prof: dict, top: int = 10) -> list[str]:
    """Lines of a markdown section: the top roles and tasks of a profile, with their share of the total."""
    total = prof["total_s"] or 1.0
    overlap = (" (tasks overlap: hosts did not run in lockstep, shares are of the summed task time)"
               if prof.get("overlap") else "")
    lines = [f"### {title}: {prof['total_s']} s of task time in {prof.get('wall_s', prof['total_s'])} s of plays, "
             f"{prof['task_count']} tasks, {prof['host_results']} host results{overlap}", "",
             "| Role | s | share | tasks |", "|---|---:|---:|---:|"]
    lines += [f"| {r['role']} | {r['seconds']} | {100 * r['seconds'] / total:.0f} % | {r['tasks']} |"
              for r in prof["roles"][:top]]
    lines += ["", "| Task | s | share | runs | host results |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {t['task'].replace('|', '/')} | {t['seconds']} | {100 * t['seconds'] / total:.0f} % | {t['runs']} | "
              f"{t['hosts']} |" for t in prof["tasks"][:top]]
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="a JSON callback report (ansible.posix.json)")
    parser.add_argument("--top", type=int, default=15, help="roles and tasks to list, default 15")
    args = parser.parse_args()
    prof = profile(json.loads(args.report.read_text(encoding="utf-8")), args.top)
    print("\n".join(markdown(args.report.name, prof, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
