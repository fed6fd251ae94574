"""Partition rebalance planning (kafka_balance): balance within one, fewest moves, refusals."""
from __future__ import annotations

import random

import pytest

from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_balance import (
    BalanceError, is_balanced, leaders_per_broker, plan, replicas_per_broker, throttled_replicas)


def three_broker_cluster(topics=None):
    """What the lab holds: every topic at replication factor 3 on brokers 1-3, leaders spread round robin."""
    topics = topics or {"weather": 3, "weather-telegraf": 3, "alerts": 1, "__consumer_offsets": 50}
    assignment = {}
    for topic, partitions in topics.items():
        for partition in range(partitions):
            first = partition % 3
            assignment[topic, partition] = [1 + (first + i) % 3 for i in range(3)]
    return assignment


def spread(counts, brokers):
    return max(counts[b] for b in brokers) - min(counts[b] for b in brokers)


def test_a_new_broker_gets_its_share_of_replicas_and_leaders():
    before = three_broker_cluster()
    result = plan(before, [1, 2, 3, 4])
    after = result["assignment"]
    replicas, leaders = replicas_per_broker(after, [1, 2, 3, 4]), leaders_per_broker(after, [1, 2, 3, 4])
    assert spread(replicas, [1, 2, 3, 4]) <= 1 and spread(leaders, [1, 2, 3, 4]) <= 1
    assert replicas[4] == sum(len(r) for r in before.values()) // 4
    # Each partition keeps its replication factor and never lists a broker twice.
    assert all(len(after[k]) == len(set(after[k])) == len(before[k]) for k in before)
    # Fewest copies: the new broker receives exactly the replicas it ends up with, nothing else travels.
    added = sum(len(set(a) - set(b)) for b, a in result["data_moves"].values())
    assert added == replicas[4]
    assert is_balanced(after, [1, 2, 3, 4])


def test_a_balanced_cluster_plans_nothing_so_a_second_run_moves_nothing():
    first = plan(three_broker_cluster(), [1, 2, 3, 4])
    second = plan(first["assignment"], [1, 2, 3, 4])
    assert first["moves"] and second["moves"] == {} and second["data_moves"] == {}
    assert plan(three_broker_cluster({"weather": 3, "__consumer_offsets": 51}), [1, 2, 3])["moves"] == {}


def test_draining_moves_every_replica_off_the_broker_and_stays_balanced():
    grown = plan(three_broker_cluster(), [1, 2, 3, 4])["assignment"]
    result = plan(grown, [1, 2, 3, 4], drain=[4])
    after = result["assignment"]
    assert all(4 not in replicas for replicas in after.values())
    assert result["replicas_after"][4] == 0 and result["leaders_after"][4] == 0
    assert is_balanced(after, [1, 2, 3])
    assert result["targets"] == [1, 2, 3]


def test_removing_a_broker_below_the_replication_factor_is_refused():
    with pytest.raises(BalanceError, match=r"replication factor 3, more than the 2 broker\(s\) \[1, 2\]"):
        plan(three_broker_cluster(), [1, 2, 3], drain=[3])


def test_a_replica_on_an_unregistered_broker_is_refused_unless_drained():
    assignment = {("weather", 0): [1, 2, 7], ("weather", 1): [2, 3, 1]}
    with pytest.raises(BalanceError, match=r"weather-0 has a replica on broker\(s\) \[7\], which are not registered"):
        plan(assignment, [1, 2, 3])
    result = plan(assignment, [1, 2, 3], drain=[7])
    assert all(7 not in r for r in result["assignment"].values())


def test_a_drained_broker_already_gone_is_reported_not_refused_and_nothing_moves():
    # A removal run again: the broker is unregistered and holds nothing (or the id is wrong): say so, move nothing.
    result = plan(three_broker_cluster({"weather": 3}), [1, 2, 3], drain=[9])
    assert result["absent"] == [9] and result["moves"] == {} and 9 not in result["replicas_after"]


def test_nothing_left_is_refused():
    with pytest.raises(BalanceError, match="no broker would be left"):
        plan({("t", 0): [1]}, [1], drain=[1])


def test_leadership_is_balanced_by_reordering_without_moving_data():
    # Every partition preferred on broker 1: balance needs no copy, only a new order.
    assignment = {("weather", p): [1, 2, 3] for p in range(6)}
    result = plan(assignment, [1, 2, 3])
    assert result["data_moves"] == {}
    assert result["leaders_after"] == {1: 2, 2: 2, 3: 2}


def random_cluster(seed):
    """A skewed cluster: 3-7 brokers, 1-5 topics of factor 1-3, the first brokers drawn far more often."""
    rng = random.Random(seed)
    brokers = list(range(1, rng.randint(3, 7) + 1))
    weights = [len(brokers) - i for i in range(len(brokers))]
    assignment = {}
    for topic in range(rng.randint(1, 5)):
        factor = rng.randint(1, 3)
        for partition in range(rng.randint(1, 20)):
            chosen = []
            while len(chosen) < factor:
                broker = rng.choices(brokers, weights)[0]
                if broker not in chosen:
                    chosen.append(broker)
            assignment[f"t{topic}", partition] = chosen
    return assignment, brokers


def test_random_clusters_end_balanced_and_stay_put():
    # Factor-1 topics can only hand leadership over by moving data (a leader and a follower trade places).
    unbalanced = []
    for seed in range(500):
        assignment, brokers = random_cluster(seed)
        result = plan(assignment, brokers)
        if not is_balanced(result["assignment"], brokers) or plan(result["assignment"], brokers)["moves"]:
            unbalanced.append((seed, result["replicas_after"], result["leaders_after"]))
        assert sorted(map(len, result["assignment"].values())) == sorted(map(len, assignment.values()))
    assert unbalanced == []


def test_throttled_replicas_name_the_serving_and_the_receiving_replicas():
    moves = {("weather", 0): ([1, 2, 3], [4, 2, 3]), ("weather", 2): ([3, 1, 2], [3, 1, 4])}
    assert throttled_replicas(moves) == {"weather": {
        "leader.replication.throttled.replicas": "0:1,0:2,0:3,2:3,2:1,2:2",
        "follower.replication.throttled.replicas": "0:4,2:4"}}
