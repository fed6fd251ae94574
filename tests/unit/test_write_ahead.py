"""write_ahead (module_utils): the next batch is made while the previous write runs, the writes stay in order, one at a
time, and a failed write stops everything after it (what was written is a prefix, and it is counted)."""
from __future__ import annotations

import threading

import pytest

from ansible_collections.isobar.pipeline.plugins.module_utils.write_ahead import PartialWrite, write_ahead


def test_every_batch_is_written_once_in_order():
    sent = []
    assert write_ahead(([n] * n for n in range(1, 5)), sent.append) == (10, 4)
    assert sent == [[1], [2, 2], [3, 3, 3], [4, 4, 4, 4]]


def test_nothing_to_write():
    assert write_ahead(iter([]), pytest.fail) == (0, 0)


def test_the_next_batch_is_made_while_the_previous_write_runs():
    # The first write waits until the second batch has been made: a loop that made a batch only after the previous
    # write returned would never make it (the wait times out and the test fails).
    second_made = threading.Event()
    overlapped = []

    def batches():
        yield ["a"]
        second_made.set()
        yield ["b"]

    def write(batch):
        if batch == ["a"]:
            overlapped.append(second_made.wait(timeout=5))

    assert write_ahead(batches(), write) == (2, 2)
    assert overlapped == [True]


def test_one_write_at_a_time():
    running, most = [0], [0]
    lock = threading.Lock()

    def write(batch):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.01)
        with lock:
            running[0] -= 1

    write_ahead(([n] for n in range(20)), write)
    assert most == [1]


def test_a_failed_write_stops_the_batches_after_it():
    sent, made = [], []

    def batches():
        for n in range(10):
            made.append(n)
            yield [n, n]

    def write(batch):
        if batch == [3, 3]:
            raise OSError("disk full")
        sent.append(batch)

    with pytest.raises(PartialWrite) as raised:
        write_ahead(batches(), write)
    assert sent == [[0, 0], [1, 1], [2, 2]]
    assert (raised.value.written, raised.value.batches) == (6, 3)
    assert isinstance(raised.value.cause, OSError) and str(raised.value) == "disk full"
    assert made == [0, 1, 2, 3, 4]  # at most the one batch after the failed one was made, none sent
