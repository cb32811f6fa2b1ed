"""One engine per data directory: an OS lock on `<data_dir>/engine.lock`, held for the life of the
process that steps the embedded log (`meltica up`) or rewrites its state under it (`snapshot
restore`, `projections rebuild`).

The lock is `flock` on an open file: the kernel drops it when the process ends, however it ends,
so a SIGKILLed holder leaves no stale lock. The file names the holder (pid, host, start time) for
the message a second process prints. Publishers (deposit, data import, feed replay) take no lock:
their appends are serialised by SQLite and run no processor. On Kafka, each processor instance's
transactional producer is fenced by the broker when another instance takes its partitions.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from meltica.errors import MelticaError

LOCK_FILE = "engine.lock"


class DataDirLockedError(MelticaError):
    """Another process holds the data directory."""


class WriterLock:
    """The data directory's single-writer lock (`acquire` or use as a context manager)."""

    def __init__(self, data_dir: Path, purpose: str) -> None:
        self.path = data_dir / LOCK_FILE
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        """Take the lock, or raise `DataDirLockedError` naming its holder; writes nothing else."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirLockedError(
                f"{self.path.parent} is in use by {self.holder()}: one engine per data directory "
                "(stop it, or use another MELTICA_DATA_DIR)"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": self.purpose,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode() + b"\n", 0)
        self._fd = fd
        return self

    def holder(self) -> str:
        """Who holds the lock, as the lock file tells it."""
        try:
            doc = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            doc = {}
        if not doc:
            return "another process (it has not yet written its name)"
        return (
            f"`meltica {doc.get('command', '?')}` (pid {doc.get('pid', '?')} on {doc.get('host', '?')}, "
            f"started {doc.get('started', '?')})"
        )

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
