# Copyright: Isobar contributors
# Apache-2.0
"""A fix for kafka-python 3.0.x: bytes read together with the broker's close are dropped.

kafka-python's transport reads a socket until it would block; when that same read also hits the end of
the stream it aborts the connection and throws away the bytes it had just read. A broker that refuses a
SCRAM password sends SaslAuthenticate(error 58) and then closes the connection
(``connection.failed.authentication.delay.ms``, 100 ms by default), so a client slower than that delay
reads both at once and sees only "socket disconnected": it retries until its bootstrap timeout and ends
with "Unable to bootstrap" instead of the authentication error. On a busy host this happens to about half
of the refused logins (and to any response a broker sends just before it closes a connection).

``apply()`` replaces the read loop with one that hands the bytes to the protocol first and aborts a step
later, so the coroutine waiting for that response (it resumes on the next loop step) sees it before the
connection is reported lost. Only the kafka-python versions whose read loop was checked are patched.

This file depends on nothing but kafka-python: the command-line tools ship it next to themselves.
"""

from __future__ import annotations

import time

# Versions whose kafka/net/transport.py read loop has the drop (checked by reading their source).
PATCHED_VERSIONS = ("3.0.12",)

_applied = False


def apply() -> bool:
    """Patch kafka-python's transport read loop once; True when the running version got the fix."""
    global _applied
    if _applied:
        return True
    try:
        import kafka
        from kafka import errors as kafka_errors
        from kafka.net import transport as net_transport
    except ImportError:  # no kafka-python (or the pre-3.0 one without kafka.net): nothing to fix
        return False
    if getattr(kafka, "__version__", None) not in PATCHED_VERSIONS:
        return False

    async def _read_from_sock(self):
        while self._read and not self._closed:
            await self._net.wait_read(self._sock)
            received, error = self._sock_recv()
            if received:
                self.last_read = time.monotonic()
                if self._protocol and self._protocol._sensors:
                    self._protocol._sensors.bytes_received.record(len(received))
                try:
                    self._protocol.data_received(received)
                except kafka_errors.KafkaProtocolError as exc:
                    return self.abort(error=exc)
            if error:
                if not received:
                    return self.abort(error=error)

                def abort_after_waiters(transport=self, error=error):
                    transport.abort(error=error)

                # The waiters woken by data_received were queued first, so they run before this abort.
                self._net.call_soon(abort_after_waiters)
                return None
        return None

    net_transport.KafkaTCPTransport._read_from_sock = _read_from_sock
    _applied = True
    return True
