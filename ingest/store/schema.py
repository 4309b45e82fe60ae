"""The catalog's schema, as numbered migrations applied in order (the store records the last one applied).

A new table or column is a new migration appended here, never an edit of an old one: a data dir
written by any earlier version opens and is brought up to date in place, in one transaction.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: the first release's schema
    """
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
    """,
    # 2: a video's interactions by video: removing a video cascades to them, and a video's page counts them
    """
    CREATE INDEX IF NOT EXISTS interactions_by_video ON interactions(video_id);
    """,
    # 3: the users forgotten on request (`forget-user`), by a hash of their id, never the id itself: an import of
    # an old log or the restore of an older backup cannot bring them back
    """
    CREATE TABLE IF NOT EXISTS forgotten (user_hash TEXT PRIMARY KEY, at TEXT NOT NULL);
    """,
    # 4: impressions and clicks per video, for exploration at every request (counting a log of millions of rows
    # each time cannot keep up). Kept by interactions.py, the log's only writer, in the transaction of each change
    # (per-row triggers doubled the time of an import); a removed video's row goes with it.
    """
    CREATE TABLE IF NOT EXISTS video_counts (
        video_id    TEXT PRIMARY KEY REFERENCES videos(video_id) ON DELETE CASCADE ON UPDATE CASCADE,
        impressions INTEGER NOT NULL,
        clicks      INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO video_counts(video_id, impressions, clicks)
        SELECT video_id, COUNT(*), COALESCE(SUM(clicked), 0) FROM interactions
        WHERE video_id IN (SELECT video_id FROM videos) GROUP BY video_id;
    """,
]
LATEST = len(MIGRATIONS)


def applied(db: sqlite3.Connection) -> int:
    """The number of the last migration applied (0: an empty database)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite3.Connection, found: int) -> None:
    """Apply migrations found+1 .. LATEST; call inside a write transaction."""
    for number in range(found + 1, LATEST + 1):
        for statement in statements(MIGRATIONS[number - 1]):
            db.execute(statement)
    db.execute(
        "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(LATEST),),
    )


def statements(script: str) -> list[str]:
    """Split a script into statements (executescript would COMMIT the migration's transaction)."""
    out, current = [], []
    for line in script.splitlines():
        current.append(line.split("--")[0])
        if line.rstrip().endswith(";"):
            out.append("\n".join(current))
            current = []
    return [s for s in out if s.strip()]
