"""The collection artifact (issue 13.1): `ansible-galaxy collection build` of the checkout gives isobar-pipeline-<v>.tar.gz,
which installs into another collections path and runs from there, away from this checkout and its ansible.cfg: its
modules document themselves (ansible-doc) and run (a module and a role entry point on this machine). What users do not
get is left out (the lab, tests, bench, developer tools, the lab's vault)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("collection")
    build = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work / "dist"), str(ROOT)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    artifact = work / "dist" / f"isobar-pipeline-{VERSION}.tar.gz"
    assert artifact.is_file(), sorted(p.name for p in (work / "dist").iterdir())
    # Elsewhere: an empty ansible.cfg, a working directory outside the checkout, the collection from the artifact only.
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "ansible.cfg").write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(ANSIBLE_CONFIG=str(elsewhere / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(work / "collections"),
               ANSIBLE_LOCAL_TEMP=str(work / "tmp"), HOME=str(work))
    install = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p",
                              str(work / "collections"), str(artifact)],
                             cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    return {"artifact": artifact, "env": env, "cwd": elsewhere, "root": work / "collections" / "ansible_collections"}


def test_artifact_holds_what_users_need_and_nothing_of_the_lab(installed):
    with tarfile.open(installed["artifact"]) as archive:
        tops = {name.split("/")[0] for name in archive.getnames()}
    assert {"plugins", "roles", "playbooks", "meta", "MANIFEST.json", "README.md"} <= tops, tops
    assert not tops & {"tests", "bench", "lab", "molecule", "tools", ".git", ".venv", "collections"}, tops
    with tarfile.open(installed["artifact"]) as archive:
        leaked = [n for n in archive.getnames() if n.startswith("inventories/lab")
                  or Path(n).name in ("vault.yml", "vault_generated.yml", "vault-password.txt")]
    assert not leaked, f"the lab inventory or a vault is in the artifact: {leaked}"


def test_installed_collection_documents_its_modules(installed):
    installed_at = installed["root"] / "isobar" / "pipeline"
    assert (installed_at / "MANIFEST.json").is_file() and not installed_at.is_symlink()
    doc = subprocess.run([str(BIN / "ansible-doc"), "--json", "isobar.pipeline.kafka_topic", "isobar.pipeline.grafana_dashboard"],
                         cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True, timeout=120)
    assert doc.returncode == 0, doc.stderr[-2000:]
    docs = json.loads(doc.stdout)
    assert str(installed_at) in docs["isobar.pipeline.kafka_topic"]["doc"]["filename"]
    assert "bootstrap_servers" in docs["isobar.pipeline.kafka_topic"]["doc"]["options"]


def test_installed_collection_runs_a_module_and_a_role(installed, tmp_path):
    dest = tmp_path / "weather.json"
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Use the installed collection", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable},
        "tasks": [
            {"name": "A module of the collection", "isobar.pipeline.grafana_dashboard": {
                "dashboard": "weather", "dest": str(dest), "datasource_uid": "isobar-influxdb", "bucket": "weather"}},
            {"name": "A role entry point of the collection (the pipeline names)",
             "ansible.builtin.include_role": {"name": "isobar.pipeline.topology", "public": True}},
            {"name": "Its defaults are there", "ansible.builtin.assert": {"that": ["kafka_weather_topic == 'weather'"]}},
        ],
    }]))
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)], cwd=installed["cwd"],
                         env=installed["env"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert json.loads(dest.read_text())["uid"] == "isobar-weather"
