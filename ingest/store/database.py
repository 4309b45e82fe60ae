"""The SQLite connection under the store: transactions, schema migrations, meta values and the revision.

The question classes (`videos`, `embeddings`, ...) each hold a `Database`; `Store` puts them together.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from . import schema
from .layout import DataDir

BUSY_TIMEOUT_SECONDS = 60


class StoreError(Exception):
    """A store that cannot be used as asked; the message is one line for the user."""


class Database:
    def __init__(self, paths: DataDir, *, create: bool = True):
        self.paths = paths
        if not create and not paths.database.exists():
            raise StoreError(f"no catalog in {paths.root} (run `vidrec ingest` or `vidrec demo` first)")
        paths.root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(
            paths.database, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        self._migrate()

    def _migrate(self) -> None:
        """Bring the schema up to date; a database already at the latest version is only read."""
        if schema.applied(self.db) == schema.LATEST:
            return
        with self.transaction():
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
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: writers queue up instead of failing half-way."""
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

    def index_descriptions(self) -> list[dict]:
        """What the index package recorded of each index it built (reported by `status`)."""
        return json.loads(self.get_meta("indexes", "[]") or "[]")

    def describe_index(self, description: dict) -> None:
        """Record (or replace) one index's description, by its name."""
        with self.transaction():
            described = [i for i in self.index_descriptions() if i["name"] != description["name"]]
            described.append(description)
            self.set_meta("indexes", json.dumps(sorted(described, key=lambda i: i["name"])))
