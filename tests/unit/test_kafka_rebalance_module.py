"""kafka_rebalance's checks before it connects, and its per-broker views (pure parts of the module)."""
from __future__ import annotations

import pytest

from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import KafkaModuleError
from ansible_collections.isobar.pipeline.plugins.modules.kafka_rebalance import actual_leaders, settle_leaders, validate_params

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


class StaleMetadataCluster:
    """The admin calls settle_leaders makes, answered like a cluster whose metadata lags the controller: the first
    `stale_reads` describe_topics still show the replicas before the reassignment; elections change the leader only
    for partitions whose replicas the controller already holds as the target's."""

    def __init__(self, before, after, leaders, stale_reads):
        self.before, self.after, self.leaders, self.stale_reads = before, after, dict(leaders), stale_reads
        self.elections = []

    def describe_topics(self, topics=None):
        view = self.before if self.stale_reads > 0 else self.after
        self.stale_reads -= 1
        by_topic = {}
        for (topic, partition), replicas in sorted(view.items()):
            by_topic.setdefault(topic, []).append({"partition_index": partition, "replica_nodes": replicas,
                                                   "leader_id": self.leaders[topic, partition]})
        return [{"name": topic, "error_code": 0, "partitions": parts} for topic, parts in by_topic.items()]

    def elect_leaders(self, election_type, topic_partitions=None):
        assert election_type == 0
        self.elections.append(topic_partitions)
        for topic, partitions in topic_partitions.items():
            for partition in partitions:
                self.leaders[topic, partition] = self.after[topic, partition][0]


def test_leaders_are_elected_even_when_the_first_metadata_read_still_shows_the_old_replicas():
    # Partition 1 moved from [1, 2] to [4, 1]: its leader (1) is the preferred one of the old replica list, so a
    # single election decided on the stale view elects nothing (the CI failure: kafka4 led no partition).
    before = {("weather", 0): [2, 3], ("weather", 1): [1, 2]}
    after = {("weather", 0): [2, 3], ("weather", 1): [4, 1]}
    cluster = StaleMetadataCluster(before, after, {("weather", 0): 2, ("weather", 1): 1}, stale_reads=2)
    elected, leaders, final = settle_leaders(cluster, after, None, timeout=5, poll=0)
    assert elected == [("weather", 1)]
    assert leaders == {("weather", 0): 2, ("weather", 1): 4} and final == after
    assert cluster.elections == [{"weather": [1]}]


def test_settling_gives_up_with_the_partitions_named_when_the_metadata_never_catches_up():
    before = {("weather", 0): [1, 2]}
    after = {("weather", 0): [4, 1]}
    cluster = StaleMetadataCluster(before, after, {("weather", 0): 1}, stale_reads=10 ** 6)
    with pytest.raises(KafkaModuleError, match=r"1 partition\(s\) do not show their new replicas yet .*weather-0"):
        settle_leaders(cluster, after, None, timeout=0.05, poll=0.01)
    assert cluster.elections == []
