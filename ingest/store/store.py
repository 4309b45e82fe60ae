"""The catalog store: one SQLite database (WAL) in the data directory, asked typed questions.

Why SQLite: it is embedded (no service to start), transactional (a video is written whole or not at
all, so a killed ingest resumes cleanly), and in WAL mode readers (the UI) read while one writer
(ingest) writes. Embeddings and the kept frames are BLOBs beside the rows that own them, so one
transaction covers a video's metadata, frames, thumbnail and embeddings.

The questions are grouped by what they are about: `store.videos`, `store.failures`,
`store.embeddings`, `store.clips`, `store.interactions`, `store.models`; `store.paths` knows the data
directory's layout. Nothing outside this package writes SQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .clips import ClipVersions
from .database import Database
from .embeddings import Embeddings
from .interactions import Interactions
from .layout import DataDir
from .registry import ModelRegistry, newest_model_id
from .videos import Failures, Videos


class Store(Database):
    """The data directory's catalog: `catalog.db` plus the files `paths` names."""

    def __init__(self, data_dir: Path | str, *, create: bool = True, read_only: bool = False):
        super().__init__(DataDir(data_dir), create=create, read_only=read_only)
        self.data_dir = self.paths.root
        self.embeddings = Embeddings(self)
        self.videos = Videos(self, self.embeddings)
        self.failures = Failures(self)
        self.clips = ClipVersions(self)
        self.interactions = Interactions(self)
        self.models = ModelRegistry(self)

    def status(self) -> dict:
        """What `vidrec status` reports (one snapshot of the store)."""
        with self.snapshot():
            return self._status()

    def _status(self) -> dict:
        clip = self.clips.current()
        return {
            "data_dir": str(self.data_dir),
            "videos": self.videos.count(),
            "failed": self.failures.count(),
            "users": self.interactions.user_count(),
            "interactions": self.interactions.count(),
            "clip": None if clip is None else {"version": clip.version, "spec": clip.spec, "tuned": clip.tuned},
            "models": [
                {"model_id": m.model_id, "arch": m.arch, "clip_version": m.clip_version, "created_at": m.created_at}
                for m in reversed(self.models.all())
            ],
            "indexes": self.index_descriptions(),
            "revision": self.revision,
        }


def catalog_version(data_dir: Path | str) -> tuple:
    """(catalog revision, CLIP version, newest model id, index descriptions, restore): what a cached reader (the UI's
    API object) depends on. Read with a read-only connection, so it is cheap on every page run and never
    takes the write lock; (None,) when there is no catalog yet."""
    path = DataDir(data_dir).database
    if not path.is_file():
        return (None,)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        meta = dict(
            db.execute("SELECT key, value FROM meta WHERE key IN ('revision', 'clip_version', 'indexes', 'restore_id')")
        )
        newest = newest_model_id(db)
    except sqlite3.Error:
        return (None,)
    finally:
        db.close()
    return (meta.get("revision"), meta.get("clip_version"), newest, meta.get("indexes"), meta.get("restore_id"))
