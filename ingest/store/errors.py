"""The store's errors: each message is one line for the user."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

DatabaseError = sqlite3.Error  # what SQLite itself raises (a malformed file, a full disk, an I/O error)

LOW_SPACE_BYTES = 1 << 20  # below this much free space, an I/O error opening or writing is the full disk


class StoreError(Exception):
    """A store that cannot be used as asked."""


class LockTimeout(StoreError):
    """Another job held the data directory's writer lock past the timeout."""


class DamagedCatalog(StoreError):
    """catalog.db fails SQLite's checks: nothing may write into it until it is restored."""


def damaged_message(database: Path, detail: str) -> str:
    return (
        f"the catalog database {database} is damaged ({' '.join(detail.split())}); nothing was written to it: "
        f"restore the data dir from a backup (`vidrec restore BACKUP --force`), or ingest into a new --data-dir"
    )


def is_disk_full(exc: BaseException) -> bool:
    """A write refused for want of space, whoever reports it (the OS, SQLite, safetensors, faiss)."""
    if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
        return True
    if isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_FULL:
        return True
    return "No space left on device" in str(exc)


def database_failure(exc: sqlite3.Error, database: Path) -> StoreError:
    """An error SQLite raised on `database`, as one line saying what is wrong and what to do."""
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return DamagedCatalog(damaged_message(database, str(exc)))
    if is_disk_full(exc) or (code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN) and _low_space(database)):
        return StoreError(
            f"the disk is full: SQLite cannot write {database} or its -wal and -shm files ({exc}); "
            "free some space and run it again"
        )
    if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY) and not os.access(
        database.parent, os.W_OK
    ):
        return StoreError(
            f"cannot open {database}: its folder is not writable, and SQLite needs to create the -wal and -shm "
            f"files beside it ({exc})"
        )
    return StoreError(f"catalog database error on {database}: {exc}")


def _low_space(database: Path) -> bool:
    try:
        return shutil.disk_usage(database.parent).free < LOW_SPACE_BYTES
    except OSError:
        return False
