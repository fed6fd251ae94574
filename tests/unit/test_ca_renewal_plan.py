"""The CA renewal's plan (plugins/filter/ca_renewal.py): which stages run, when a new CA is made, what is refused."""
from __future__ import annotations

import pytest

from ansible_collections.isobar.pipeline.plugins.filter.ca_renewal import ca_renewal_plan

FRESH = {"ca": True, "next": False, "previous": False, "serial": 0x3039, "days_left": 3600, "retired": []}


def test_a_fresh_ca_is_left_alone():
    plan = ca_renewal_plan(FRESH)
    assert plan["action"] == "nothing" and plan["stages"] == [] and not plan["start"]


def test_a_ca_in_its_renewal_window_is_renewed_through_every_stage():
    plan = ca_renewal_plan(dict(FRESH, days_left=80))
    assert plan == {"action": "run", "start": True, "stages": ["trust", "leaves", "retire"], "reason": plan["reason"]}


@pytest.mark.parametrize("serial", [0x3039, "3039", "30:39", "0x3039", "serial=3039", "003039"])
def test_naming_the_signing_ca_renews_it(serial):
    plan = ca_renewal_plan(FRESH, "trust", serial)
    assert plan["action"] == "run" and plan["start"] and plan["stages"] == ["trust"]


def test_naming_a_retired_ca_is_done_already():
    plan = ca_renewal_plan(dict(FRESH, serial=0x99, retired=[0x3039]), "retire", "3039")
    assert plan["action"] == "nothing"


def test_resume_after_trust_runs_the_rest_without_a_new_ca():
    plan = ca_renewal_plan(dict(FRESH, next=True), "retire")
    assert plan["action"] == "run" and not plan["start"] and plan["stages"] == ["trust", "leaves", "retire"]


def test_resume_after_the_swap_skips_trust():
    state = dict(FRESH, previous=True, serial=0x99, previous_serial=0x3039)
    assert ca_renewal_plan(state, "retire")["stages"] == ["leaves", "retire"]
    assert ca_renewal_plan(state, "retire", "3039")["stages"] == ["leaves", "retire"]
    # Stopping after trust once the swap happened: the leaves are re-checked (never undone).
    assert ca_renewal_plan(state, "trust")["stages"] == ["leaves"]


@pytest.mark.parametrize("state, stop_after, serial, message", [
    (FRESH, "everything", None, "ca_stop_after='everything'"),
    (dict(FRESH, ca=False), "retire", None, "no CA on the controller"),
    (dict(FRESH, next=True, previous=True), "retire", None, "two renewals overlap"),
    (FRESH, "retire", "abcd", "no such CA"),
    (dict(FRESH, next=True), "retire", "abcd", "under way"),
    (dict(FRESH, previous=True, serial=0x99, previous_serial=0x3039), "retire", "99", "under way"),
])
def test_unsafe_or_unclear_requests_are_refused(state, stop_after, serial, message):
    with pytest.raises(Exception, match=message) as error:
        ca_renewal_plan(state, stop_after, serial)
    assert "Nothing was changed" in str(error.value)
