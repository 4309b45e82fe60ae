"""The store's typed questions, each asked once and answered here on a small hand-made catalog, and its
schema migrations (a data dir written by the first release opens, is migrated in place and works)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from ingest.store import (
    UNLABELLED,
    Interaction,
    Outcome,
    Store,
    StoreError,
    catalog_version,
    from_blob,
    schema,
    to_blob,
)

DIM = 4


def _embeddings(seed: int, frames: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = {
        f: rng.standard_normal(DIM).astype(np.float32)
        for f in ("video_emb", "title_emb", "desc_emb", "tags_emb", "text_emb")
    }
    return vectors | {"frames_emb": rng.standard_normal((frames, DIM)).astype(np.float32)}


def _row(i: int, **fields) -> dict:
    return {
        "video_id": f"v{i}",
        "content_hash": f"h{i}",
        "path": f"/videos/{i}.mp4",
        "title": f"title {i}",
        "description": "",
        "tags": "a|b",
        "category": "cooking" if i % 2 else None,
        "published_at": None,
        "duration": 10.0 + i,
        "fps": 25.0,
        "width": 64,
        "height": 48,
        "codec": "h264",
        "rotation": 0,
        "size_bytes": 1000 + i,
        **fields,
    }


@pytest.fixture
def store(tmp_path) -> Store:
    """Four videos (v1, v3 cooking; v2, v4 unlabelled) under CLIP version 1, and a small log."""
    store = Store(tmp_path / "data")
    with store.transaction():
        store.clips.add(1, "tiny", "clip/v1.safetensors", None, {"embed_dim": DIM})
        store.clips.make_current(1)
        for i in range(1, 5):
            store.videos.add(_row(i), [(0.5, b"jpeg-a"), (1.5, b"jpeg-b")], b"thumb", _embeddings(i), 1)
    store.interactions.add(
        [
            Interaction("u1", "v1", 100, 0, 8, 0, "tv", "eu", 1, 1, 30.0),
            Interaction("u1", "v2", 200, 0, 9, 0, "tv", "eu", 0, None, None),
            Interaction("u1", "v3", 300, 0, 20, 5, "mobile", "eu", 1, 0, 5.0),
            Interaction("u2", "v1", 150, 60, 21, 6, "mobile", "us", 1, None, None),
        ]
    )
    return store


def test_videos_are_found_by_every_question(store):
    video = store.videos.get("v3")
    assert video is not None and video.title == "title 3" and video.tag_list == ["a", "b"] and video.id == 3
    assert store.videos.get("nope") is None
    assert store.videos.count() == 4 and store.videos.video_ids() == ["v1", "v2", "v3", "v4"]
    assert [v.video_id for v in store.videos.all()] == ["v1", "v2", "v3", "v4"]
    assert store.videos.owners_by_hash()["h2"] == "v2" and store.videos.store_ids() == {1, 2, 3, 4}
    assert store.videos.titles(["v1", "v4", "nope"]) == {"v1": "title 1", "v4": "title 4"}
    assert store.videos.names([2, 99]) == {2: ("v2", "title 2")}
    assert store.videos.categories(["v1", "v2"]) == {"v1": "cooking", "v2": None}
    assert store.videos.category_counts() == {"cooking": 2, UNLABELLED: 2}
    assert store.videos.newest(2) == ["v4", "v3"]  # no published dates: the latest added first
    assert store.videos.kept_frames(1) == [(0.5, b"jpeg-a"), (1.5, b"jpeg-b")]
    assert store.videos.thumbnails(["v1"]) == {"v1": b"thumb"}


def test_a_page_filters_by_category_and_text_newest_first(store):
    total, page = store.videos.page(0, 1, category="cooking")
    assert total == 2 and [v.video_id for v in page] == ["v3"]
    assert [v.video_id for v in store.videos.page(category=UNLABELLED)[1]] == ["v4", "v2"]
    assert store.videos.page(text="title 4")[0] == 1 and store.videos.page(text="100%")[0] == 0  # % is literal


def test_the_revision_says_what_changed(store):
    added = store.revision
    assert store.videos.changed_since(0).tolist() == [1, 2, 3, 4]
    with store.transaction():
        store.videos.update_text("v2", {"title": "renamed"}, {"title_emb": np.ones(DIM, np.float32)}, 1)
    assert store.revision == added + 1 and store.videos.changed_since(added).tolist() == [2]
    assert store.videos.get("v2").title == "renamed"
    np.testing.assert_array_equal(store.embeddings.of_video(2)["title_emb"], np.ones(DIM))
    with pytest.raises(ValueError, match="not video fields"):
        store.videos.update_text("v2", {"id": 7}, {}, 1)


def test_a_matrix_read_in_blocks_is_the_whole_matrix(store, monkeypatch):
    whole = store.embeddings.matrix("video_emb")
    monkeypatch.setattr("ingest.store.embeddings.MATRIX_ROWS", 3)  # blocks of 3 and 1
    blocks = store.embeddings.matrix("video_emb")
    assert blocks[0].tolist() == whole[0].tolist() and blocks[1] == whole[1]
    np.testing.assert_array_equal(blocks[2], whole[2])
    ids, durations, categories, published = store.videos.model_columns()
    assert ids.tolist() == [v.id for v in store.videos.all()] and len(durations) == len(categories) == len(published)


def test_embeddings_come_back_as_written(store):
    ids, video_ids, matrix = store.embeddings.matrix("text_emb")
    assert ids.tolist() == [1, 2, 3, 4] and video_ids == ["v1", "v2", "v3", "v4"] and matrix.shape == (4, DIM)
    np.testing.assert_array_equal(matrix[2], _embeddings(3)["text_emb"])
    assert store.embeddings.dim(1) == DIM and store.embeddings.exist()
    assert store.embeddings.frames(1)[4].shape == (2, DIM)
    assert set(store.embeddings.of_videos(["v1", "v9"])) == {"v1"}
    with pytest.raises(ValueError, match="unknown embedding field"):
        store.embeddings.matrix("frames_emb")
    np.testing.assert_array_equal(from_blob(to_blob(np.arange(6.0).reshape(2, 3)), 3), np.arange(6.0).reshape(2, 3))


def test_a_new_clip_version_is_written_beside_and_switched_at_once(store):
    assert store.clips.current().version == 1 and store.clips.next_version() == 2
    assert store.clips.current().weights == store.paths.root / "clip" / "v1.safetensors"
    with store.transaction():
        store.clips.add(2, "tiny", "clip/v2.safetensors", 1, {"pending": True})
    assert store.clips.pending().version == 2 and store.clips.current().version == 1
    assert [v.video_id for v in store.videos.lacking_embeddings(2)] == ["v1", "v2", "v3", "v4"]
    with store.transaction():
        for i in range(1, 5):
            store.embeddings.put(i, 2, _embeddings(10 + i))
        store.clips.set_info(2, {"pending": False})
        store.embeddings.keep_only(2)
        store.clips.make_current(2)
    assert store.clips.pending() is None and store.clips.current().tuned
    assert store.embeddings.count_lacking(2) == 0 and store.embeddings.matrix("video_emb", 1)[0].size == 0


def test_the_log_answers_questions_about_users_and_contexts(store):
    assert store.interactions.count() == 4 and store.interactions.user_count() == 2
    assert store.interactions.users() == ["u1", "u2"]  # the most active first
    assert store.interactions.clicks("u1") == ["v1", "v3"] and store.interactions.clicks("u1", limit=1) == ["v3"]
    assert sorted(store.interactions.clicks_of(["u2", "nobody"])) == [("u2", "v1", 150)]
    assert [r.video_id for r in store.interactions.of_user("u1")] == ["v1", "v2", "v3"]
    assert store.interactions.most_common("device", "u1") == "tv"
    assert store.interactions.most_common("region") == "eu" and store.interactions.most_common("device", "x") is None
    assert store.interactions.by_frequency("region") == ["eu", "us"]
    with pytest.raises(ValueError, match="not a context column"):
        store.interactions.most_common("user_id; DROP TABLE videos")
    assert store.interactions.audience("v1") == (2, 2, 1)
    assert store.interactions.latest_ts() == 300 and store.interactions.latest_ts("ui") is None
    assert sorted(store.interactions.clicks_by_context(150)) == [("v1", "mobile", 21, 1), ("v3", "mobile", 20, 1)]
    log = store.interactions.log()
    assert log["ts"] == [100, 150, 200, 300] and log["liked"] == [1, None, None, 0]


def test_a_row_is_kept_once_and_an_outcome_changes_in_place(store):
    marker = store.interactions.marker()
    assert store.interactions.add([Interaction("u1", "v1", 100, 0, 8, 0, "tv", "eu", 1, 1, 30.0)]) == 0
    assert store.interactions.marker() == marker
    shown = Interaction("u3", "v4", 500, 0, 12, 2, "desktop", "br", 0, None, None)
    assert store.interactions.update_latest(shown, "ui", lambda o: o._replace(clicked=1)) == Outcome(1, None, None)
    assert store.interactions.update_latest(shown, "ui", lambda o: o._replace(liked=1)) == Outcome(1, 1, None)
    assert [(r.clicked, r.liked) for r in store.interactions.of_user("u3")] == [(1, 1)]  # one impression, updated


def test_the_counts_per_video_follow_every_change_of_the_log(store):
    """Exploration reads impressions and clicks per video at every request; they are kept on write, never
    recounted, so they must follow imports, duplicates, a changed outcome, a forgotten user and a removed video."""

    def counted() -> dict[str, tuple[int, int]]:
        rows = store.db.execute("SELECT video_id, COUNT(*), SUM(clicked) FROM interactions GROUP BY 1")
        return {v: (n, c) for v, n, c in rows}

    log = store.interactions
    assert log.per_video() == counted() == {"v1": (2, 2), "v2": (1, 0), "v3": (1, 1)}
    assert log.add([Interaction("u1", "v1", 100, 0, 8, 0, "tv", "eu", 1, 1, 30.0)]) == 0  # already logged
    assert log.add([Interaction("u4", "v1", 110, 0, 8, 0, "tv", "eu", 0, None, None)]) == 1
    imported = [Interaction("u2", "v3", 160, 0, 8, 0, "tv", "eu", 0, None, None)] * 2  # an import: one new row, twice
    assert log.add_each(imported + [Interaction("u1", "v1", 100, 0, 8, 0, "tv", "eu", 0, 1, 30.0)])[0] is None
    assert log.per_video() == counted() == {"v1": (3, 2), "v2": (1, 0), "v3": (2, 1)}
    shown = Interaction("u3", "v2", 500, 0, 12, 2, "desktop", "br", 0, None, None)
    log.update_latest(shown, "ui", lambda o: o)  # a new impression, not clicked
    assert log.per_video(["v2", "v4", "nope"]) == {"v2": (2, 0)}  # nobody has seen v4 yet
    log.update_latest(shown, "ui", lambda o: o._replace(clicked=1))  # then clicked
    assert log.per_video()["v2"] == (2, 1)
    log.forget("u1")
    assert log.per_video() == counted() == {"v1": (2, 1), "v2": (1, 1), "v3": (1, 0)}
    store.videos.remove(["v1"])
    assert log.per_video() == counted() == {"v2": (1, 1), "v3": (1, 0)}


def test_models_are_listed_newest_first_even_within_one_second(store):
    assert store.models.newest_id() is None and store.models.count() == 0
    for name in ("first", "second"):  # saved in the same second: the later one is the newest
        store.models.add(name, 1, "mmoe", f"models/{name}", {"arch": "mmoe"}, {"click": {"auc": 0.8}})
    assert [m.model_id for m in store.models.all()] == ["second", "first"] and store.models.newest_id() == "second"
    assert store.models.all()[0].metrics == {"click": {"auc": 0.8}} and store.models.exists_for(1)
    assert not store.models.exists_for(2)
    assert catalog_version(store.paths.root)[2] == "second"


def test_removing_a_video_takes_what_it_owns(store):
    assert store.videos.remove(["v1", "nope"]) == ["v1"]
    assert store.videos.get("v1") is None and store.interactions.audience("v1") == (0, 0, 0)
    assert store.embeddings.matrix("video_emb")[1] == ["v2", "v3", "v4"] and store.videos.kept_frames(1) == []


def test_the_layout_names_every_file(store):
    paths = store.paths
    assert paths.database.name == "catalog.db" and paths.index_files("fused").ids.name == "fused.ids.npy"
    assert paths.model_files(paths.model_name("m1")).weights == paths.root / "models" / "m1" / "weights.safetensors"
    assert paths.ablations.parent == paths.models and paths.uploads.parent == paths.root
    assert paths.demo_world == paths.root / "demo-world"


def test_opening_a_missing_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no catalog in"):
        Store(tmp_path / "nothing", create=False)
    assert catalog_version(tmp_path / "nothing") == (None,)


def test_a_reader_of_an_up_to_date_store_does_not_write(store):
    """Opening a store at the latest schema only reads: a second connection holding the write lock does not
    stop it."""
    blocker = sqlite3.connect(store.paths.database)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        reader = Store(store.paths.root, create=False)
        assert reader.videos.count() == 4
    finally:
        blocker.rollback()
        blocker.close()


# The first release's schema, frozen as it shipped (schema_version 1): never edit it, it is what old data
# dirs hold.
RELEASE_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clip_versions (version INTEGER PRIMARY KEY, spec TEXT NOT NULL, weights TEXT, parent INTEGER,
    created_at TEXT NOT NULL, info TEXT NOT NULL DEFAULT '{}');
CREATE TABLE videos (id INTEGER PRIMARY KEY, video_id TEXT NOT NULL UNIQUE, content_hash TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '', category TEXT, published_at TEXT, duration REAL NOT NULL, fps REAL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, codec TEXT NOT NULL, rotation INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL, added_at TEXT NOT NULL, changed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE frames (video INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE, idx INTEGER NOT NULL,
    t REAL NOT NULL, jpeg BLOB NOT NULL, PRIMARY KEY (video, idx));
CREATE TABLE thumbnails (video INTEGER PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE, jpeg BLOB NOT NULL);
CREATE TABLE embeddings (video INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    version INTEGER NOT NULL REFERENCES clip_versions(version), video_emb BLOB NOT NULL, frames_emb BLOB NOT NULL,
    title_emb BLOB NOT NULL, desc_emb BLOB NOT NULL, tags_emb BLOB NOT NULL, text_emb BLOB NOT NULL,
    PRIMARY KEY (video, version));
CREATE TABLE failures (path TEXT PRIMARY KEY, reason TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE interactions (user_id TEXT NOT NULL,
    video_id TEXT NOT NULL REFERENCES videos(video_id) ON DELETE CASCADE ON UPDATE CASCADE,
    ts INTEGER NOT NULL, utc_offset INTEGER NOT NULL, hour INTEGER NOT NULL, weekday INTEGER NOT NULL, device TEXT,
    region TEXT, clicked INTEGER NOT NULL, liked INTEGER, watch_seconds REAL, source TEXT NOT NULL DEFAULT 'import',
    PRIMARY KEY (user_id, video_id, ts));
CREATE INDEX interactions_by_time ON interactions(ts);
CREATE TABLE models (model_id TEXT PRIMARY KEY, clip_version INTEGER NOT NULL, arch TEXT NOT NULL, path TEXT NOT NULL,
    config TEXT NOT NULL, metrics TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
"""


