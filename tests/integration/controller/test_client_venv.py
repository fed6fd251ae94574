"""roles/client_venv's install step (tasks/libraries.yml) on this machine, into a temporary venv, offline from the
artifact store's wheels: pip runs in hash-checking mode against the sha256 the store recorded for each wheel
(SHA256SUMS). The store's wheels install, a second run and --check change nothing and do not copy the wheels again; a
missing or damaged wheel on the host is copied again; a wheel changed after the store was filled is refused with a
clear error and nothing is installed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, artifact_store
from fixtures.playbook_run import results_by_host, run_playbook
from fixtures.prerequisites import missing

pytestmark = pytest.mark.slow

REQUIREMENTS = ["kafka-python==3.0.12", "influxdb-client==1.50.0"]  # two of the role's defaults


@pytest.fixture
def wheels(tmp_path):
    """A copy of the store's wheel directory (the tests may damage it)."""
    store = artifact_store() / "pipeline-wheels"
    if not (store / "SHA256SUMS").exists():
        missing(f"no wheel store at {store} (make artifacts)")
    copy = tmp_path / "store-wheels"
    shutil.copytree(store, copy)
    return copy


def _run(tmp_path, wheels, *extra):
    playbook = tmp_path / "client_venv.yml"
    playbook.write_text(json.dumps([{"name": "Client venv install step", "hosts": "localhost", "gather_facts": False,
                                     "tasks": [{"name": "Install", "ansible.builtin.include_role": {
                                         "name": "isobar.pipeline.client_venv", "tasks_from": "libraries.yml"}}]}]))
    settings = {"client_venv_path": str(tmp_path / "venv"), "client_venv_wheels_src": str(wheels),
                "client_venv_wheels_dir": str(tmp_path / "host-wheels"), "client_venv_requirements": REQUIREMENTS,
                "ansible_python_interpreter": sys.executable}
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_DISPLAY_SKIPPED_HOSTS="1")
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_REQUIRE_HASHES"):
        env.pop(name, None)
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           "-e", json.dumps(settings), str(playbook), *extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    output = proc.stdout + proc.stderr
    recap = next((line for line in output.splitlines() if line.startswith("localhost") and "ok=" in line), "")
    return proc.returncode, recap, output


def _installed(tmp_path):
    venv_python = tmp_path / "venv" / "bin" / "python"
    if not venv_python.exists():
        return {}
    out = subprocess.run([str(venv_python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


def _copy_step(output):
    """What the run printed for the task that copies the wheels to the host: 'skipping', 'ok' or 'changed'."""
    section = output.split("Copy the wheels (offline mode)", 1)[1].split("TASK [", 1)[0]
    return next(word for word in ("skipping", "changed", "ok") if f"{word}: [localhost]" in section)


def _same_wheels(store, host):
    return all((host / f.name).exists() and (host / f.name).read_bytes() == f.read_bytes() for f in store.glob("*.whl"))


def test_the_stores_wheels_install_with_hashes_and_a_second_run_changes_nothing(tmp_path, wheels):
    rc, recap, output = _run(tmp_path, wheels)
    assert rc == 0 and "changed=0" not in recap, output[-4000:]
    installed = _installed(tmp_path)
    assert installed.get("kafka-python") == "3.0.12" and installed.get("influxdb-client") == "1.50.0", installed
    pinned = (tmp_path / "host-wheels" / "requirements-hashed.txt").read_text()
    assert "kafka-python==3.0.12 --hash=sha256:" in pinned and all("--hash=sha256:" in line for line in pinned.splitlines())
    for extra in ([], ["--check"]):
        rc, recap, output = _run(tmp_path, wheels, *extra)
        assert rc == 0 and "changed=0" in recap, (extra, recap, output[-3000:])
        # the host's copy matches the store's wheels: one call, nothing sent
        assert _copy_step(output) == "ok", (extra, output[-3000:])


def test_a_missing_or_damaged_wheel_on_the_host_is_copied_again(tmp_path, wheels):
    rc, recap, output = _run(tmp_path, wheels)
    assert rc == 0, output[-4000:]
    host = tmp_path / "host-wheels"
    next(host.glob("kafka_python-*.whl")).unlink()
    with open(next(host.glob("influxdb_client-*.whl")), "ab") as handle:
        handle.write(b"\0damaged")
    rc, recap, output = _run(tmp_path, wheels, "--check")
    assert rc == 0 and _copy_step(output) == "changed", output[-3000:]
    assert not _same_wheels(wheels, host), "--check changed the host's wheels"
    rc, recap, output = _run(tmp_path, wheels)
    assert rc == 0 and _copy_step(output) == "changed", output[-3000:]
    assert _same_wheels(wheels, host)
    rc, recap, output = _run(tmp_path, wheels)
    assert rc == 0 and "changed=0" in recap and _copy_step(output) == "ok", output[-3000:]


def test_a_tampered_wheel_is_refused_and_nothing_is_installed(tmp_path, wheels):
    wheel = next(wheels.glob("kafka_python-*.whl"))
    with open(wheel, "ab") as handle:  # still a valid zip: only its sha256 tells
        handle.write(b"\0tampered")
    rc, recap, output = _run(tmp_path, wheels)
    assert rc != 0 and "failed=1" in recap, output[-4000:]
    assert "is not the one the artifact store recorded" in " ".join(output.split()), output[-4000:]
    installed = _installed(tmp_path)
    assert not {"kafka-python", "influxdb-client", "urllib3"} & set(installed), installed


def test_within_one_run_the_role_ends_at_once_where_it_already_made_the_same_virtualenv(tmp_path, wheels):
    # site.yml runs the role on every host first; the kafka, influxdb and pipeline plays apply it again. The whole role
    # (main entry point) three times in one run: the second time it ends at its first task, the third asks for other
    # pins and runs again.
    role = {"role": "isobar.pipeline.client_venv", "client_venv_requirements": REQUIREMENTS}  # role parameters: not -e,
    fewer = dict(role, client_venv_requirements=REQUIREMENTS[:1])  # which would win over the third play's
    playbook = tmp_path / "twice.yml"
    playbook.write_text(json.dumps([{"name": name, "hosts": "localhost", "gather_facts": False, "roles": [entry]}
                                    for name, entry in (("first", role), ("again", role), ("other pins", fewer))]))
    settings = {"client_venv_path": str(tmp_path / "venv"), "client_venv_wheels_src": str(wheels),
                "client_venv_wheels_dir": str(tmp_path / "host-wheels"),
                # installed here (python3-packaging may not be): the pip module runs on this Python
                "client_venv_packages": ["python3-venv"],
                "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    run = run_playbook("localhost,", playbook, settings).assert_ok()
    first, again, other = (dict(results_by_host(run, play)["localhost"]) for play in range(3))
    work = ("Install python3-venv", "Copy the wheels (offline mode)",
            "Find out whether the pinned libraries are installed (offline mode)")
    for name in work:
        assert any(task.endswith(name) and not result.get("skipped") for task, result in first.items()), (name, first)
        assert not any(task.endswith(name) for task in again), (name, again)
        assert any(task.endswith(name) and not result.get("skipped") for task, result in other.items()), (name, other)
    assert _installed(tmp_path).get("kafka-python") == "3.0.12"
