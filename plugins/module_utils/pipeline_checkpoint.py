# Copyright: Isobar contributors
# Apache-2.0
"""Durable JSON state of a pipeline job (the influx_to_kafka checkpoint and its journal).

Every save writes a temporary file next to the checkpoint, fsyncs it, renames it over the old one
and fsyncs the directory: after a crash the file holds either the previous or the new state, never
a mix. One run at a time holds an exclusive lock (``<path>.lock``), so two runs never interleave; the
holder writes who it is into the lock file, so a refused run can say who holds it (the live service or a run).
Files written by root keep the directory owner's ownership, so a one-shot run as root never leaves a
checkpoint the producer service's own user cannot read.
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
            self._own(fd)
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

    def _own(self, fd):
        """As root, give a new file to the directory's owner (the service user, when the service owns it)."""
        if os.geteuid() != 0:
            return
        st = os.stat(self.directory)
        if st.st_uid != 0:
            os.fchown(fd, st.st_uid, st.st_gid)

    def holder(self):
        """Who holds (or last held) the lock, as its holder wrote it; '' when unknown."""
        try:
            with open(self.path + ".lock", encoding="utf-8", errors="replace") as handle:
                return handle.read(500).strip()
        except OSError:
            return ""

    def _sync_directory(self):
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def locked(self, holder="a run of influx_to_kafka"):
        """Hold ``<path>.lock`` exclusively for the block; raises CheckpointBusy when another run has it.

        The kernel releases the lock when the process dies, so a killed run never blocks the next one.
        ``holder`` (who we are) is written into the lock file once we hold it.
        """
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, self.mode)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    who = self.holder() or "another run"
                    raise CheckpointBusy(f"{self.path}.lock is held by {who}") from None
                raise
            self._own(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder} (pid {os.getpid()})\n".encode("utf-8"), 0)
            yield self
        finally:
            os.close(fd)
