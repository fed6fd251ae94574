"""influx_to_kafka's batch loop (plugins/module_utils/pipeline_publish.execute) with the next batch's query overlapped
with the current batch's sends: the order of the steps, and a query that fails while a batch is in flight. The run's
services (InfluxDB queries, Kafka sends and offsets) are recorded stand-ins here; the checkpoint file is real. Against
real InfluxDB and Kafka, tests/integration/pipeline/test_influx_to_kafka.py and test_producer_service.py check the
exactly-once outcome across kills."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from ansible_collections.isobar.pipeline.plugins.module_utils import pipeline_publish as pub
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_checkpoint import CheckpointStore
from ansible_collections.isobar.pipeline.plugins.module_utils.pipeline_producer import PipelineError, new_state

T0 = 1_767_225_600_000_000_000
SOURCE = {"bucket": "weather", "measurement": "weather", "topic": "weather"}


def table(*seconds):
    """One query answer: a point of station s1 at T0 + each second."""
    return [{"group": {"_measurement", "station"},
             "rows": [{"_time": T0 + s * 10**9, "_measurement": "weather", "station": "s1", "temperature": float(s)}
                      for s in seconds]}]


class RecordedRun(pub.Run):
    """A Run whose InfluxDB and Kafka are the answers given: it records the order of queries, sends and acks."""

    def __init__(self, answers):
        params = {"batch_size": 2, "max_messages": 0, "bucket": "weather", "measurement": "weather",
                  "key_tag": "station", "topic": "weather", "request_timeout": 30}
        super().__init__(SimpleNamespace(params=params, check_mode=False, _diff=False))
        self.admin = self.api = self.producer = object()  # connected: execute opens nothing
        self.answers = list(answers)
        self.events = []

    def partitions(self):
        return [0, 1]

    def query(self, flux):
        self.events.append("query")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def end_offsets(self, partitions, settle=False):
        return {n: 0 for n in partitions}

    def start_send(self, messages):
        self.events.append(f"send {len(messages)}")
        return messages

    def await_sent(self, sending):
        self.events.append("acked")
        self.counts["messages"] += len(sending)


@pytest.fixture
def store(tmp_path):
    store = CheckpointStore(str(tmp_path / "checkpoint.json"))
    store.save(new_state(SOURCE))
    return store


def test_the_next_query_runs_while_the_batch_is_in_flight(store):
    run = RecordedRun([table(1, 2), table(3), []])
    result = pub.execute(run, store, SOURCE, T0, T0 + 10 * 10**9)
    assert run.events == ["query", "send 2", "query", "acked", "send 1", "query", "acked"]
    assert result["messages"] == 3 and result["batches"] == 2
    state = store.load()
    assert state["pending"] is None and state["delivered_total"] == 3
    assert state["cursor"] == {"time_ns": T0 + 3 * 10**9, "key": "s1"}


def test_a_query_failing_while_a_batch_is_in_flight_is_raised_after_the_batch_is_committed(store):
    run = RecordedRun([table(1, 2), PipelineError("InfluxDB query failed: cannot reach InfluxDB")])
    with pytest.raises(PipelineError, match="cannot reach InfluxDB"):
        pub.execute(run, store, SOURCE, T0, T0 + 10 * 10**9)
    assert run.events == ["query", "send 2", "query", "acked"]
    state = store.load()
    assert state["pending"] is None, "the delivered batch was left in flight"
    assert state["delivered_total"] == 2 and state["cursor"] == {"time_ns": T0 + 2 * 10**9, "key": "s1"}
