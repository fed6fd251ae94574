"""kafka_cluster_info's leadership facts (used by playbooks/broker-failover.yml): leaders per broker and
partitions not led by their preferred replica. Pure, no server."""
from __future__ import annotations


QUORUM = {"topics": [{"partitions": [{"leader_id": 1, "leader_epoch": 1, "high_watermark": 5,
                                      "current_voters": [{"replica_id": i, "log_end_offset": 5} for i in (1, 2, 3)],
                                      "observers": []}]}]}
BROKERS = {"brokers": [{"broker_id": i, "is_fenced": False} for i in (1, 2, 3)]}


def part(index, leader, replicas, isr=None):
    return {"partition_index": index, "leader_id": leader, "replica_nodes": replicas,
            "isr_nodes": replicas if isr is None else isr}


def test_balanced_cluster_has_no_mismatch(cluster_info):
    topics = [{"name": "t", "partitions": [part(0, 1, [1, 2, 3]), part(1, 2, [2, 3, 1]), part(2, 3, [3, 1, 2])]}]
    result = cluster_info.assess(BROKERS, QUORUM, topics, [1, 2, 3], [1, 2, 3], 10)
    assert result["leaders_per_broker"] == {"1": 1, "2": 1, "3": 1}
    assert result["preferred_leader_mismatches"] == []
    assert result["healthy"] is True


def test_broker_down_moves_leadership_and_is_listed_with_zero(cluster_info):
    topics = [{"name": "t", "partitions": [part(0, 1, [1, 2, 3], [1, 3]), part(1, 3, [2, 3, 1], [3, 1]),
                                           part(2, 3, [3, 1, 2], [3, 1]), part(3, -1, [2], [])]}]
    result = cluster_info.assess(BROKERS, QUORUM, topics, [1, 2, 3], [1, 2, 3], 10)
    assert result["leaders_per_broker"] == {"1": 1, "2": 0, "3": 2}
    assert result["preferred_leader_mismatches"] == [
        {"topic": "t", "partition": 1, "replicas": [2, 3, 1], "isr": [3, 1], "leader": 3, "preferred": 2}]
    assert [o["partition"] for o in result["offline_partitions"]] == [3]


def test_leader_that_is_not_registered_is_still_counted(cluster_info):
    """A crashed broker stays named as leader until it is fenced: the drill must see it."""
    topics = [{"name": "t", "partitions": [part(0, 2, [2, 1, 3])]}]
    result = cluster_info.assess({"brokers": [{"broker_id": 1}, {"broker_id": 3}]}, QUORUM, topics, [], [], 10)
    assert result["leaders_per_broker"] == {"1": 0, "3": 0, "2": 1}


def test_check_logins_lists_each_broker_that_refuses(cluster_info, monkeypatch):
    """Each registered, unfenced broker is logged in to alone; the ones that refuse are named with the reason."""
    tried = []

    def fake_login(params, user, password):
        tried.append(params["bootstrap_servers"])
        if params["bootstrap_servers"] == ["10.0.0.2:9092"]:
            return RuntimeError("Authentication failed during authentication due to invalid credentials")
        return None

    monkeypatch.setattr(cluster_info, "try_login", fake_login)
    monkeypatch.setattr(cluster_info, "describe_exception", lambda exc, params, user=None: f"refused: {exc}")
    brokers = [{"id": 1, "host": "10.0.0.1", "port": 9092, "fenced": False},
               {"id": 2, "host": "10.0.0.2", "port": 9092, "fenced": False},
               {"id": 3, "host": "10.0.0.3", "port": 9092, "fenced": True}]
    params = {"bootstrap_servers": ["10.0.0.1:9092"], "sasl_username": "admin", "sasl_password": "x"}
    failures = cluster_info.check_broker_logins(params, brokers)
    assert tried == [["10.0.0.1:9092"], ["10.0.0.2:9092"]]  # the fenced broker is not asked
    assert failures == [{"id": 2, "address": "10.0.0.2:9092",
                         "error": "refused: Authentication failed during authentication due to invalid credentials"}]
