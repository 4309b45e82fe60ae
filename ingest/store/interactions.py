"""The interaction log: impressions with their outcome (click, like, watch time), imported or from the UI.

A row is identified by (user_id, video_id, ts): writing the same row again keeps one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .database import Database
from .encoding import now_iso

UI_SOURCE = "ui"  # the source of the impressions and outcomes the web UI logs (imported logs are 'import')
CONTEXT_COLUMNS = ("device", "region")  # the free-text parts of a context, asked about by name below
LOG_COLUMNS = ("user_id", "video_id", "ts", "hour", "weekday", "device", "region", "clicked", "liked", "watch_seconds")


@dataclass(frozen=True)
class Interaction:
    """One impression as the log keeps it."""

    user_id: str
    video_id: str
    ts: int  # Unix seconds, UTC
    utc_offset: int  # minutes; hour and weekday are local to it
    hour: int
    weekday: int  # 0 = Monday
    device: str | None
    region: str | None
    clicked: int
    liked: int | None
    watch_seconds: float | None


class Outcome(NamedTuple):
    """What became of an impression: a click, a like, seconds watched (None: not known)."""

    clicked: int
    liked: int | None
    watch_seconds: float | None


_ADD_NEW = (
    "INSERT INTO interactions(user_id, video_id, ts, utc_offset, hour, weekday, device, region, clicked, liked, "
    "watch_seconds, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, video_id, ts) DO NOTHING"
)
_COUNT = (  # impressions and clicks of the log's {rows}, added to their videos' counts ({sign} "-": taken away)
    "INSERT INTO video_counts(video_id, impressions, clicks) "
    "SELECT video_id, {sign}COUNT(*), {sign}COALESCE(SUM(clicked), 0) FROM interactions {rows} GROUP BY 1 "
    "ON CONFLICT(video_id) DO UPDATE SET impressions = impressions + excluded.impressions, "
    "clicks = clicks + excluded.clicks"
)
_LOGGED = (  # keys CROSS JOIN the log: a lookup by primary key per key (`(...) IN (VALUES ...)` would scan)
    "SELECT i.rowid, i.user_id, i.video_id, i.ts, i.utc_offset, i.hour, i.weekday, i.device, i.region, i.clicked, "
    "i.liked, i.watch_seconds FROM (VALUES {keys}) AS k CROSS JOIN interactions AS i "
    "ON i.user_id = k.column1 AND i.video_id = k.column2 AND i.ts = k.column3"
)


def forgotten_hash(user_id: str) -> str:
    """How the forgotten are kept: a hash, so that no file holds the id, the same in every catalog, so that a
    restore can carry the list over."""
    return hashlib.sha256(f"vidrec forgotten user:{user_id}".encode()).hexdigest()


def _column(name: str) -> str:
    if name not in CONTEXT_COLUMNS:
        raise ValueError(f"not a context column: {name!r}")
    return name


class Interactions:
    def __init__(self, store: Database):
        self.store = store
        self.db = store.db

    # ---- counts ---------------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM interactions").fetchone()[0])

    def user_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(DISTINCT user_id) FROM interactions").fetchone()[0])

    def users(self, limit: int = 500) -> list[str]:
        """Users with interactions, the most active first."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT user_id FROM interactions GROUP BY user_id ORDER BY COUNT(*) DESC, user_id LIMIT ?", (limit,)
            )
        ]

    def has_user(self, user_id: str) -> bool:
        """Whether the catalog holds anything of this user (a link's user may be anyone)."""
        return (
            self.db.execute("SELECT 1 FROM interactions WHERE user_id = ? LIMIT 1", (user_id,)).fetchone() is not None
        )

    def user_ids(self) -> list[str]:
        """Every user with interactions, in id order (batch recommendations go through them all)."""
        return [r[0] for r in self.db.execute("SELECT DISTINCT user_id FROM interactions ORDER BY user_id")]

    def audience(self, video_id: str) -> tuple[int, int, int]:
        """(impressions, clicks, likes) of one video."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(clicked), 0), COALESCE(SUM(liked), 0) FROM interactions WHERE video_id = ?",
            (video_id,),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def per_video(self, video_ids: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
        """{video_id: (impressions, clicks)} of these videos (None: every video in the log; one not in it is
        left out): what exploration's posteriors count. Read from the counts kept with every change of the log
        (schema migration 4), so the cost follows the videos asked for, not the length of the log."""
        query = "SELECT video_id, impressions, clicks FROM video_counts WHERE impressions > 0"
        if video_ids is None:
            return {r[0]: (int(r[1]), int(r[2])) for r in self.db.execute(query)}
        out: dict[str, tuple[int, int]] = {}
        ids = list(dict.fromkeys(video_ids))
        for start in range(0, len(ids), 500):  # SQLite caps the number of parameters
            part = ids[start : start + 500]
            rows = self.db.execute(f"{query} AND video_id IN ({','.join('?' * len(part))})", part)
            out.update({r[0]: (int(r[1]), int(r[2])) for r in rows})
        return out

    def marker(self) -> int:
        """Grows when rows are added (the catalog revision does not follow the log): for caches of counts. One
        index lookup, cheap enough for every request."""
        return int(self.db.execute("SELECT COALESCE(MAX(rowid), 0) FROM interactions").fetchone()[0])

    # ---- a user ---------------------------------------------------------------------------------------
    def clicks(self, user_id: str, limit: int | None = None) -> list[str]:
        """The videos the user clicked, oldest first (the latest `limit` of them when given)."""
        rows = self.db.execute(
            "SELECT video_id FROM interactions WHERE user_id = ? AND clicked = 1 ORDER BY ts DESC LIMIT ?",
            (user_id, -1 if limit is None else limit),
        ).fetchall()
        return [r[0] for r in reversed(rows)]

    def clicks_of(self, user_ids: Sequence[str]) -> list[tuple[str, str, int]]:
        """(user_id, video_id, ts) of every click of these users."""
        out: list[tuple[str, str, int]] = []
        users = list(user_ids)
        for start in range(0, len(users), 500):  # SQLite caps the number of parameters
            part = users[start : start + 500]
            out += [
                (r[0], r[1], r[2])
                for r in self.db.execute(
                    f"SELECT user_id, video_id, ts FROM interactions WHERE clicked = 1 AND user_id IN "
                    f"({','.join('?' * len(part))})",
                    part,
                )
            ]
        return out

    def of_user(self, user_id: str) -> list[Interaction]:
        rows = self.db.execute(
            "SELECT user_id, video_id, ts, utc_offset, hour, weekday, device, region, clicked, "
            "liked, watch_seconds FROM interactions WHERE user_id = ? ORDER BY ts",
            (user_id,),
        )
        return [Interaction(*r) for r in rows]

    def most_common(self, column: str, user_id: str | None = None) -> str | None:
        """The user's most frequent device or region (the whole log's, for None)."""
        column = _column(column)
        where, args = (
            (f"{column} IS NOT NULL", []) if user_id is None else (f"user_id = ? AND {column} IS NOT NULL", [user_id])
        )
        row = self.db.execute(
            f"SELECT {column} FROM interactions WHERE {where} GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1", args
        ).fetchone()
        return row[0] if row else None

    def by_frequency(self, column: str) -> list[str]:
        """Every device or region in the log, the most frequent first."""
        column = _column(column)
        return [
            r[0]
            for r in self.db.execute(
                f"SELECT {column} FROM interactions WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY COUNT(*) DESC, 1"
            )
        ]

    # ---- the whole log ----------------------------------------------------------------------------------
    def log(self) -> dict[str, list]:
        """Every impression as columns (LOG_COLUMNS), ordered by time (ties by user, video)."""
        rows = self.db.execute(f"SELECT {', '.join(LOG_COLUMNS)} FROM interactions ORDER BY ts, user_id, video_id")
        columns: dict[str, list] = {c: [] for c in LOG_COLUMNS}
        for row in rows:
            for c, value in zip(LOG_COLUMNS, row):
                columns[c].append(value)
        return columns

    def latest_ts(self, source: str | None = None) -> int | None:
        """The newest impression's time (of one source, e.g. 'import', when given)."""
        row = self.db.execute(
            "SELECT MAX(ts) FROM interactions" + (" WHERE source = ?" if source else ""), (source,) if source else ()
        ).fetchone()
        return row[0]

    def clicks_by_context(self, since: int) -> list[tuple[str, str | None, int, int]]:
        """(video_id, device, hour, clicks) of the clicks at or after `since`: what popularity counts."""
        return [
            (r[0], r[1], r[2], int(r[3]))
            for r in self.db.execute(
                "SELECT video_id, device, hour, SUM(clicked) FROM interactions WHERE ts >= ? "
                "GROUP BY video_id, device, hour HAVING SUM(clicked) > 0",
                (since,),
            )
        ]

    def first_ts(self, user_id: str) -> int | None:
        """The user's oldest impression (None: the log holds nothing of them)."""
        return self.db.execute("SELECT MIN(ts) FROM interactions WHERE user_id = ?", (user_id,)).fetchone()[0]

    # ---- writes -----------------------------------------------------------------------------------------
    def forget(self, user_id: str) -> dict[str, int]:
        """Delete every row of the user, in one transaction, with SQLite's secure delete on (the freed bytes are
        overwritten with zeros, not left in free pages), and add them to the forgotten; returns how many rows
        each source held."""
        self.db.execute("PRAGMA secure_delete = ON")
        with self.store.transaction():
            counts = {
                source: int(n)
                for source, n in self.db.execute(
                    "SELECT source, COUNT(*) FROM interactions WHERE user_id = ? GROUP BY source", (user_id,)
                )
            }
            self._count("WHERE user_id = ?", (user_id,), take_away=True)
            self.db.execute("DELETE FROM interactions WHERE user_id = ?", (user_id,))
            self.remember_forgotten({forgotten_hash(user_id)})
        return counts

    def remember_forgotten(self, hashes: set[str]) -> None:
        """Add users (by `forgotten_hash`) to the forgotten: imports refuse their rows from now on."""
        with self.store.transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO forgotten(user_hash, at) VALUES (?, ?)", [(h, now_iso()) for h in hashes]
            )

    def forgotten_hashes(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT user_hash FROM forgotten")}

    def forgotten_marker(self) -> int:
        """Grows with each user forgotten (rows are never taken out but by a restore): for a serving model to
        notice a `forget-user`. One index lookup, cheap enough for every request."""
        return int(self.db.execute("SELECT COALESCE(MAX(rowid), 0) FROM forgotten").fetchone()[0])

    def users_forgotten(self) -> list[str]:
        """Users the log holds although they were forgotten (a restored older backup brought them back)."""
        hashes = self.forgotten_hashes()
        if not hashes:
            return []
        return [
            r[0] for r in self.db.execute("SELECT DISTINCT user_id FROM interactions") if forgotten_hash(r[0]) in hashes
        ]

    def add(self, rows: Sequence[Interaction], source: str = "import") -> int:
        """Insert rows, skipping those already logged; returns how many were new."""
        with self.store.transaction():
            before, marker = self.db.total_changes, self.marker()
            self.db.executemany(
                "INSERT OR IGNORE INTO interactions(user_id, video_id, ts, utc_offset, hour, weekday, device, region, "
                "clicked, liked, watch_seconds, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.user_id,
                        r.video_id,
                        r.ts,
                        r.utc_offset,
                        r.hour,
                        r.weekday,
                        r.device,
                        r.region,
                        r.clicked,
                        r.liked,
                        r.watch_seconds,
                        source,
                    )
                    for r in rows
                ],
            )
            added = self.db.total_changes - before
            self._count_added(since=marker)
            return added

    def _count(self, rows: str, params: tuple, take_away: bool = False) -> None:
        """Add the impressions and clicks of the log's `rows` (what follows FROM interactions: a WHERE clause) to
        their videos' counts (or take them away), in the caller's transaction."""
        self.db.execute(_COUNT.format(rows=rows, sign="-" if take_away else ""), params)

    def _count_added(self, since: int) -> None:
        """Count the rows added after the log's `marker()` was `since`: rowids grow, and a transaction writes
        alone. By rowid, not by the video index (which would read the whole log at every batch)."""
        self._count("NOT INDEXED WHERE rowid > ?", (since,))

    def add_each(self, rows: Sequence[Interaction], source: str = "import") -> list[Interaction | None]:
        """Insert rows in one transaction, the first row logged under a key winning (a re-import changes nothing).
        For each row: None where it was added; the row itself where the log holds the same values under its key
        (a repeat); else the row logged under its key (a conflict). Rows earlier in `rows` count as logged."""
        values = [
            (r.user_id, r.video_id, r.ts, r.utc_offset, r.hour, r.weekday, r.device, r.region, r.clicked)
            + (r.liked, r.watch_seconds)
            for r in rows
        ]
        with self.store.transaction():
            before, changes = self.marker(), self.db.total_changes
            self.db.executemany(_ADD_NEW, [(*v, source) for v in values])
            new = self.db.total_changes - changes
            self._count_added(since=before)
            if new == len(rows):
                return [None] * len(rows)  # all new: a first import
            logged = self._logged([v[:3] for v in values])
        # A row was added here if the row under its key is newer than the batch (rowids grow; the writer lock keeps
        # other writers out) and no earlier row of the batch had its key.
        added: set[tuple] = set()
        out: list[Interaction | None] = []
        for r, v in zip(rows, values):
            rowid, held = logged[v[:3]]
            if rowid > before and v[:3] not in added:
                added.add(v[:3])
                out.append(None)
            else:
                out.append(r if held == v else Interaction(*held))
        return out

    def _logged(self, keys: list[tuple]) -> dict[tuple, tuple]:
        """{key: (rowid, values)} of the rows logged under these keys, a few hundred keys a query (one query a key
        is slower)."""
        out: dict[tuple, tuple] = {}
        cursor = self.db.cursor()
        cursor.row_factory = None  # plain tuples: cheaper than sqlite3.Row
        for start in range(0, len(keys), 300):  # SQLite caps the number of parameters
            part = keys[start : start + 300]
            for row in cursor.execute(
                _LOGGED.format(keys=", ".join(["(?, ?, ?)"] * len(part))),
                [value for key in part for value in key],
            ):
                out[row[1:4]] = (row[0], row[1:])
        return out

    def update_latest(self, impression: Interaction, source: str, change: Callable[[Outcome], Outcome]) -> Outcome:
        """Change the outcome of the user's latest impression of this video from `source` (logging `impression`
        first when there is none), in one transaction; returns the new outcome."""
        with self.store.transaction():
            row = self.db.execute(
                "SELECT ts, clicked, liked, watch_seconds FROM interactions WHERE user_id = ? "
                "AND video_id = ? AND source = ? ORDER BY ts DESC LIMIT 1",
                (impression.user_id, impression.video_id, source),
            ).fetchone()
            if row is None:
                self.add([impression], source)
                ts, previous = impression.ts, Outcome(impression.clicked, impression.liked, impression.watch_seconds)
            else:
                ts, previous = row[0], Outcome(row[1], row[2], row[3])
            outcome = change(previous)
            key = (impression.user_id, impression.video_id, ts)
            where = "WHERE user_id = ? AND video_id = ? AND ts = ?"
            self._count(where, key, take_away=True)  # the impression's click as it was, then as it is
            self.db.execute(
                f"UPDATE interactions SET clicked = ?, liked = ?, watch_seconds = ? {where}", (*outcome, *key)
            )
            self._count(where, key)
        return outcome
