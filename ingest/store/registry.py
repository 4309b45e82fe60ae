"""The trained models a catalog holds (their files are under `models/<model_id>/`)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from .database import Database
from .encoding import now_iso

# Newest first; two models saved in the same second are told apart by insertion order.
NEWEST_FIRST = "ORDER BY created_at DESC, rowid DESC"
PIN = "model_pin"  # the meta key of the model pinned for serving (`vidrec models use`)


def newest_model_id(db: sqlite3.Connection) -> str | None:
    row = db.execute(f"SELECT model_id FROM models {NEWEST_FIRST} LIMIT 1").fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    clip_version: int  # the CLIP version of the embeddings it was trained on
    arch: str
    path: str  # its folder, relative to the data dir
    config: dict
    metrics: dict
    created_at: str


class ModelRegistry:
    def __init__(self, store: Database):
        self.store = store

    def add(self, model_id: str, clip_version: int, arch: str, path: str, config: dict, metrics: dict) -> None:
        with self.store.transaction():
            self.store.db.execute(
                "INSERT INTO models(model_id, clip_version, arch, path, config, metrics, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (model_id, clip_version, arch, path, json.dumps(config), json.dumps(metrics), now_iso()),
            )

    def all(self) -> list[ModelRecord]:
        """Every model, newest first."""
        return [
            ModelRecord(
                r["model_id"],
                r["clip_version"],
                r["arch"],
                r["path"],
                json.loads(r["config"]),
                json.loads(r["metrics"]),
                r["created_at"],
            )
            for r in self.store.db.execute(f"SELECT * FROM models {NEWEST_FIRST}")
        ]

    def newest_id(self) -> str | None:
        """The newest model's id (whatever its CLIP version): cheap, for cache keys."""
        return newest_model_id(self.store.db)

    def pinned(self) -> str | None:
        """The model pinned for serving, if any (it may since have gone or gone stale: the loader decides)."""
        return self.store.get_meta(PIN) or None

    def pin(self, model_id: str | None) -> None:
        """Pin a model for serving, or (None) go back to the newest good one; call inside a transaction."""
        if model_id is None:
            self.store.db.execute("DELETE FROM meta WHERE key = ?", (PIN,))
        else:
            self.store.set_meta(PIN, model_id)

    def pin_if_pinned(self, model_id: str) -> None:
        """Move a pin, if there is one, to `model_id` (a retrained model takes the pinned one's place)."""
        with self.store.transaction():
            if self.pinned() is not None:
                self.pin(model_id)

    def remove(self, model_id: str) -> None:
        """Delete a model's row (its files are the caller's), and the pin if it names that model."""
        with self.store.transaction():
            self.store.db.execute("DELETE FROM models WHERE model_id = ?", (model_id,))
            if self.pinned() == model_id:
                self.pin(None)

    def count(self) -> int:
        return int(self.store.db.execute("SELECT COUNT(*) FROM models").fetchone()[0])

    def exists_for(self, clip_version: int) -> bool:
        return (
            self.store.db.execute("SELECT 1 FROM models WHERE clip_version = ? LIMIT 1", (clip_version,)).fetchone()
            is not None
        )
