"""plugins/strategy/mitogen_linear.py, the strategy of the Molecule scenarios: the pinned Mitogen runs under the pinned
ansible-core, through this checkout's plugin path, and a task really runs in Mitogen's interpreter (not in a Python
started for the task, which is what the plain strategy does and what this test also checks, so it can fail)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def task_parent(tmp_path: Path, strategy: str | None) -> str:
    play = tmp_path / "play.yml"
    play.write_text("""
- name: Who runs the task
  hosts: all
  gather_facts: false
  tasks:
    - name: The parent process of the task's shell
      ansible.builtin.shell: ps -o args= -p "$PPID"
      changed_when: false
      register: parent
    - name: Print it
      ansible.builtin.debug:
        msg: "PARENT={{ parent.stdout }}"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_DEPRECATION_WARNINGS="false")
    if strategy:
        env.update(ANSIBLE_STRATEGY_PLUGINS=str(ROOT / "plugins" / "strategy"), ANSIBLE_STRATEGY=strategy)
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}", str(play)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return next(line for line in proc.stdout.splitlines() if "PARENT=" in line)


def test_tasks_run_in_mitogens_interpreter(tmp_path):
    assert "(mitogen:" in task_parent(tmp_path, "mitogen_linear")


def test_the_plain_strategy_starts_a_python_per_task(tmp_path):
    parent = task_parent(tmp_path, None)
    assert "(mitogen:" not in parent and "PARENT=/" in parent and "python" in parent


@pytest.mark.parametrize("scenario", ["default", "failover", "rotation"])
def test_every_scenario_uses_it(scenario):
    config = (ROOT / "molecule" / scenario / "molecule.yml").read_text()
    assert "strategy_plugins: ${MOLECULE_PROJECT_DIRECTORY}/plugins/strategy" in config
    assert "strategy: ${ISOBAR_MOLECULE_STRATEGY:-mitogen_linear}" in config


@pytest.mark.parametrize("args, strategy", [([], "mitogen_linear"), (["LAB_STRATEGY=linear"], "linear")])
def test_make_lab_runs_site_yml_through_the_strategy_asked(args, strategy):
    """make lab's site.yml run goes through Mitogen unless LAB_STRATEGY says otherwise (the dry run prints it)."""
    out = subprocess.run(["make", "-n", "lab", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    [site] = [line for line in out.splitlines() if "ansible-playbook site.yml" in line]
    assert f"ANSIBLE_STRATEGY_PLUGINS=plugins/strategy ANSIBLE_STRATEGY={strategy} " in site
