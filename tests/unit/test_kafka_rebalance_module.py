"""kafka_rebalance's checks before it connects, and its per-broker views (pure parts of the module)."""
from __future__ import annotations

import pytest

from ansible_collections.isobar.pipeline.plugins.modules.kafka_rebalance import actual_leaders, validate_params

GOOD = {"drain": [], "throttle": 10485760, "timeout": 600, "topics": None}


def test_good_options_pass():
    assert validate_params(GOOD) == []
    assert validate_params(dict(GOOD, drain=[4], throttle=0, topics=["weather"])) == []


@pytest.mark.parametrize("change, problem", [
    ({"drain": [-1]}, "drain must list node ids (>= 0), got [-1]"),
    ({"throttle": -5}, "throttle must be >= 0 bytes/s, got -5"),
    ({"timeout": 0}, "timeout must be > 0 seconds, got 0"),
    ({"topics": []}, "topics, when given, must name at least one topic"),
])
def test_bad_options_are_named_before_anything_is_contacted(change, problem):
    assert validate_params(dict(GOOD, **change)) == [problem]


def test_actual_leaders_count_every_broker_and_skip_offline_partitions():
    leaders = {("weather", 0): 1, ("weather", 1): 1, ("weather", 2): -1, ("alerts", 0): 3}
    assert actual_leaders(leaders, [1, 2, 3]) == {"1": 2, "2": 0, "3": 1}
