"""kafka_feature against a real Kafka formatted one release below its binaries (tests/fixtures/kafka_server.py): a
cluster upgraded but not finalized. Every level is read back from the broker; refusals change nothing."""
from __future__ import annotations

import time

from conftest import run_module

NOTHING = "Nothing was changed."


def finalized(admin, name="metadata.version", expect=None):
    """The level the broker reports (polled for up to 15 s when a value is expected: metadata propagates)."""
    deadline = time.monotonic() + 15
    while True:
        entry = admin.describe_features(send_request_to_controller=True).get(name) or {}
        level = entry["finalized"][1] if entry.get("finalized") else None
        if expect is None or level == expect or time.monotonic() > deadline:
            return level
        time.sleep(0.5)


def test_finalizing_the_upgrade_raises_metadata_version_once_and_refuses_to_go_back(kafka_server, admin):
    read = run_module("kafka_feature", kafka_server.connection_args())
    assert read.get("failed") is not True, read
    before, newest = read["finalized"], read["supported"]["max"]
    assert read["changed"] is False and before == finalized(admin) and before < newest, read

    checked = run_module("kafka_feature", dict(kafka_server.connection_args(), level=newest), check=True)
    assert checked["changed"] is True and checked["level"] == newest and finalized(admin) == before

    done = run_module("kafka_feature", dict(kafka_server.connection_args(), level=newest), diff=True)
    assert done["changed"] is True and finalized(admin, expect=newest) == newest, done
    assert done["diff"] == {"before": {"metadata.version": before}, "after": {"metadata.version": newest}}
    again = run_module("kafka_feature", dict(kafka_server.connection_args(), level=newest))
    assert again["changed"] is False, again

    back = run_module("kafka_feature", dict(kafka_server.connection_args(), level=before))
    assert back["failed"] and "would be a downgrade, refused" in back["msg"] and NOTHING in back["msg"], back
    older = run_module("kafka_feature", dict(kafka_server.connection_args(), max_level=before))
    assert older["failed"] and f"finalized at {newest}, above {before}" in older["msg"], older
    assert run_module("kafka_feature", dict(kafka_server.connection_args(), max_level=newest))["changed"] is False
    assert finalized(admin) == newest


def test_a_level_the_brokers_do_not_support_is_refused(kafka_server, admin):
    level = finalized(admin)
    result = run_module("kafka_feature", dict(kafka_server.connection_args(), level=999))
    assert result["failed"] and "above what the brokers support" in result["msg"] and NOTHING in result["msg"]
    assert finalized(admin) == level


def test_kraft_version_is_never_raised_by_it(kafka_server, admin):
    before = finalized(admin, "kraft.version")
    result = run_module("kafka_feature", dict(kafka_server.connection_args(), name="kraft.version", level=1))
    assert result["failed"] and "converts a static controller quorum" in result["msg"], result
    assert finalized(admin, "kraft.version") == before
