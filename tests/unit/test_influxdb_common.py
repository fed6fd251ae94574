"""Durations and helpers of plugins/module_utils/influxdb_client_common.py."""
from __future__ import annotations

from pathlib import Path

import ansible.module_utils
import pytest

ansible.module_utils.__path__.append(str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))
from ansible.module_utils import influxdb_client_common as common  # noqa: E402


@pytest.mark.parametrize("text, seconds", [
    ("0", 0), ("10s", 10), ("1m", 60), ("1h30m", 5400), ("30d", 30 * 86400), ("1w", 7 * 86400), ("90s", 90)])
def test_parse_duration(text, seconds):
    assert common.parse_duration(text) == seconds * 10**9


@pytest.mark.parametrize("text", ["", "30", "1x", "10 s", "-5m", "5m10", "m"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        common.parse_duration(text)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (90, "1m30s"), (3600, "1h"), (86400 * 8, "1w1d"), (10, "10s")])
def test_format_duration_is_canonical(seconds, text):
    assert common.format_duration(seconds * 10**9) == text
    assert common.parse_duration(text) == seconds * 10**9


def test_format_duration_subsecond():
    assert common.format_duration(1_500_000_000) == "1s500ms"
