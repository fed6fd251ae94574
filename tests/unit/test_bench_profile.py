"""bench/profile.py on a real ansible-playbook run's JSON report: a role whose task sleeps 1 s and a play task that
sleeps 0.2 s on two hosts; the profile sums the wall time per role and per task name, largest first, and counts the
host results (skipped hosts left out)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_profile", ROOT / "bench" / "profile.py")
profile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(profile)


def test_profile_of_a_real_run(tmp_path):
    tasks = tmp_path / "roles" / "slow" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(json.dumps([{"name": "Sleep a second", "ansible.builtin.command": "sleep 1",
                                                 "changed_when": False}]))
    (tmp_path / "play.yml").write_text(json.dumps([{"name": "Profiled", "hosts": "all", "gather_facts": False,
                                                    "roles": ["slow"], "tasks": [
        {"name": "Sleep a little", "ansible.builtin.command": "sleep 0.2", "changed_when": False},
        {"name": "Skipped on b", "ansible.builtin.command": "true", "changed_when": False,
         "when": "inventory_hostname == 'a'"}]}]))
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    (tmp_path / "hosts.json").write_text(json.dumps({"all": {"hosts": {"a": local, "b": local}}}))
    env = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "hosts.json"),
                          str(tmp_path / "play.yml")], env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    prof = profile.profile(json.loads(out.stdout))
    # largest first; which is larger depends on the machine's load (the play's two tasks on a busy machine can cost
    # more than the role's sleep), so the order is checked against the figures, not assumed
    assert {r["role"] for r in prof["roles"]} == {"slow", profile.PLAY_TASKS}
    assert [r["seconds"] for r in prof["roles"]] == sorted((r["seconds"] for r in prof["roles"]), reverse=True)
    prof["roles"].sort(key=lambda r: r["role"] != "slow")
    assert 1.0 <= prof["roles"][0]["seconds"] < 5 and prof["roles"][0]["tasks"] == 1
    assert [t["seconds"] for t in prof["tasks"]] == sorted((t["seconds"] for t in prof["tasks"]), reverse=True)
    assert {t["task"]: t["hosts"] for t in prof["tasks"]}["slow : Sleep a second"] == 2
    assert {t["task"]: t["hosts"] for t in prof["tasks"]}["Skipped on b"] == 1
    assert prof["task_count"] == 3 and prof["host_results"] == 5
    assert abs(prof["total_s"] - sum(r["seconds"] for r in prof["roles"])) < 0.2
    # the linear strategy runs each task on both hosts before the next: task times fit in the play's
    assert prof["total_s"] <= prof["wall_s"] + 0.2 and not prof["overlap"]
    text = "\n".join(profile.markdown("run", prof))
    assert "| slow | " in text and "| slow : Sleep a second |" in text
