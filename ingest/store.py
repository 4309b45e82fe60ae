"""The catalog store: one SQLite database (WAL) in the data directory, plus files for weights.

Why SQLite: it is embedded (no service to start), transactional (a video is written whole or not at
all, so a killed ingest resumes cleanly), and in WAL mode readers (the UI) read while one writer
(ingest) writes. Embeddings and the kept frames are BLOBs beside the rows that own them, so one
transaction covers a video's metadata, frames, thumbnail and embeddings.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
DB_NAME = "catalog.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clip_versions (
    version    INTEGER PRIMARY KEY,
    spec       TEXT NOT NULL,      -- the base --clip spec of the catalog's lineage
    weights    TEXT,               -- safetensors file under the data dir; NULL: the spec's own weights
    parent     INTEGER,
    created_at TEXT NOT NULL,
    info       TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS videos (
    id           INTEGER PRIMARY KEY,          -- stable int64, the id FAISS indexes use
    video_id     TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL UNIQUE,
    path         TEXT NOT NULL,
    title        TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    tags         TEXT NOT NULL DEFAULT '',     -- '|'-separated
    category     TEXT,
    published_at TEXT,
    duration     REAL NOT NULL,
    fps          REAL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    codec        TEXT NOT NULL,
    rotation     INTEGER NOT NULL DEFAULT 0,   -- degrees clockwise to display upright
    size_bytes   INTEGER NOT NULL,
    added_at     TEXT NOT NULL,
    changed      INTEGER NOT NULL DEFAULT 0    -- catalog revision of its last change (indexes update from it)
);
CREATE TABLE IF NOT EXISTS frames (
    video INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    idx   INTEGER NOT NULL,
    t     REAL NOT NULL,
    jpeg  BLOB NOT NULL,
    PRIMARY KEY (video, idx)
);
CREATE TABLE IF NOT EXISTS thumbnails (
    video INTEGER PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE,
    jpeg  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    video       INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL REFERENCES clip_versions(version),
    video_emb   BLOB NOT NULL,   -- pooled over frames, [D]
    frames_emb  BLOB NOT NULL,   -- [K, D]
    title_emb   BLOB NOT NULL,   -- zeros where the field is empty
    desc_emb    BLOB NOT NULL,
    tags_emb    BLOB NOT NULL,
    text_emb    BLOB NOT NULL,   -- pooled over the non-empty fields
    PRIMARY KEY (video, version)
);
CREATE TABLE IF NOT EXISTS failures (
    path   TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS interactions (
    user_id       TEXT NOT NULL,
    video_id      TEXT NOT NULL REFERENCES videos(video_id) ON DELETE CASCADE ON UPDATE CASCADE,
    ts            INTEGER NOT NULL,   -- Unix seconds, UTC
    utc_offset    INTEGER NOT NULL,   -- minutes; hour and weekday are local to it
    hour          INTEGER NOT NULL,
    weekday       INTEGER NOT NULL,   -- 0 = Monday
    device        TEXT,
    region        TEXT,
    clicked       INTEGER NOT NULL,
    liked         INTEGER,
    watch_seconds REAL,
    source        TEXT NOT NULL DEFAULT 'import',
    PRIMARY KEY (user_id, video_id, ts)
);
CREATE INDEX IF NOT EXISTS interactions_by_time ON interactions(ts);
CREATE TABLE IF NOT EXISTS models (
    model_id     TEXT PRIMARY KEY,
    clip_version INTEGER NOT NULL,
    arch         TEXT NOT NULL,
    path         TEXT NOT NULL,
    config       TEXT NOT NULL,
    metrics      TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL
);
"""

EMBEDDING_FIELDS = ("video_emb", "frames_emb", "title_emb", "desc_emb", "tags_emb", "text_emb")
VIDEO_COLUMNS = ("video_id", "content_hash", "path", "title", "description", "tags", "category",
                 "published_at", "duration", "fps", "width", "height", "codec", "rotation", "size_bytes")


class StoreError(Exception):
    """A store that cannot be used as asked; the message is one line for the user."""


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def to_blob(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float32).tobytes()


def from_blob(blob: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).reshape(-1, dim)


@dataclass(frozen=True)
class ClipVersion:
    version: int
    spec: str
    weights: Path | None
    parent: int | None
    info: dict


