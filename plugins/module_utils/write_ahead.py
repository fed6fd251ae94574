# Copyright: Isobar contributors
# Apache-2.0
"""Write batches while the next one is being made: one write in flight at a time, in order.

A module that computes what it writes (weather_inject simulates its points) would otherwise alternate: make a batch,
wait for the server, make the next. Here the server's answer to batch N is awaited while batch N+1 is made, and batch
N+1 is only sent once batch N succeeded, so a failure leaves a prefix of the batches written, as a plain loop does.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


class PartialWrite(Exception):
    """A write failed; ``written`` points (whole batches, in order) were written before it."""

    def __init__(self, cause, written, batches):
        super().__init__(str(cause))
        self.cause = cause
        self.written = written
        self.batches = batches


def write_ahead(batches, write):
    """Call ``write(batch)`` for each batch of the iterable, in order, the next batch being drawn from the iterable
    while the previous write runs. Returns (points written, batches written); raises PartialWrite on the first failed
    write, after which no batch is sent (the iterable is not drawn further either)."""
    written = count = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-ahead") as pool:
        inflight = None
        for batch in batches:  # making this batch overlaps the previous write
            if inflight is not None:
                written, count = _settle(inflight, written, count)
            inflight = (pool.submit(write, batch), len(batch))
        if inflight is not None:
            written, count = _settle(inflight, written, count)
    return written, count


def _settle(inflight, written, count):
    future, size = inflight
    try:
        future.result()
    except Exception as exc:  # the write's own error, whatever its client raises
        raise PartialWrite(exc, written, count) from exc
    return written + size, count + 1
