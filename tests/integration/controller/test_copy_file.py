"""isobar.pipeline.copy_file and template_file run by ansible-playbook on this machine (connection local, as root):
on a file already right one command (stat, sha256sum) ends the task (result key ``sha256``, no ``checksum`` of the builtin);
anything else is ansible.builtin.copy's work and result, with the same rendering as ansible.builtin.template."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from fixtures.prerequisites import missing



@pytest.fixture(autouse=True)
def as_root():
    if os.geteuid() != 0:
        missing("the tests set owner and group of the files: run them as root")


def run(tmp_path, tasks, *extra, extra_vars=None):
    (tmp_path / "play.yml").write_text(json.dumps([{"name": "copy_file", "hosts": "localhost", "gather_facts": False,
                                                    "vars": {"greeting": "hello", "items_": [1, 2]},
                                                    "tasks": [dict(task, ignore_errors=True) for task in tasks]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    settings = {"ansible_python_interpreter": sys.executable, **(extra_vars or {})}
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           "-e", json.dumps(settings), *extra, str(tmp_path / "play.yml")], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.stdout.startswith("{"), proc.stdout[-2000:] + proc.stderr[-2000:]
    return [task["hosts"]["localhost"] for task in json.loads(proc.stdout)["plays"][0]["tasks"]]


@pytest.fixture
def sources(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "a.conf.j2").write_text("# {{ greeting }}\n{% for i in items_ %}item={{ i }}\n{% endfor %}")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "b.txt").write_text("plain file\n")
    return tmp_path


def tasks_for(out):
    return [
        {"name": "template", "isobar.pipeline.template_file": {"src": "a.conf.j2", "dest": str(out / "a.conf"),
                                                               "owner": "root", "group": "root", "mode": "0640"}},
        {"name": "src", "isobar.pipeline.copy_file": {"src": "b.txt", "dest": str(out / "b.txt"), "mode": "0600"}},
        {"name": "content", "isobar.pipeline.copy_file": {"content": "{{ greeting }} world\n", "dest": str(out / "c"),
                                                          "owner": "root", "mode": 420}},
    ]


def test_the_first_run_writes_through_the_builtin_and_the_next_is_one_check_each(sources):
    out = sources / "out"
    out.mkdir()
    first = run(sources, tasks_for(out))
    assert all(r["changed"] and "checksum" in r and "sha256" not in r for r in first), first
    assert (out / "a.conf").read_text() == "# hello\nitem=1\nitem=2\n"
    assert (out / "b.txt").read_text() == "plain file\n" and (out / "c").read_text() == "hello world\n"
    assert [oct(os.stat(out / n).st_mode & 0o777) for n in ("a.conf", "b.txt", "c")] == ["0o640", "0o600", "0o644"]
    # the builtin template renders the same bytes: its copy finds nothing to do
    same = run(sources, [{"name": "builtin", "ansible.builtin.template": {"src": "a.conf.j2", "dest": str(out / "a.conf"),
                                                                          "mode": "0640"}}])
    assert same[0]["changed"] is False

    for extra in ([], ["--check", "--diff"]):
        again = run(sources, tasks_for(out), *extra)
        assert all(r["changed"] is False and "checksum" not in r and len(r["sha256"]) == 64 for r in again), again


def test_a_difference_goes_to_the_builtin_and_check_mode_changes_nothing(sources):
    out = sources / "out"
    out.mkdir()
    run(sources, tasks_for(out))
    (out / "a.conf").write_text("edited by hand\n")
    os.chmod(out / "b.txt", 0o644)

    checked = run(sources, tasks_for(out), "--check", "--diff")
    assert [r["changed"] for r in checked] == [True, True, False]
    assert "edited by hand" in checked[0]["diff"][0]["before"] and "item=2" in checked[0]["diff"][0]["after"]
    assert (out / "a.conf").read_text() == "edited by hand\n" and oct(os.stat(out / "b.txt").st_mode & 0o777) == "0o644"

    fixed = run(sources, tasks_for(out), extra_vars={"greeting": "hello"})
    assert [r["changed"] for r in fixed] == [True, True, False]
    assert (out / "a.conf").read_text() == "# hello\nitem=1\nitem=2\n" and oct(os.stat(out / "b.txt").st_mode & 0o777) == "0o600"
    # another value renders another content: written again
    other = run(sources, tasks_for(out), extra_vars={"greeting": "bonjour"})
    assert [r["changed"] for r in other] == [True, False, True]
    assert (out / "c").read_text() == "bonjour world\n"


def test_validate_runs_when_the_file_is_written_and_a_refusal_changes_nothing(sources):
    out = sources / "out"
    out.mkdir()
    task = {"name": "validated", "isobar.pipeline.copy_file": {"content": "bad\n", "dest": str(out / "v"),
                                                               "validate": "grep -q good %s"}}
    [result] = run(sources, [task])
    assert result.get("failed") and "failed to validate" in result["msg"] and not (out / "v").exists()


def test_what_the_check_does_not_compare_is_the_builtins(sources):
    out = sources / "out"
    out.mkdir()
    task = {"name": "symbolic", "isobar.pipeline.copy_file": {"src": "b.txt", "dest": str(out / "s"), "mode": "u=rw,go="}}
    run(sources, [task])
    [again] = run(sources, [task])
    assert again["changed"] is False and "checksum" in again and "sha256" not in again
    assert oct(os.stat(out / "s").st_mode & 0o777) == "0o600"
    [missing] = run(sources, [{"name": "no src", "isobar.pipeline.copy_file": {"src": "nothing.txt", "dest": str(out / "n")}}])
    assert missing.get("failed") and "nothing.txt" in missing["msg"]
