"""When copy_file and template_file answer with one command on the host (plugin_utils/file_check.py), and what that
command says about real files here (run with sh, as Ansible's become would)."""
from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import subprocess

import pytest

from ansible_collections.isobar.pipeline.plugins.plugin_utils.file_check import (
    compare, content_bytes, octal_mode, parse_state, state_command, why_not_checkable)


@pytest.mark.parametrize("args", [
    {"src": "a.conf", "dest": "/etc/a.conf"},
    {"content": "x\n", "dest": "/etc/a", "owner": "root", "group": "kafka", "mode": "0640"},
    {"content": "x", "dest": "/etc/a", "mode": 0o644, "validate": "visudo -cf %s", "backup": True, "force": True},
])
def test_plain_copies_are_checked(args):
    assert why_not_checkable(args) == ""


@pytest.mark.parametrize("args, why", [
    ({"src": "a", "dest": "/etc/a", "remote_src": True}, "options remote_src"),
    ({"src": "a", "dest": "/etc/a", "attributes": "+i"}, "options attributes"),
    ({"src": "a", "dest": "/etc/a", "local_follow": False}, "options local_follow"),
    ({"src": "a", "dest": "/etc/"}, "a directory as dest"),
    ({"src": "dir/", "dest": "/etc/a"}, "a directory as src"),
    ({"dest": "/etc/a"}, "not exactly one of src and content"),
    ({"src": "a", "content": "b", "dest": "/etc/a"}, "not exactly one of src and content"),
    ({"src": "a", "dest": "/etc/a", "mode": "u=rw,g=r"}, "mode 'u=rw,g=r'"),
    ({"src": "a", "dest": "/etc/a", "mode": "preserve"}, "mode 'preserve'"),
])
def test_other_copies_go_to_the_builtin(args, why):
    assert why_not_checkable(args) == why


def test_content_is_the_bytes_the_builtin_writes():
    assert content_bytes("é\n") == "é\n".encode()
    assert content_bytes({"a": 1}) == json.dumps({"a": 1}).encode()
    assert content_bytes([1, 2]) == b"[1, 2]"


@pytest.mark.parametrize("mode, expected", [("0644", "0644"), ("644", "0644"), (0o600, "0600"), (420, "0644"),
                                            ("2750", "2750"), (None, None), (True, None), ("0o644", None)])
def test_modes(mode, expected):
    assert octal_mode(mode) == expected


def state_of(path):
    proc = subprocess.run(state_command(path), shell=True, capture_output=True, text=True)
    return parse_state(proc.returncode, proc.stdout)


def test_the_command_reports_a_regular_file_with_its_sha256(tmp_path):
    path = tmp_path / "with space's name"
    path.write_bytes(b"data")
    os.chmod(path, 0o2750)
    state = state_of(path)
    assert state == {"uid": os.getuid(), "gid": os.getgid(), "user": pwd.getpwuid(os.getuid()).pw_name,
                     "group": grp.getgrgid(os.getgid()).gr_name, "mode": 0o2750, "kind": "regular file",
                     "sha256": hashlib.sha256(b"data").hexdigest()}
    (tmp_path / "empty").write_bytes(b"")
    assert state_of(tmp_path / "empty")["kind"] == "regular file"


def test_the_command_reports_absent_files_directories_and_links_without_a_sha256(tmp_path):
    assert state_of(tmp_path / "absent") is None
    assert state_of(tmp_path / "no" / "parent") is None
    assert state_of(tmp_path)["kind"] == "directory" and state_of(tmp_path)["sha256"] is None
    (tmp_path / "target").write_bytes(b"data")
    os.symlink(tmp_path / "target", tmp_path / "link")
    assert state_of(tmp_path / "link")["kind"] == "symbolic link" and state_of(tmp_path / "link")["sha256"] is None


def test_compare_checks_content_and_each_attribute_the_task_sets():
    digest = "d" * 64
    state = {"uid": 0, "gid": 998, "user": "root", "group": "kafka", "mode": 0o640, "kind": "regular file",
             "sha256": digest}
    assert compare(state, {}, digest) == (True, "")
    assert compare(state, {"owner": "root", "group": "kafka", "mode": "0640"}, digest) == (True, "")
    assert compare(state, {"owner": 0, "group": "998", "mode": 0o640}, digest) == (True, "")
    assert compare(state, {"owner": "kafka"}, digest) == (False, "owner root")
    assert compare(state, {"group": "root"}, digest) == (False, "group kafka")
    assert compare(state, {"group": 0}, digest) == (False, "group kafka")
    assert compare(state, {"mode": "0644"}, digest) == (False, "mode 0640")
    assert compare(state, {}, "e" * 64) == (False, "other content")
    assert compare(None, {}, digest) == (False, "absent")
    assert compare(dict(state, kind="directory", sha256=None), {}, digest) == (False, "a directory")


@pytest.mark.parametrize("rc, stdout", [(1, ""), (0, ""), (0, "garbage\n"), (0, "0 0 root root 9z9 regular file\n")])
def test_an_answer_the_check_cannot_read_is_no_answer(rc, stdout):
    assert parse_state(rc, stdout) is None
