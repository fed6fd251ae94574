"""The live services run the collection's module_utils from a copy on their host (roles/pipeline/tasks/code.yml,
roles/influxdb/tasks/backup_service.yml): every file they import must be in the copy.

A module_utils file missing from the list only shows on the host, when isobar-producer.service fails to start."""
from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MODULE_UTILS = ROOT / "plugins" / "module_utils"
PREFIX = "ansible_collections.isobar.pipeline.plugins.module_utils."


def imported_module_utils(name: str, seen: set[str]) -> set[str]:
    """The collection's module_utils file names ``name`` imports, directly or not (``name`` included)."""
    if name in seen:
        return seen
    seen.add(name)
    for node in ast.walk(ast.parse((MODULE_UTILS / name).read_text(encoding="utf-8"))):
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        for module in modules:
            if module.startswith(PREFIX) and (MODULE_UTILS / f"{module[len(PREFIX):]}.py").is_file():
                imported_module_utils(f"{module[len(PREFIX):]}.py", seen)
    return seen


def test_the_services_code_copy_holds_everything_they_import():
    tasks = yaml.safe_load((ROOT / "roles" / "pipeline" / "tasks" / "code.yml").read_text(encoding="utf-8"))
    copy = next(t for t in tasks if t["name"] == "Code | Install the shared code")
    copied = set(copy["isobar.pipeline.file_set"]["files"])
    needed = imported_module_utils("pipeline_live.py", set())
    assert "kafka_senders.py" in needed and "pipeline_publish.py" in needed  # the walk follows the imports
    assert needed <= copied, f"not copied to the producer host: {sorted(needed - copied)}"


def test_the_backup_services_code_copy_holds_everything_it_imports():
    """isobar-backup.service runs influxdb_backup_auto from a copy of its module_utils (roles/influxdb)."""
    tasks = yaml.safe_load((ROOT / "roles" / "influxdb" / "tasks" / "backup_service.yml").read_text(encoding="utf-8"))
    copy = next(t for t in tasks if t["name"].startswith("Backup service | Install the backup code"))
    copied = set(copy["isobar.pipeline.file_set"]["files"])
    needed = imported_module_utils("influxdb_backup_auto.py", set())
    assert "backup_retention.py" in needed and "influxdb_client_common.py" in needed  # the walk follows the imports
    assert needed <= copied, f"not copied to the InfluxDB host: {sorted(needed - copied)}"