class Store:
    """The data directory: `catalog.db` plus `clip/`, `models/`, `indexes/`, `uploads/`."""

    def __init__(self, data_dir: Path | str, *, create: bool = True):
        self.data_dir = Path(data_dir).expanduser().resolve()
        db_path = self.data_dir / DB_NAME
        if not create and not db_path.exists():
            raise StoreError(f"no catalog in {self.data_dir} (run `vidrec ingest` or `vidrec demo` first)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(db_path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=60000")
        with self.transaction():
            for statement in _statements(SCHEMA):
                self.db.execute(statement)
            found = self.get_meta("schema_version")
            if found is None:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
                self.set_meta("revision", "0")
                self.set_meta("catalog_id", uuid.uuid4().hex)  # tells this catalog's index files from another's
            elif int(found) != SCHEMA_VERSION:
                raise StoreError(f"catalog schema {found} in {db_path} is not the supported {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def path(self, *parts: str) -> Path:
        """A path under the data directory, its folder created."""
        p = self.data_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    @contextmanager
    def transaction(self):
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

    # ---- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def bump_revision(self) -> int:
        """Every change to the set of videos or their embeddings bumps this, so indexes know they are stale."""
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'")
        return self.revision

    @property
    def revision(self) -> int:
        return int(self.get_meta("revision", "0"))

    # ---- CLIP versions ------------------------------------------------------------------------
    def clip_version(self, version: int | None = None) -> ClipVersion | None:
        """The given version, or the current one (the one the catalog's embeddings are made with)."""
        if version is None:
            current = self.get_meta("clip_version")
            if current is None:
                return None
            version = int(current)
        row = self.db.execute("SELECT * FROM clip_versions WHERE version = ?", (version,)).fetchone()
        if row is None:
            return None
        return ClipVersion(row["version"], row["spec"],
                           self.data_dir / row["weights"] if row["weights"] else None,
                           row["parent"], json.loads(row["info"]))

    def add_clip_version(self, version: int, spec: str, weights: str | None, parent: int | None, info: dict) -> None:
        """Record a CLIP version; it becomes current only through `set_current_clip`."""
        self.db.execute(
            "INSERT INTO clip_versions(version, spec, weights, parent, created_at, info) VALUES (?, ?, ?, ?, ?, ?)",
            (version, spec, weights, parent, now_iso(), json.dumps(info)))

    def set_current_clip(self, version: int) -> None:
        self.set_meta("clip_version", str(version))
        self.bump_revision()

    # ---- videos -------------------------------------------------------------------------------
    def video_by_hash(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT content_hash, video_id FROM videos").fetchall())

    def video(self, video_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM videos WHERE video_id = ?", (video_id,)).fetchone()

    def videos(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM videos ORDER BY id").fetchall()

    def count(self, table: str) -> int:
        assert table in ("videos", "failures", "interactions", "models")
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def add_video(self, row: dict, frames: list[tuple[float, bytes]], thumbnail: bytes,
                  embeddings: dict[str, np.ndarray], version: int) -> int:
        """Insert one whole video (metadata, kept frames, thumbnail, embeddings); call inside a transaction."""
        cols = ", ".join(VIDEO_COLUMNS) + ", added_at"
        marks = ", ".join("?" for _ in VIDEO_COLUMNS) + ", ?"
        cur = self.db.execute(f"INSERT INTO videos({cols}) VALUES ({marks})",
                              [row.get(c) for c in VIDEO_COLUMNS] + [now_iso()])
        vid = int(cur.lastrowid)
        self.db.executemany("INSERT INTO frames(video, idx, t, jpeg) VALUES (?, ?, ?, ?)",
                            [(vid, i, t, jpeg) for i, (t, jpeg) in enumerate(frames)])
        self.db.execute("INSERT INTO thumbnails(video, jpeg) VALUES (?, ?)", (vid, thumbnail))
        self.put_embeddings(vid, version, embeddings)
        self.db.execute("DELETE FROM failures WHERE path = ?", (row["path"],))
        self.db.execute("UPDATE videos SET changed = ? WHERE id = ?", (self.bump_revision(), vid))
        return vid

    def update_text(self, video_id: str, fields: dict, text_embeddings: dict[str, np.ndarray], version: int) -> None:
        """New manifest metadata for a known video: its text and text embeddings change, its frames don't."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE videos SET {sets} WHERE video_id = ?", [*fields.values(), video_id])
        vid = self.video(video_id)["id"]
        sets = ", ".join(f"{k} = ?" for k in text_embeddings)
        self.db.execute(f"UPDATE embeddings SET {sets} WHERE video = ? AND version = ?",
                        [to_blob(v) for v in text_embeddings.values()] + [vid, version])
        self.db.execute("UPDATE videos SET changed = ? WHERE id = ?", (self.bump_revision(), vid))

    def put_embeddings(self, vid: int, version: int, embeddings: dict[str, np.ndarray]) -> None:
        missing = set(EMBEDDING_FIELDS) - set(embeddings)
        if missing:
            raise ValueError(f"embeddings missing {sorted(missing)}")
        self.db.execute(
            f"INSERT OR REPLACE INTO embeddings(video, version, {', '.join(EMBEDDING_FIELDS)}) "
            f"VALUES (?, ?, {', '.join('?' for _ in EMBEDDING_FIELDS)})",
            [vid, version] + [to_blob(embeddings[f]) for f in EMBEDDING_FIELDS])

    def remove_videos(self, video_ids: list[str]) -> list[str]:
        """Delete videos with everything they own (frames, embeddings, interactions); returns those removed."""
        removed = []
        with self.transaction():
            for video_id in video_ids:
                if self.db.execute("DELETE FROM videos WHERE video_id = ?", (video_id,)).rowcount:
                    removed.append(video_id)
            if removed:
                self.bump_revision()
        return removed

    def record_failure(self, path: str, reason: str) -> None:
        self.db.execute("INSERT INTO failures(path, reason, at) VALUES (?, ?, ?) ON CONFLICT(path) "
                        "DO UPDATE SET reason = excluded.reason, at = excluded.at", (path, reason, now_iso()))

    def failures(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT path, reason, at FROM failures ORDER BY at, path")]

    # ---- embeddings ---------------------------------------------------------------------------
    def embedding_dim(self, version: int) -> int:
        row = self.db.execute("SELECT length(video_emb) FROM embeddings WHERE version = ? LIMIT 1",
                              (version,)).fetchone()
        return int(row[0]) // 4 if row else 0

    def embeddings(self, field: str = "video_emb", version: int | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(int64 ids, video_ids, float32 matrix [N, D]) for the current (or given) CLIP version, in id order.
        Per-frame embeddings come from `frame_embeddings`, as videos may keep different frame counts."""
        if field not in EMBEDDING_FIELDS or field == "frames_emb":
            raise ValueError(f"unknown embedding field {field!r}")
        if version is None:
            current = self.clip_version()
            if current is None:
                return np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32)
            version = current.version
        rows = self.db.execute(
            f"SELECT v.id, v.video_id, e.{field} FROM embeddings e JOIN videos v ON v.id = e.video "
            f"WHERE e.version = ? ORDER BY v.id", (version,)).fetchall()
        dim = self.embedding_dim(version)
        ids = np.array([r[0] for r in rows], np.int64)
        if not rows:
            return ids, [], np.zeros((0, dim), np.float32)
        return ids, [r[1] for r in rows], np.vstack([from_blob(r[2], dim) for r in rows])

    def frame_embeddings(self, version: int) -> dict[int, np.ndarray]:
        dim = self.embedding_dim(version)
        rows = self.db.execute("SELECT video, frames_emb FROM embeddings WHERE version = ?", (version,))
        return {r[0]: from_blob(r[1], dim) for r in rows}

    def kept_frames(self, vid: int) -> list[tuple[float, bytes]]:
        return [(r[0], r[1]) for r in self.db.execute("SELECT t, jpeg FROM frames WHERE video = ? ORDER BY idx", (vid,))]

    def thumbnail(self, video_id: str) -> bytes | None:
        row = self.db.execute("SELECT t.jpeg FROM thumbnails t JOIN videos v ON v.id = t.video "
                              "WHERE v.video_id = ?", (video_id,)).fetchone()
        return row[0] if row else None

    # ---- summary ------------------------------------------------------------------------------
    def status(self) -> dict:
        clip = self.clip_version()
        users = self.db.execute("SELECT COUNT(DISTINCT user_id) FROM interactions").fetchone()[0]
        return {
            "data_dir": str(self.data_dir),
            "videos": self.count("videos"),
            "failed": self.count("failures"),
            "users": int(users),
            "interactions": self.count("interactions"),
            "clip": None if clip is None else {"version": clip.version, "spec": clip.spec,
                                               "tuned": clip.weights is not None and clip.parent is not None},
            "models": [dict(model_id=r["model_id"], arch=r["arch"], clip_version=r["clip_version"],
                            created_at=r["created_at"])
                       for r in self.db.execute("SELECT * FROM models ORDER BY created_at")],
            "indexes": json.loads(self.get_meta("indexes", "[]")),
            "revision": self.revision,
        }


def _statements(script: str) -> list[str]:
    """Split the schema into statements (executescript would COMMIT our transaction)."""
    out, current = [], []
    for line in script.splitlines():
        current.append(line.split("--")[0])
        if line.rstrip().endswith(";"):
            out.append("\n".join(current))
            current = []
    return [s for s in out if s.strip()]
