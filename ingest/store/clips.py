"""The catalog's CLIP versions: which CLIP made the embeddings, and the tuned versions that followed it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .database import Database
from .encoding import now_iso


@dataclass(frozen=True)
class ClipVersion:
    version: int
    spec: str  # the base --clip spec of the catalog's lineage
    weights: Path | None  # safetensors under the data dir; None: the spec's own weights
    parent: int | None  # the version it was tuned from
    info: dict
    created_at: str = ""

    @property
    def tuned(self) -> bool:
        return self.weights is not None and self.parent is not None

    @property
    def pending(self) -> bool:
        """A tuned version whose re-embedding has not finished (it is not current yet)."""
        return bool(self.info.get("pending"))

    @property
    def pruned(self) -> bool:
        """Its embeddings and weights file were deleted by `vidrec clip prune` (the row stays, for the lineage)."""
        return bool(self.info.get("pruned"))


class ClipVersions:
    def __init__(self, store: Database):
        self.store = store

    def _row(self, row) -> ClipVersion:
        return ClipVersion(
            row["version"],
            row["spec"],
            self.store.paths.resolve(row["weights"]) if row["weights"] else None,
            row["parent"],
            json.loads(row["info"]),
            row["created_at"],
        )

    def current(self) -> ClipVersion | None:
        """The version the catalog's embeddings are made with (None before the first ingest)."""
        current = self.store.clip_version
        return None if current is None else self.get(current)

    def get(self, version: int) -> ClipVersion | None:
        row = self.store.db.execute("SELECT * FROM clip_versions WHERE version = ?", (version,)).fetchone()
        return None if row is None else self._row(row)

    def all(self) -> list[ClipVersion]:
        """Every version the catalog has had, oldest first."""
        return [self._row(r) for r in self.store.db.execute("SELECT * FROM clip_versions ORDER BY version")]

    def next_version(self) -> int:
        return int(self.store.db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM clip_versions").fetchone()[0])

    def add(self, version: int, spec: str, weights: str | None, parent: int | None, info: dict) -> None:
        """Record a CLIP version (weights relative to the data dir); it becomes current only by `make_current`."""
        self.store.db.execute(
            "INSERT INTO clip_versions(version, spec, weights, parent, created_at, info) VALUES (?, ?, ?, ?, ?, ?)",
            (version, spec, weights, parent, now_iso(), json.dumps(info)),
        )

    def set_info(self, version: int, info: dict) -> None:
        self.store.db.execute("UPDATE clip_versions SET info = ? WHERE version = ?", (json.dumps(info), version))

    def make_current(self, version: int) -> None:
        self.store.set_meta("clip_version", str(version))
        self.store.bump_revision()

    def pending(self) -> ClipVersion | None:
        """The newest tuned version above the current one whose re-embedding was interrupted, if any."""
        current = self.current()
        rows = self.store.db.execute(
            "SELECT * FROM clip_versions WHERE version > ? ORDER BY version DESC", (current.version if current else 0,)
        )
        return next((v for v in map(self._row, rows) if v.pending), None)
