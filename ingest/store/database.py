"""The SQLite connection under the store: transactions, read snapshots, the writer lock, schema migrations,
meta values and the revision.

The question classes (`videos`, `embeddings`, ...) each hold a `Database`; `Store` puts them together.
A read-only `Database` (search, similar, recommend, status, the UI) opens SQLite read-only: it never
writes and never waits for a writer (WAL). A writable one is a job's: its writes go in `transaction()`s
inside `writing(job)`, the data directory's writer lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from . import schema
from .errors import DamagedCatalog, StoreError, damaged_message, database_failure
from .layout import DataDir
from .lock import WriterLock

BUSY_TIMEOUT_SECONDS = 60


class Database:
    def __init__(self, paths: DataDir, *, create: bool = True, read_only: bool = False):
        self.paths = paths
        self.read_only = read_only
        if (read_only or not create) and not paths.database.exists():
            raise StoreError(f"no catalog in {paths.root} (run `vidrec ingest` or `vidrec demo` first)")
        paths.root.mkdir(parents=True, exist_ok=True)
        self.writer_lock = WriterLock(paths.writer_lock)
        # One connection, shared by a reader's threads (the UI's sessions): transactions and snapshots take
        # this lock, so one thread's BEGIN never swallows another thread's statements half-way.
        self._connection_lock = threading.RLock()
        try:
            if read_only and self._schema_behind():
                Database(paths, create=False).close()  # a reader of an older catalog upgrades it once, as a writer
            self.db = self._connect()
            if not read_only:
                self._migrate()
        except sqlite3.Error as exc:  # a damaged file, a full disk, a folder where -wal and -shm cannot be made
            raise database_failure(exc, paths.database) from None

    def _connect(self) -> sqlite3.Connection:
        target, uri = (f"file:{self.paths.database}?mode=ro", True) if self.read_only else (self.paths.database, False)
        db = sqlite3.connect(
            target, uri=uri, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        if not self.read_only:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        return db

    def _schema_behind(self) -> bool:
        probe = sqlite3.connect(f"file:{self.paths.database}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            return schema.applied(probe) < schema.LATEST
        finally:
            probe.close()

    def _migrate(self) -> None:
        """Bring the schema up to date under the writer lock; a database already at the latest version is only
        read."""
        if schema.applied(self.db) == schema.LATEST:
            return
        with self.writing("the schema upgrade"), self.transaction():
            found = schema.applied(self.db)
            if found > schema.LATEST:
                raise StoreError(
                    f"catalog schema {found} in {self.paths.database} is newer than this vidrec "
                    f"knows ({schema.LATEST}): upgrade vidrec"
                )
            schema.migrate(self.db, found)
            if found == 0:
                self.set_meta("revision", "0")
                self.set_meta("catalog_id", uuid.uuid4().hex)  # tells this catalog's index files from another's

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def writing(self, job: str) -> Iterator[None]:
        """Hold the data directory's writer lock for a job (reentrant in a thread); waits for another job,
        saying so, and raises LockTimeout past $VIDREC_LOCK_TIMEOUT."""
        if self.read_only:
            raise StoreError(f"{job} needs a writable catalog; this one was opened read-only")
        outermost = not self.writer_lock.held
        with self.writer_lock.hold(job):
            if outermost:
                self.check_integrity()
            yield

    def check_integrity(self) -> None:
        """SQLite's quick_check of the whole file (about 2 ms per MB, bench/RESULTS.md): a job never writes
        into a damaged catalog, where its writes could land beside pages nobody can read back."""
        with self._connection_lock:
            try:
                problems = [row[0] for row in self.db.execute("PRAGMA quick_check(3)")]
            except sqlite3.DatabaseError as exc:
                problems = [str(exc)]
        if problems != ["ok"]:
            raise DamagedCatalog(damaged_message(self.paths.database, "; ".join(problems)))

    @property
    def is_writing(self) -> bool:
        """Whether this thread holds the writer lock (only then are index files saved)."""
        return not self.read_only and self.writer_lock.held

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: writers queue up instead of failing half-way."""
        with self._connection_lock:
            if self.db.in_transaction:
                yield self.db
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that must agree with each other (one read transaction): a writer committing meanwhile
        is seen after, never half-way. Inside a transaction, that transaction is the snapshot."""
        with self._connection_lock:
            if self.db.in_transaction:
                yield self.db
                return
            self.db.execute("BEGIN")
            try:
                yield self.db
            finally:
                if self.db.in_transaction:
                    self.db.execute("COMMIT")

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def bump_revision(self) -> int:
        """Every change to the set of videos or their embeddings bumps this, so indexes know they are stale."""
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'")
        return self.revision

    @property
    def revision(self) -> int:
        return int(self.get_meta("revision", "0") or 0)

    @property
    def clip_version(self) -> int | None:
        """The CLIP version the catalog's embeddings are made with (None before the first ingest)."""
        current = self.get_meta("clip_version")
        return None if current is None else int(current)

    @property
    def catalog_id(self) -> str:
        return self.get_meta("catalog_id", "") or ""

    @property
    def restore_id(self) -> str:
        """Set anew by every restore: a restored catalog keeps its id, and its revision can climb back to a number
        a reader has already seen, so what readers hold of it (indexes, the model) is keyed on this too."""
        return self.get_meta("restore_id", "") or ""

    def mark_restored(self) -> None:
        with self.transaction():
            self.set_meta("restore_id", uuid.uuid4().hex)

    def index_descriptions(self) -> list[dict]:
        """What the index package recorded of each index it built (reported by `status`)."""
        return json.loads(self.get_meta("indexes", "[]") or "[]")

    def forget_index(self, name: str) -> None:
        """Drop one index's description (its files are gone)."""
        with self.transaction():
            described = [i for i in self.index_descriptions() if i["name"] != name]
            self.set_meta("indexes", json.dumps(described))

    def checkpoint(self) -> bool:
        """Move the WAL's pages into catalog.db and empty the WAL file, so that rows just deleted live on in no
        file; False when a reader kept part of it (its snapshot ends within the busy timeout as a rule)."""
        with self._connection_lock:
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy

    def describe_index(self, description: dict) -> None:
        """Record (or replace) one index's description, by its name."""
        with self.transaction():
            described = [i for i in self.index_descriptions() if i["name"] != description["name"]]
            described.append(description)
            self.set_meta("indexes", json.dumps(sorted(described, key=lambda i: i["name"])))
