# Copyright: Isobar contributors
# Apache-2.0
"""The wedge-and-reopen guard of our kafka-python consumers (tools/kafka_load.py, roles/pipeline/files/weather_consumer.py).

kafka-python's consumer can wedge for good after a broker restart: fetches return nothing and every offset request
times out, while a new client works at once (seen during the rotation's rolling restarts). A consumer that read
nothing for ``stall_seconds`` although its partitions hold more messages than it has read (or that cannot get the
end offsets) is closed and reopened at the offsets it had reached: nothing is read twice or skipped.

This file depends on nothing but the standard library: the command-line tools ship it next to themselves.
"""

from __future__ import annotations

import threading
import time


def why_stalled(partitions, positions, end_offsets, idle):
    """Why a consumer that read nothing for ``idle`` seconds should be reopened; None when there is nothing to read.

    ``positions``: the next offset to read per partition; ``end_offsets``: the end offsets per partition, or a
    function asking for them (a failure to get them is a reason: a wedged client times out there too)."""
    if callable(end_offsets):
        try:
            end_offsets = end_offsets()
        except Exception as exc:  # kafka-python raises its own errors, timeouts among them
            return f"end offsets: {type(exc).__name__}"
    if any(end_offsets.get(tp, 0) > positions.get(tp, 0) for tp in partitions):
        return f"nothing read for {idle:.0f} s while behind the end offsets"
    return None


class WedgeGuard:
    """Tells when a consumer has stalled: call ``progressed()`` whenever it read something, ``check()`` after a
    poll that read nothing (it asks for the end offsets at most once every ``stall_seconds``)."""

    def __init__(self, stall_seconds, clock=time.monotonic):
        if stall_seconds <= 0:
            raise ValueError("stall_seconds must be positive")
        self.stall_seconds, self.clock = float(stall_seconds), clock
        self.last = clock()
        self.reopened = 0

    def progressed(self):
        self.last = self.clock()

    def check(self, partitions, positions, end_offsets):
        """The reason to reopen (and then count it as reopened), or None."""
        now = self.clock()
        idle = now - self.last
        if idle <= self.stall_seconds:
            return None
        self.last = now  # the next question only after another stall_seconds (and the reopened client gets as long)
        why = why_stalled(partitions, positions, end_offsets, idle)
        if why:
            self.reopened += 1
        return why


def close_bounded(consumer, seconds=10.0):
    """close() of a wedged client can block: give it ``seconds`` on a side thread (no commit)."""
    closer = threading.Thread(target=lambda: consumer.close(autocommit=False), daemon=True)
    closer.start()
    closer.join(seconds)
