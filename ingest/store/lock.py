"""The data directory's writer lock: one job that changes the catalog at a time.

Jobs (ingest, remove, import-interactions, tune-clip, train's save, index, eval --ablations, a schema
upgrade) take it for their writes; readers (search, similar, recommend, status, the UI's pages) never do, and UI
feedback is one short SQLite transaction without it. It is an advisory lock on a file in the data
directory (flock through `filelock`), so it is released when the process ends however it ends, and it
is reentrant within a thread: a job made of jobs (the demo, an ingest followed by an index refresh)
takes it once. Another thread or process waits, is told so, and fails after the timeout.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from .errors import LockTimeout

logger = logging.getLogger(__name__)

LOCK_TIMEOUT_ENV = "VIDREC_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_SECONDS = 600.0


def lock_timeout() -> float:
    """Seconds a job waits for another one to finish: $VIDREC_LOCK_TIMEOUT, else 600."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_LOCK_TIMEOUT_SECONDS
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT_SECONDS


class WriterLock:
    """The lock file of one data directory; `hold(job)` for the duration of a job's writes."""

    def __init__(self, path: Path):
        self.path = path
        # One object per path in a process (is_singleton), counting per thread: reentrant in a thread, while
        # another thread of the same process waits as another process would.
        self._lock = filelock.FileLock(str(path), is_singleton=True, thread_local=True)

    @property
    def held(self) -> bool:
        """Whether this thread holds the lock."""
        return self._lock.is_locked

    @contextmanager
    def hold(self, job: str, timeout: float | None = None) -> Iterator[None]:
        timeout = lock_timeout() if timeout is None else timeout
        try:
            self._lock.acquire(timeout=0)  # held by this thread already: it only counts
        except filelock.Timeout:
            logger.warning(
                "another job is writing to %s; %s is waiting (up to %.0f s)...", self.path.parent, job, timeout
            )
            try:
                self._lock.acquire(timeout=timeout)
            except filelock.Timeout:
                raise LockTimeout(
                    f"another job kept writing to {self.path.parent} for more than {timeout:.0f} s; "
                    f"{job} gave up (try again when it is done, or set {LOCK_TIMEOUT_ENV})"
                ) from None
        try:
            yield
        finally:
            self._lock.release()
