"""The collection's filter plugins import nothing heavy.

Ansible loads every filter file of a collection in each worker process, the first time a task there uses any of the
collection's filters: an import in one filter file is paid once per host and task all over a converge. When
backup_retention imported the InfluxDB client (and through it numpy), each such host-task paid 0.3 s: the topology
role's argument validation, which templates the bootstrap list (filter kafka_nodes_with), took 1.4 s per play instead
of 0.3 s."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILTERS = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.py") if p.stem != "__init__")
# Client libraries of the modules: the controller's templating never needs them.
HEAVY = ("influxdb_client", "numpy", "kafka", "confluent_kafka", "urllib3", "requests", "cryptography")

PROGRAM = """
import importlib, json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    importlib.import_module("ansible_collections.isobar.pipeline.plugins.filter." + name)
print(json.dumps(sorted({m.split(".")[0] for m in set(sys.modules) - before})))
"""


def test_importing_every_filter_plugin_loads_no_client_library():
    assert "backup_retention" in FILTERS and "kafka_nodes" in FILTERS
    # A fresh interpreter (this one may have imported the clients already), with this one's import path.
    out = subprocess.run([sys.executable, "-c", PROGRAM, *FILTERS], check=True, capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if m in HEAVY], f"filter plugins import {[m for m in loaded if m in HEAVY]}"
