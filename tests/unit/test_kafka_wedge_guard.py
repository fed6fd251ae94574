"""plugins/module_utils/kafka_wedge_guard.py: when a consumer that reads nothing is reopened."""
from __future__ import annotations

import pytest

from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_wedge_guard import WedgeGuard, why_stalled

P = ["p0", "p1"]


def test_behind_the_end_offsets_is_a_reason_caught_up_is_not():
    assert why_stalled(P, {"p0": 5, "p1": 3}, {"p0": 5, "p1": 4}, 21) == "nothing read for 21 s while behind the end offsets"
    assert why_stalled(P, {"p0": 5, "p1": 4}, {"p0": 5, "p1": 4}, 21) is None
    assert why_stalled(P, {"p0": 5, "p1": 4}, lambda: {"p0": 5, "p1": 4}, 21) is None


def test_end_offsets_that_cannot_be_had_are_a_reason():
    def timeout():
        raise TimeoutError("offsets")
    assert why_stalled(P, {"p0": 0, "p1": 0}, timeout, 30) == "end offsets: TimeoutError"


def test_the_guard_asks_only_after_stall_seconds_without_progress():
    now = [0.0]
    guard = WedgeGuard(20, clock=lambda: now[0])
    asked = []

    def ends():
        asked.append(now[0])
        return {"p0": 9, "p1": 0}
    now[0] = 19
    assert guard.check(P, {"p0": 1, "p1": 0}, ends) is None and asked == []
    guard.progressed()  # read something at 19
    now[0] = 39
    assert guard.check(P, {"p0": 1, "p1": 0}, ends) is None and asked == []
    now[0] = 40
    assert "behind" in guard.check(P, {"p0": 1, "p1": 0}, ends) and asked == [40] and guard.reopened == 1
    now[0] = 50  # the reopened client gets another stall_seconds
    assert guard.check(P, {"p0": 1, "p1": 0}, ends) is None and asked == [40]
    now[0] = 61
    assert guard.check(P, {"p0": 9, "p1": 0}, ends) is None and guard.reopened == 1, "caught up: nothing to do"
    with pytest.raises(ValueError):
        WedgeGuard(0)
