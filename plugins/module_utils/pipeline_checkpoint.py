# Copyright: Isobar contributors
# Apache-2.0
"""Durable JSON state of a pipeline job (the influx_to_kafka checkpoint and its journal).

Every save writes a temporary file next to the checkpoint, fsyncs it, renames it over the old one
and fsyncs the directory: after a crash the file holds either the previous or the new state, never
a mix. One run at a time holds an exclusive lock (``<path>.lock``), so two runs never interleave.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile


class CheckpointBusy(Exception):
    """Another run holds the lock."""


class CheckpointStore:
    def __init__(self, path, mode=0o600):
        self.path = os.path.abspath(path)
        self.directory = os.path.dirname(self.path)
        self.mode = mode

    def exists(self):
        return os.path.exists(self.path)

    def load(self):
        """The saved state, or None when there is none yet. Raises ValueError for an unreadable file."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"checkpoint {self.path} is not valid JSON ({exc})") from None

    def save(self, state):
        """Replace the state atomically and durably."""
        data = json.dumps(state, sort_keys=True, separators=(",", ":")).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", dir=self.directory)
        try:
            os.fchmod(fd, self.mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, self.path)
        self._sync_directory()

    def _sync_directory(self):
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def locked(self):
        """Hold ``<path>.lock`` exclusively for the block; raises CheckpointBusy when another run has it.

        The kernel releases the lock when the process dies, so a killed run never blocks the next one.
        """
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, self.mode)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise CheckpointBusy(f"another run holds {self.path}.lock") from None
                raise
            yield self
        finally:
            os.close(fd)