def test_a_data_dir_of_the_first_release_opens_and_is_migrated_in_place(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    db = sqlite3.connect(folder / "catalog.db")
    db.executescript(RELEASE_1)
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", "1"), ("revision", "3"), ("catalog_id", "abc"), ("clip_version", "1")],
    )
    db.execute(
        "INSERT INTO clip_versions VALUES (1, 'tiny', 'clip/v1.safetensors', NULL, '2026-01-01', ?)",
        (json.dumps({"embed_dim": DIM}),),
    )
    db.execute(
        "INSERT INTO videos VALUES (1, 'old1', 'h', '/x.mp4', 'an old video', '', '', 'news', NULL, 5.0, 25.0, "
        "64, 48, 'h264', 0, 10, '2026-01-01', 3)"
    )
    vectors = _embeddings(0)
    db.execute(
        "INSERT INTO embeddings VALUES (1, 1, ?, ?, ?, ?, ?, ?)",
        [to_blob(vectors[f]) for f in ("video_emb", "frames_emb", "title_emb", "desc_emb", "tags_emb", "text_emb")],
    )
    db.execute("INSERT INTO interactions VALUES ('u', 'old1', 10, 0, 1, 2, 'tv', 'eu', 1, NULL, NULL, 'import')")
    db.execute("INSERT INTO models VALUES ('m', 1, 'mmoe', 'models/m', '{}', '{}', '2026-01-01T00:00:00Z')")
    db.commit()
    db.close()

    store = Store(folder, create=False)
    assert store.get_meta("schema_version") == str(schema.LATEST) and store.revision == 3
    assert store.catalog_id == "abc" and store.clips.current().version == 1
    assert store.videos.get("old1").title == "an old video" and store.interactions.clicks("u") == ["old1"]
    assert store.models.newest_id() == "m" and store.embeddings.matrix("video_emb")[1] == ["old1"]
    index_names = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "interactions_by_video" in index_names  # migration 2
    assert store.interactions.per_video() == {"old1": (1, 1)}  # migration 4 counted the log it found
    assert Store(folder, create=False).get_meta("schema_version") == str(schema.LATEST)  # once only


def test_a_catalog_newer_than_this_vidrec_is_refused(tmp_path):
    store = Store(tmp_path / "data")
    store.set_meta("schema_version", str(schema.LATEST + 1))
    store.close()
    with pytest.raises(StoreError, match="newer than this vidrec"):
        Store(tmp_path / "data")
