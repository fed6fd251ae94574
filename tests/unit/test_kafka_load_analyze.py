"""tools/kafka_load.py's pure parts: the figures a failover drill reports from an events file (no server)."""
from __future__ import annotations

import json

import pytest
from fixtures.operations import load_program


@pytest.fixture(scope="module")
def load():
    return load_program("tools/kafka_load.py", "kafka_load")


def ack(seq, sent, wait, partition=0):
    return {"e": "ack", "seq": seq, "sent": sent, "t": sent + wait, "p": partition, "o": seq}


def err(seq, sent, after, kind="KafkaTimeoutError"):
    return {"e": "err", "seq": seq, "sent": sent, "t": sent + after, "kind": kind}


def test_merge_spans(load):
    assert load.merge_spans([(5, 6), (0, 2), (1, 3), (3.5, 4)]) == [(0, 3), (3.5, 4), (5, 6)]
    assert load.merge_spans([]) == []


def test_window_is_the_longest_merged_stall_not_the_span_between_two_hiccups(load):
    events = [ack(i, 100 + i * 0.1, 0.01, i % 3) for i in range(100)]  # 10 s of normal traffic
    events += [ack(200, 101.0, 1.5, 1),                                   # an isolated hiccup (1.5 s)
               ack(201, 105.0, 4.0, 2), ack(202, 106.0, 3.2, 2),          # the outage: 105.0 -> 109.2
               ack(203, 108.0, 1.2, 0)]                                   # overlapping, other partition
    phase = load.analyze(events, [{"name": "down", "begin": 100, "end": 110}], stall_threshold=1.0)["down"]
    assert phase["window_s"] == pytest.approx(4.2)
    assert phase["window_from"] == pytest.approx(105.0)
    assert phase["stall_spans"] == 2 and phase["stalled_sends"] == 4
    assert phase["stalled_partitions"] == [0, 1, 2]
    assert phase["max_ack_wait_s"] == pytest.approx(4.0)
    assert phase["failed"] == 0 and phase["acked"] == phase["sent"] == 104


def test_no_stall_means_no_window(load):
    phase = load.analyze([ack(i, 10 + i, 0.05) for i in range(5)], [{"name": "p", "begin": 0, "end": 100}])["p"]
    assert phase["window_s"] == 0.0 and phase["window_from"] is None and phase["stalled_sends"] == 0


def test_outcomes_count_by_send_time_and_errors_by_kind(load):
    events = [ack(1, 9.9, 0.2), ack(2, 10.5, 0.1), err(3, 11.0, 15.0), err(4, 12.0, 15.0, "NotEnoughReplicasError"),
              {"e": "retried", "t": 11.5, "kind": "NotEnoughReplicasError", "partition": "t-0", "first": True},
              {"e": "retried", "t": 30.0, "kind": "NotEnoughReplicasError", "partition": "t-0", "first": False}]
    phase = load.analyze(events, [{"name": "two_down", "begin": 10, "end": 20}])["two_down"]
    assert (phase["sent"], phase["acked"], phase["failed"]) == (3, 1, 2)   # #1 was sent before the phase
    assert phase["errors"] == {"KafkaTimeoutError": 1, "NotEnoughReplicasError": 1}
    assert phase["broker_errors_retried"] == {"NotEnoughReplicasError": 1}


def test_events_file_with_a_cut_line_still_loads(load, tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(ack(1, 1.0, 0.1)) + "\n" + '{"e":"ack","seq":2,"se' + "\n")
    assert [e["seq"] for e in load.load_events(str(path))] == [1]


def test_message_values_parse_with_and_without_run_id(load):
    assert load.parse_value(b"000000000042|1700000000.000|run1|xxxx") == (42, "run1")
    assert load.parse_value(b"000000000042|1700000000.000|xxxx") == (42, None)


def test_retried_broker_errors_are_counted_without_blocking_the_logging_thread(load, tmp_path):
    """kafka-python logs retried produce errors as warnings from its I/O thread: the handler must count them and
    return (an earlier version took logging.Handler's own lock twice and froze the producer)."""
    import logging
    import threading

    events = load.Events(str(tmp_path / "ev.jsonl"))
    handler = load.RetriedErrors(events)
    logger = logging.getLogger("kafka.producer.sender.test")
    logger.addHandler(handler)
    try:
        message = ("<Sender client_id=p transactional_id=None>: Got error produce response on topic-partition "
                   "TopicPartition(topic='isobar-drill', partition=3), retrying (inf attempts left): NotEnoughReplicasError")
        worker = threading.Thread(target=lambda: [logger.warning(message) for _ in range(3)])
        worker.start()
        worker.join(5)
        assert not worker.is_alive()
    finally:
        logger.removeHandler(handler)
        events.close()
    assert handler.counts == {"NotEnoughReplicasError": 3}
    lines = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [(e["e"], e["kind"], e["partition"], e["first"]) for e in lines][0] == (
        "retried", "NotEnoughReplicasError", "(topic='isobar-drill', partition=3)", True)


def test_client_fix_lets_the_idempotent_producer_ask_for_a_new_producer_id(load):
    """kafka-python 3.0: after reset_producer_id() (an expired batch that was already sent) the manager must be able
    to request a new producer id; without the fix it stays READY with no id and the producer never sends again."""
    tm_module = pytest.importorskip("kafka.producer.transaction_manager")
    assert load.fix_idempotent_reset() is True
    manager = tm_module.TransactionManager(transactional_id=None, api_version=(4, 0))
    manager.init_producer_id()
    manager.set_producer_id_and_epoch(tm_module.ProducerIdAndEpoch(12004, 0))
    manager._current_state = tm_module.TransactionState.READY  # what a successful InitProducerId leaves
    manager.reset_producer_id()
    assert not manager.has_producer_id()
    manager.init_producer_id()  # the sender loop calls this whenever there is no producer id
    assert manager._current_state == tm_module.TransactionState.INITIALIZING
    assert manager._pending_requests, "an InitProducerId request is queued"
