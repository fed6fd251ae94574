"""Shared pytest helpers: run our Ansible modules for real, find the artifact store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.ansible_env import collection_module

# Session fixtures that start real servers from the artifact store, one module per component.
pytest_plugins = [name for name in ("fixtures.kafka_server", "fixtures.influxdb_server")
                  if (Path(__file__).parent / "fixtures" / (name.split(".")[1] + ".py")).exists()]

ROOT = Path(__file__).resolve().parents[1]


def artifact_store() -> Path:
    cache = os.environ.get("ISOBAR_CACHE") or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "isobar")
    return Path(os.environ.get("STORE_DIR") or Path(cache) / "store")


def run_module(module: str, args: dict, *, check: bool = False, diff: bool = False, timeout: int = 300) -> dict:
    """Run one of our modules on localhost through ansible (the real module machinery) and return its result.

    The result dict carries 'failed', 'changed', 'msg', 'diff' ... exactly as a playbook would see them.
    A short name is one of this collection's modules (kafka_topic -> isobar.pipeline.kafka_topic).
    """
    module = collection_module(module)
    cmd = [
        str(Path(sys.executable).with_name("ansible")), "localhost", "-i", "localhost,", "-c", "local",
        "-m", module, "-a", json.dumps(args),
        "-e", json.dumps({"ansible_python_interpreter": sys.executable}),
    ]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    try:
        report = json.loads(proc.stdout)
        return report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(f"could not read the result of {module}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}") from None


@pytest.fixture(scope="session")
def store() -> Path:
    path = artifact_store()
    if not (path / "manifest.json").exists():
        pytest.fail(f"artifact store {path} has no manifest.json: run `make artifacts` first")
    return path
