"""The catalog's videos (metadata, kept frames, thumbnails) and the files ingest refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from .database import Database
from .embeddings import Embeddings
from .encoding import now_iso

# The columns a new video is written with (the store adds `id`, `added_at` and `changed`).
VIDEO_COLUMNS = (
    "video_id",
    "content_hash",
    "path",
    "title",
    "description",
    "tags",
    "category",
    "published_at",
    "duration",
    "fps",
    "width",
    "height",
    "codec",
    "rotation",
    "size_bytes",
)
UNLABELLED = "(unlabelled)"  # how a video without a category is counted and filtered


@dataclass(frozen=True)
class Video:
    id: int  # stable int64: the id FAISS indexes use
    video_id: str
    content_hash: str
    path: str
    title: str
    description: str
    tags: str  # '|'-separated
    category: str | None
    published_at: str | None
    duration: float
    fps: float | None
    width: int
    height: int
    codec: str
    rotation: int
    size_bytes: int
    added_at: str
    changed: int  # the catalog revision of its last change

    @property
    def tag_list(self) -> list[str]:
        return [t for t in (self.tags or "").split("|") if t]

    def text_fields(self) -> dict:
        return {
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "category": self.category,
            "published_at": self.published_at,
        }


_SELECT = f"SELECT {', '.join(f.name for f in fields(Video))} FROM videos"


def _video(row) -> Video:
    return Video(*row)


def _marks(values) -> str:
    return ",".join("?" * len(values))


class Videos:
    def __init__(self, store: Database, embeddings: Embeddings):
        self.store = store
        self.db = store.db
        self.embeddings = embeddings

    # ---- one or all ----------------------------------------------------------------------------------
    def get(self, video_id: str) -> Video | None:
        row = self.db.execute(f"{_SELECT} WHERE video_id = ?", (video_id,)).fetchone()
        return None if row is None else _video(row)

    def all(self) -> list[Video]:
        """Every video, in store id order."""
        return [_video(r) for r in self.db.execute(f"{_SELECT} ORDER BY id")]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM videos").fetchone()[0])

    def model_columns(self) -> tuple[np.ndarray, np.ndarray, list[str | None], list[str | None]]:
        """(int64 store ids, float64 durations, categories, published_at) of every video in store id order: what
        the model reads of each video, without a `Video` per row (1M of them took GBs)."""
        ids: list[int] = []
        durations: list[float] = []
        categories: list[str | None] = []
        published: list[str | None] = []
        for r in self.db.execute("SELECT id, duration, category, published_at FROM videos ORDER BY id"):
            ids.append(r[0])
            durations.append(r[1])
            categories.append(r[2])
            published.append(r[3])
        return np.array(ids, np.int64), np.array(durations, np.float64), categories, published

    def video_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT video_id FROM videos ORDER BY id")]

    def store_ids(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT id FROM videos")}

    def owners_by_hash(self) -> dict[str, str]:
        """content hash -> video_id of every video: the same bytes are one video whatever their name."""
        return dict(self.db.execute("SELECT content_hash, video_id FROM videos").fetchall())

    def owner_of(self, content_hash: str) -> str | None:
        """The video_id of the video with these bytes, if the catalog holds it."""
        row = self.db.execute("SELECT video_id FROM videos WHERE content_hash = ?", (content_hash,)).fetchone()
        return None if row is None else row[0]

    def changed_since(self, revision: int) -> np.ndarray:
        """Store ids (int64) of the videos added or changed after catalog revision `revision`."""
        return np.array(
            [r[0] for r in self.db.execute("SELECT id FROM videos WHERE changed > ? ORDER BY id", (revision,))],
            np.int64,
        )

    def newest(self, limit: int) -> list[str]:
        """The most recently published (else added) videos, newest first."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT video_id FROM videos ORDER BY COALESCE(published_at, added_at) DESC, id DESC LIMIT ?", (limit,)
            )
        ]

    # ---- a few fields of many videos ----------------------------------------------------------------------
    def titles(self, video_ids: list[str]) -> dict[str, str]:
        if not video_ids:
            return {}
        return dict(
            self.db.execute(
                f"SELECT video_id, title FROM videos WHERE video_id IN ({_marks(video_ids)})", list(video_ids)
            ).fetchall()
        )

    def names(self, ids: list[int]) -> dict[int, tuple[str, str]]:
        """store id -> (video_id, title): how index hits become results."""
        if not ids:
            return {}
        return {
            r[0]: (r[1], r[2])
            for r in self.db.execute(f"SELECT id, video_id, title FROM videos WHERE id IN ({_marks(ids)})", list(ids))
        }

    def categories(self, video_ids: list[str]) -> dict[str, str | None]:
        """video_id -> its category label (None: unlabelled)."""
        if not video_ids:
            return {}
        return dict(
            self.db.execute(
                f"SELECT video_id, category FROM videos WHERE video_id IN ({_marks(video_ids)})", list(video_ids)
            ).fetchall()
        )

    def texts(self) -> Iterator[tuple[str, str, str, str | None]]:
        """(title, description, tags, category) of every video, streamed (search's word statistics)."""
        yield from self.db.execute("SELECT title, description, tags, category FROM videos")

    def durations(self, video_ids: list[str]) -> dict[str, float]:
        """video_id -> its length in seconds (for the cards' thumbnails)."""
        if not video_ids:
            return {}
        return dict(
            self.db.execute(
                f"SELECT video_id, duration FROM videos WHERE video_id IN ({_marks(video_ids)})", list(video_ids)
            ).fetchall()
        )

    def category_counts(self) -> dict[str, int]:
        """Videos per category (UNLABELLED for those without), the largest first."""
        return dict(
            self.db.execute(
                "SELECT COALESCE(category, ?), COUNT(*) FROM videos GROUP BY 1 ORDER BY 2 DESC, 1", (UNLABELLED,)
            ).fetchall()
        )

    # ---- browsing --------------------------------------------------------------------------------------
    def page(
        self, offset: int = 0, limit: int = 20, category: str | None = None, text: str | None = None
    ) -> tuple[int, list[Video]]:
        """(how many match, one page of them, newest first): a category (or UNLABELLED) and a plain substring
        of the title or tags."""
        where, args = [], []
        if category == UNLABELLED:
            where.append("category IS NULL")
        elif category:
            where.append("category = ?")
            args.append(category)
        if text and text.strip():
            where.append("(title LIKE ? ESCAPE '\\' OR tags LIKE ? ESCAPE '\\')")
            like = "%" + text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [like, like]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total = self.db.execute(f"SELECT COUNT(*) FROM videos {clause}", args).fetchone()[0]
        rows = self.db.execute(
            f"{_SELECT} {clause} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, max(1, limit), max(0, offset)]
        )
        return int(total), [_video(r) for r in rows]

    def most_clicked_in_category(self, category: str, k: int, exclude: str | None = None) -> list[tuple[Video, int]]:
        """(video, clicks) of one category, the most clicked first."""
        rows = self.db.execute(
            f"SELECT {', '.join('v.' + f.name for f in fields(Video))}, COALESCE(SUM(i.clicked), 0) AS clicks "
            "FROM videos v LEFT JOIN interactions i ON i.video_id = v.video_id "
            "WHERE v.category = ? AND v.video_id != ? GROUP BY v.id ORDER BY clicks DESC, v.id DESC LIMIT ?",
            (category, exclude or "", max(1, k)),
        )
        width = len(fields(Video))
        return [(_video(r[:width]), int(r[width])) for r in rows]

    # ---- frames and thumbnails ----------------------------------------------------------------------------
    def kept_frames(self, store_id: int) -> list[tuple[float, bytes]]:
        """(seconds, JPEG) of the frames ingest kept, in order."""
        return [
            (r[0], r[1])
            for r in self.db.execute("SELECT t, jpeg FROM frames WHERE video = ? ORDER BY idx", (store_id,))
        ]

    def thumbnails(self, video_ids: list[str]) -> dict[str, bytes]:
        if not video_ids:
            return {}
        return dict(
            self.db.execute(
                f"SELECT v.video_id, t.jpeg FROM thumbnails t JOIN videos v ON v.id = t.video "
                f"WHERE v.video_id IN ({_marks(video_ids)})",
                list(video_ids),
            ).fetchall()
        )

    def lacking_embeddings(self, version: int) -> list[Video]:
        """Videos with no embeddings of a CLIP version yet (what a re-embedding still has to do)."""
        return [
            _video(r)
            for r in self.db.execute(
                f"{_SELECT} v WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.video = v.id AND e.version = ?) "
                "ORDER BY id",
                (version,),
            )
        ]

    # ---- writes -------------------------------------------------------------------------------------------
    def add(
        self,
        row: dict,
        frames: list[tuple[float, bytes]],
        thumbnail: bytes,
        embeddings: dict[str, np.ndarray],
        version: int,
    ) -> int:
        """Insert one whole video (metadata, kept frames, thumbnail, embeddings); call inside a transaction.
        Returns its store id."""
        cols = ", ".join(VIDEO_COLUMNS) + ", added_at"
        cur = self.db.execute(
            f"INSERT INTO videos({cols}) VALUES ({_marks(VIDEO_COLUMNS)}, ?)",
            [row.get(c) for c in VIDEO_COLUMNS] + [now_iso()],
        )
        vid = int(cur.lastrowid or 0)
        self.db.executemany(
            "INSERT INTO frames(video, idx, t, jpeg) VALUES (?, ?, ?, ?)",
            [(vid, i, t, jpeg) for i, (t, jpeg) in enumerate(frames)],
        )
        self.db.execute("INSERT INTO thumbnails(video, jpeg) VALUES (?, ?)", (vid, thumbnail))
        self.embeddings.put(vid, version, embeddings)
        self.db.execute("DELETE FROM failures WHERE path = ?", (row["path"],))
        self.db.execute("UPDATE videos SET changed = ? WHERE id = ?", (self.store.bump_revision(), vid))
        return vid

    def update_text(self, video_id: str, changes: dict, text_embeddings: dict[str, np.ndarray], version: int) -> None:
        """New manifest metadata for a known video: its text and text embeddings change, its frames don't."""
        unknown = set(changes) - set(VIDEO_COLUMNS)
        if unknown:
            raise ValueError(f"not video fields: {sorted(unknown)}")
        sets = ", ".join(f"{k} = ?" for k in changes)
        self.db.execute(f"UPDATE videos SET {sets} WHERE video_id = ?", [*changes.values(), video_id])
        vid = self.db.execute("SELECT id FROM videos WHERE video_id = ?", (video_id,)).fetchone()[0]
        self.embeddings.update(vid, version, text_embeddings)
        self.db.execute("UPDATE videos SET changed = ? WHERE id = ?", (self.store.bump_revision(), vid))

    def remove(self, video_ids: list[str]) -> list[str]:
        """Delete videos with everything they own (frames, embeddings, interactions); returns those removed."""
        removed = []
        with self.store.writing("remove"), self.store.transaction():
            for video_id in video_ids:
                if self.db.execute("DELETE FROM videos WHERE video_id = ?", (video_id,)).rowcount:
                    removed.append(video_id)
            if removed:
                self.store.bump_revision()
        return removed


class Failures:
    """Files ingest refused, by path, with the one-line reason (a later success clears it)."""

    def __init__(self, store: Database):
        self.db = store.db

    def record(self, path: str, reason: str) -> None:
        self.db.execute(
            "INSERT INTO failures(path, reason, at) VALUES (?, ?, ?) ON CONFLICT(path) "
            "DO UPDATE SET reason = excluded.reason, at = excluded.at",
            (path, reason, now_iso()),
        )

    def all(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT path, reason, at FROM failures ORDER BY at, path")]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM failures").fetchone()[0])
