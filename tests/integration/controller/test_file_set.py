"""isobar.pipeline.file_set run by ansible-playbook on this machine (connection local, as root): the action plugin's
manifest, the module's comparison, the archive sent and unpacked, check mode and diff, through Ansible's real
machinery (temporary directory, transfer, module execution)."""
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


def run(tmp_path, args, *extra):
    (tmp_path / "play.yml").write_text(json.dumps([{"name": "file_set", "hosts": "localhost", "gather_facts": False,
                                                    "tasks": [{"name": "Keep the set", "isobar.pipeline.file_set": args,
                                                               "ignore_errors": True}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           "-e", json.dumps({"ansible_python_interpreter": sys.executable}), *extra,
                           str(tmp_path / "play.yml")], env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.stdout.startswith("{"), proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    (root / "a.whl").write_bytes(os.urandom(300_000))
    (root / "SHA256SUMS").write_text("sums\n")
    (root / "sub" / "b.py").write_text("print('b')\n")
    return root


def tree(path):
    return {str(p.relative_to(path)): (p.read_bytes(), oct(p.stat().st_mode & 0o7777))
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_the_set_is_sent_once_then_a_run_changes_nothing(tmp_path, src):
    dest = tmp_path / "host" / "wheels"
    first = run(tmp_path, {"src": str(src), "dest": str(dest), "mode": "0640", "directory_mode": "0750"}, "--diff")
    assert not first.get("failed"), first
    assert first["changed"] is True and first["sent"] == ["SHA256SUMS", "a.whl", "sub/b.py"]
    assert first["sent_bytes"] == 300_000 + 5 + 11
    assert "absent  a.whl" in first["diff"]["before"]
    assert tree(dest) == {name: (content, "0o640") for name, (content, _mode) in tree(src).items()}
    assert oct(dest.stat().st_mode & 0o7777) == "0o750" and oct((dest / "sub").stat().st_mode & 0o7777) == "0o750"
    assert not list(dest.rglob(".file_set-*"))

    second = run(tmp_path, {"src": str(src), "dest": str(dest), "mode": "0640", "directory_mode": "0750"}, "--diff")
    assert second["changed"] is False and second["sent"] == [] and second["corrected"] == []
    assert "diff" not in second


def test_only_what_differs_is_sent_or_corrected_and_check_mode_changes_nothing(tmp_path, src):
    dest = tmp_path / "host"
    assert run(tmp_path, {"src": str(src), "dest": str(dest)})["changed"] is True
    (dest / "a.whl").write_bytes(b"damaged")
    os.chmod(dest / "sub" / "b.py", 0o600)

    checked = run(tmp_path, {"src": str(src), "dest": str(dest)}, "--check", "--diff")
    assert checked["changed"] is True and checked["sent"] == ["a.whl"] and checked["corrected"] == ["sub/b.py"]
    assert checked["sent_bytes"] == 0 and (dest / "a.whl").read_bytes() == b"damaged"
    assert oct((dest / "sub" / "b.py").stat().st_mode & 0o7777) == "0o600"

    fixed = run(tmp_path, {"src": str(src), "dest": str(dest)})
    assert fixed["changed"] is True and fixed["sent"] == ["a.whl"] and fixed["sent_bytes"] == 300_000
    assert tree(dest) == tree(src) | {"sub/b.py": (b"print('b')\n", "0o644")}
    assert run(tmp_path, {"src": str(src), "dest": str(dest)})["changed"] is False


def test_named_files_only(tmp_path, src):
    dest = tmp_path / "host"
    result = run(tmp_path, {"src": str(src), "files": ["sub/b.py"], "dest": str(dest)})
    assert result["changed"] is True and result["files"] == ["sub/b.py"]
    assert list(tree(dest)) == ["sub/b.py"]


@pytest.mark.parametrize("args, message", [
    ({"files": ["nothing-here.py"]}, "nothing-here.py is not a file in"),
    ({"owner": "isobar-no-such-user"}, "owner 'isobar-no-such-user' does not exist on the host"),
    ({"mode": "rw-r--r--"}, "mode must be an octal mode"),
    ({"manifest": {"a.whl": "0" * 64}}, "Invalid options"),
])
def test_bad_input_fails_clearly_and_changes_nothing(tmp_path, src, args, message):
    dest = tmp_path / "host"
    result = run(tmp_path, {"src": str(src), "dest": str(dest), **args})
    assert result.get("failed") and message in result["msg"], result
    assert not dest.exists()


def test_a_missing_src_fails_clearly(tmp_path):
    result = run(tmp_path, {"src": str(tmp_path / "nowhere"), "dest": str(tmp_path / "host")})
    assert result.get("failed") and "is not a directory on the controller" in result["msg"]
