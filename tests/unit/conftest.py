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
    from ansible_collections.isobar.pipeline.plugins.modules import kafka_cluster_info

    return kafka_cluster_info
