"""tools/kafka_load.py's live consumer against a real Kafka (tests/fixtures/kafka_server.py): it reads every message of
its run exactly once, and when its kafka-python client wedges (as seen after broker restarts during the rotation:
fetches return nothing, offset requests time out) it reopens at the offsets already read instead of waiting out
its finish timeout."""
from __future__ import annotations

import importlib.util
import time
import uuid
from pathlib import Path

import pytest
from fixtures.prerequisites import require_module

kafka = require_module("kafka", "kafka-python is needed")
from kafka import KafkaProducer  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402
from kafka.errors import KafkaTimeoutError  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("kafka_load", ROOT / "tools" / "kafka_load.py")
kafka_load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kafka_load)


class Wedged:
    """A real KafkaConsumer that stops delivering once `wedge` is set, the way a wedged client behaves."""

    def __init__(self, consumer, wedge):
        self._consumer, self._wedge = consumer, wedge

    def poll(self, *args, **kwargs):
        if self._wedge["on"]:
            time.sleep(0.5)
            return {}
        return self._consumer.poll(*args, **kwargs)

    def end_offsets(self, partitions):
        if self._wedge["on"]:
            raise KafkaTimeoutError("Failed to get offsets by timestamps in 30000 ms (wedged on purpose)")
        return self._consumer.end_offsets(partitions)

    def __getattr__(self, name):
        return getattr(self._consumer, name)


@pytest.fixture
def topic(kafka_server):
    name = f"it-load-{uuid.uuid4().hex[:8]}"
    admin = kafka_server.admin_client()
    admin.create_topics([NewTopic(name, 3, 1)])
    yield name
    admin.delete_topics([name])
    admin.close()


def produce(kafka_server, topic, run_id, count):
    producer = KafkaProducer(**kafka_server.kafka_python_config(), acks="all")
    for seq in range(count):
        producer.send(topic, value=f"{seq:012d}|{time.time():.3f}|{run_id}|".encode(), key=str(seq % 8).encode())
    producer.flush(30)
    producer.close()


def run_consumer(kafka_server, topic, tmp_path, wedge_after=None, count=300):
    """Start the live consumer, produce `count` messages (wedging its client after `wedge_after` were read), finish."""
    wedge = {"on": False}
    events_path = tmp_path / "events.jsonl"
    events = kafka_load.Events(str(events_path))
    live = kafka_load.LiveConsumer(kafka_server.kafka_python_config(), topic, "run1", events)
    live.stall_seconds = 3.0
    opened = []
    real_open = live._open

    def open_first_wedgeable():
        consumer = real_open()
        opened.append(consumer)
        return Wedged(consumer, wedge) if len(opened) == 1 else consumer

    live._open = open_first_wedgeable
    live.start()
    assert live.ready.wait(60) and live.error is None, live.error
    if wedge_after is None:
        produce(kafka_server, topic, "run1", count)
    else:
        produce(kafka_server, topic, "run1", wedge_after)
        deadline = time.monotonic() + 30
        while len(live.seen) < wedge_after and time.monotonic() < deadline:
            time.sleep(0.1)
        wedge["on"] = True
        produce(kafka_server, topic, "run1", count)  # the same ids again plus new ones: ids 0..count-1 in all
    time.sleep(1)
    live.finish.set()
    assert live.done.wait(120), "the live consumer did not finish"
    events.close()
    return live, events_path.read_text()


def test_reads_every_message_once_without_reopening(kafka_server, topic, tmp_path):
    live, events = run_consumer(kafka_server, topic, tmp_path)
    assert live.error is None and live.caught_up
    assert live.seen == set(range(300)) and live.duplicates == 0
    assert live.reopened == 0, events[-2000:]


def test_a_wedged_client_is_reopened_where_it_stopped(kafka_server, topic, tmp_path):
    started = time.monotonic()
    live, events = run_consumer(kafka_server, topic, tmp_path, wedge_after=100)
    assert live.error is None and live.caught_up, events[-2000:]
    assert live.reopened >= 1 and '"consumer_reopened"' in events
    # ids 0..99 were produced twice (before and after the wedge): read once each as new, then as the topic's
    # real duplicates; nothing already read is read again by the reopened consumer
    assert live.seen == set(range(300))
    assert live.duplicates == 100
    assert time.monotonic() - started < 90, "reopening should not wait out the 180 s finish timeout"
