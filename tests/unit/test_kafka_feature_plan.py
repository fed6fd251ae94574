"""kafka_feature's decision (pure): finalize up, refuse downgrades, unsupported levels and kraft.version."""
from __future__ import annotations

import pytest

from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import KafkaModuleError
from ansible_collections.isobar.pipeline.plugins.modules.kafka_feature import plan_feature

MV = "metadata.version"


def test_upgrade_sets_the_level_and_a_finalized_level_plans_nothing():
    assert plan_feature(MV, 30, (7, 33), 33, None, False) == 33
    assert plan_feature(MV, 33, (7, 33), 33, None, False) is None
    assert plan_feature(MV, 30, (7, 33), None, None, False) is None


@pytest.mark.parametrize("args, message", [
    ((MV, 33, (7, 33), 30, None, False), "33; 30 would be a downgrade, refused without allow_downgrade"),
    ((MV, 30, (7, 30), 33, None, False), "level 33 is above what the brokers support (7-30)"),
    ((MV, 33, (7, 33), None, 30, False), "finalized at 33, above 30"),
    (("kraft.version", 0, (0, 1), 1, None, False), "converts a static controller quorum"),
    ((MV, 30, (7, 33), 0, None, False), "level must be >= 1"),
])
def test_refusals_say_why_and_that_nothing_changed(args, message):
    with pytest.raises(KafkaModuleError, match="Nothing was changed") as error:
        plan_feature(*args)
    assert message in str(error.value)


def test_an_explicit_safe_downgrade_and_a_check_below_the_limit_pass():
    assert plan_feature(MV, 33, (7, 33), 30, None, True) == 30
    assert plan_feature(MV, 30, (7, 33), None, 30, False) is None
