"""Fixtures shared by the unit tests."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster_info():
    """kafka_cluster_info imported with its module_utils under the names Ansible gives them."""
    sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))
    import kafka_client

    sys.modules.setdefault("ansible.module_utils.kafka_client", kafka_client)
    spec = importlib.util.spec_from_file_location("kafka_cluster_info", ROOT / "plugins" / "modules" / "kafka_cluster_info.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
