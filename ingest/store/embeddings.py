"""The catalog's CLIP embeddings: one row per (video, CLIP version), float32 BLOBs beside the video.

A re-embedding writes a new version's rows beside the current ones and switches in one transaction,
so readers never see a mix of versions. Readers ask for the current version; the older versions' rows
stay (`vidrec clip use` goes back to them) until `vidrec clip prune` drops them.
"""

from __future__ import annotations

import numpy as np

from .database import Database
from .encoding import from_blob, to_blob, vector_from_blob

FIELDS = ("video_emb", "frames_emb", "title_emb", "desc_emb", "tags_emb", "text_emb")
VECTOR_FIELDS = tuple(f for f in FIELDS if f != "frames_emb")  # one vector per video
MATRIX_ROWS = 10_000  # rows read at a time into a whole-catalog matrix


class Embeddings:
    def __init__(self, store: Database):
        self.store = store
        self.db = store.db

    def dim(self, version: int) -> int:
        row = self.db.execute(
            "SELECT length(video_emb) FROM embeddings WHERE version = ? LIMIT 1", (version,)
        ).fetchone()
        return int(row[0]) // 4 if row else 0

    def exist(self) -> bool:
        """Whether any video has embeddings (of any version)."""
        return self.db.execute("SELECT 1 FROM embeddings LIMIT 1").fetchone() is not None

    def matrix(self, field: str = "video_emb", version: int | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(int64 store ids, video_ids, float32 [N, D]) of one field for the current (or given) CLIP version, in
        store id order. Per-frame embeddings come from `frames`, as videos may keep different frame counts."""
        if field not in VECTOR_FIELDS:
            raise ValueError(f"unknown embedding field {field!r}")
        version = self.store.clip_version if version is None else version
        if version is None:
            return np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32)
        dim = self.dim(version)
        cursor = self.db.execute(
            f"SELECT v.id, v.video_id, e.{field} FROM embeddings e JOIN videos v ON v.id = e.video "
            "WHERE e.version = ? ORDER BY v.id",
            (version,),
        )
        ids: list[int] = []
        video_ids: list[str] = []
        blocks = [np.zeros((0, dim), np.float32)]
        while rows := cursor.fetchmany(MATRIX_ROWS):  # a block at a time: 1M rows fetched whole took GBs
            ids += [r[0] for r in rows]
            video_ids += [r[1] for r in rows]
            blocks.append(from_blob(b"".join(r[2] for r in rows), dim))
            if len(blocks[-1]) != len(rows):
                raise ValueError(f"{field} of CLIP version {version} holds vectors of another size than {dim}")
        return np.array(ids, np.int64), video_ids, np.concatenate(blocks)

    def frames(self, version: int) -> dict[int, np.ndarray]:
        """store id -> [K, D] per-frame embeddings."""
        dim = self.dim(version)
        rows = self.db.execute("SELECT video, frames_emb FROM embeddings WHERE version = ?", (version,))
        return {r[0]: from_blob(r[1], dim) for r in rows}

    def of_video(self, store_id: int, fields: tuple[str, ...] = VECTOR_FIELDS) -> dict[str, np.ndarray] | None:
        """One video's vectors ({field: [D]}) of the current version; None if it has none."""
        unknown = set(fields) - set(VECTOR_FIELDS)
        if unknown:
            raise ValueError(f"unknown embedding field(s) {sorted(unknown)}")
        row = self.db.execute(
            f"SELECT {', '.join(fields)} FROM embeddings WHERE video = ? AND version = ?",
            (store_id, self.store.clip_version),
        ).fetchone()
        return None if row is None else {f: vector_from_blob(row[i]) for i, f in enumerate(fields)}

    def of_videos(self, video_ids: list[str], field: str = "video_emb") -> dict[str, np.ndarray]:
        """video_id -> [D] of one field, current version, for the videos that have it."""
        if field not in VECTOR_FIELDS:
            raise ValueError(f"unknown embedding field {field!r}")
        version = self.store.clip_version
        if not video_ids or version is None:
            return {}
        rows = self.db.execute(
            f"SELECT v.video_id, e.{field} FROM embeddings e JOIN videos v ON v.id = e.video "
            f"WHERE e.version = ? AND v.video_id IN ({','.join('?' * len(video_ids))})",
            [version, *video_ids],
        )
        return {r[0]: vector_from_blob(r[1]) for r in rows}

    # ---- writes -------------------------------------------------------------------------------------------
    def put(self, store_id: int, version: int, embeddings: dict[str, np.ndarray]) -> None:
        """Every field of one video for one version (replacing what was there); call inside a transaction."""
        missing = set(FIELDS) - set(embeddings)
        if missing:
            raise ValueError(f"embeddings missing {sorted(missing)}")
        _check_finite(embeddings)
        self.db.execute(
            f"INSERT OR REPLACE INTO embeddings(video, version, {', '.join(FIELDS)}) "
            f"VALUES (?, ?, {', '.join('?' for _ in FIELDS)})",
            [store_id, version] + [to_blob(embeddings[f]) for f in FIELDS],
        )

    def update(self, store_id: int, version: int, embeddings: dict[str, np.ndarray]) -> None:
        """Some fields of one video's embeddings (new text, same frames); call inside a transaction. The video's
        rows of other versions go: their text is the old one, and `clip use` embeds what a version lacks."""
        unknown = set(embeddings) - set(FIELDS)
        if unknown:
            raise ValueError(f"not embedding fields: {sorted(unknown)}")
        _check_finite(embeddings)
        sets = ", ".join(f"{k} = ?" for k in embeddings)
        self.db.execute(
            f"UPDATE embeddings SET {sets} WHERE video = ? AND version = ?",
            [to_blob(v) for v in embeddings.values()] + [store_id, version],
        )
        self.db.execute("DELETE FROM embeddings WHERE video = ? AND version != ?", (store_id, version))

    def count_lacking(self, version: int) -> int:
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM videos v WHERE NOT EXISTS (SELECT 1 FROM embeddings e "
                "WHERE e.video = v.id AND e.version = ?)",
                (version,),
            ).fetchone()[0]
        )

    def videos_per_version(self) -> dict[int, int]:
        """CLIP version -> how many videos have embeddings of it."""
        return dict(self.db.execute("SELECT version, COUNT(*) FROM embeddings GROUP BY version").fetchall())

    def drop_version(self, version: int) -> int:
        """Drop one version's rows (`clip prune`); call inside a transaction. Returns how many went."""
        return int(self.db.execute("DELETE FROM embeddings WHERE version = ?", (version,)).rowcount)

    def keep_only(self, version: int) -> None:
        """Drop every other version's rows; call inside a transaction."""
        self.db.execute("DELETE FROM embeddings WHERE version != ?", (version,))


def _check_finite(embeddings: dict[str, np.ndarray]) -> None:
    """No NaN or infinity is ever stored: one would poison every index and score it reaches."""
    bad = [field for field, vector in embeddings.items() if not np.isfinite(vector).all()]
    if bad:
        raise ValueError(f"non-finite embeddings ({', '.join(sorted(bad))}) are not stored")
