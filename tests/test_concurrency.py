"""Working together: one writer at a time and many readers, a read path that follows the store, and one JSON
document for every failure (docs/architecture.md, "What runs at the same time")."""

from __future__ import annotations

import csv
import errno
import shutil
import threading
import time
from pathlib import Path

import pytest
from jobs import finish, start_ingest
from media import write_clip

from index.api import Vidrec
from index.search import SearchError
from ingest.store import DataDir, Store, lock
from ingest.store.database import Database
from ingest.store.lock import WriterLock

SMALL = 8  # videos in the catalogs two jobs race to ingest


def small_manifest(tiny_world, folder: Path, n: int = SMALL) -> Path:
    """The first n videos of the tiny world: a manifest with explicit ids, and the files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(tiny_world.manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    for row in rows:
        source = (Path(tiny_world.manifest).parent / row["path"]).resolve()
        shutil.copy(source, folder / source.name)
        row["path"] = str(folder / source.name)
    manifest = folder.parent / f"{folder.name}.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def assert_whole_and_searchable(data_dir: Path, n: int) -> None:
    store = Store(data_dir, read_only=True)
    status = store.status()
    assert status["videos"] == n and status["failed"] == 0
    assert status["clip"]["version"] == 1 and store.clips.next_version() == 2  # one CLIP, decided once
    assert store.embeddings.count_lacking(1) == 0
    api = Vidrec(data_dir, read_only=True)
    for video_id in store.videos.video_ids():
        assert len(api.similar(video_id, k=n)) == n - 1


def test_two_ingests_at_once_into_an_empty_data_dir(tiny_world, tmp_path):
    manifest = small_manifest(tiny_world, tmp_path / "videos")
    data_dir = tmp_path / "data"
    paths = DataDir(data_dir)
    paths.root.mkdir()
    # both start while a lock holder (no catalog yet) keeps them waiting, so that they overlap however the
    # machine schedules two processes' imports; then they race for the lock and for creating the catalog
    logs = [tmp_path / "first.err", tmp_path / "second.err"]
    with WriterLock(paths.writer_lock).hold("the test"):
        jobs = [start_ingest(data_dir, "--manifest", manifest, stderr=open(log, "w")) for log in logs]
        deadline = time.monotonic() + 180
        while not all("is waiting" in log.read_text() for log in logs):
            assert time.monotonic() < deadline and all(j.poll() is None for j in jobs), [f.read_text() for f in logs]
            time.sleep(0.2)
    (a, _), (b, _) = finish(jobs[0]), finish(jobs[1])
    assert a["ingested"] + b["ingested"] == SMALL
    assert a["duplicates"] + b["duplicates"] == SMALL
    assert a["failed"] == b["failed"] == []
    assert_whole_and_searchable(data_dir, SMALL)


def test_a_manifest_and_a_folder_of_the_same_files_at_once(tiny_world, tmp_path):
    manifest = small_manifest(tiny_world, tmp_path / "videos")
    data_dir = tmp_path / "data"
    by_manifest, by_folder = start_ingest(data_dir, "--manifest", manifest), start_ingest(data_dir, tmp_path / "videos")
    (a, _), (b, _) = finish(by_manifest), finish(by_folder)
    assert a["ingested"] + b["ingested"] == SMALL and a["duplicates"] + b["duplicates"] == SMALL
    assert a["failed"] == b["failed"] == []
    assert_whole_and_searchable(data_dir, SMALL)


def test_a_reader_made_before_an_ingest_serves_the_new_videos(trained_catalog, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    reader = Vidrec(data_dir, read_only=True)
    users = reader.store.interactions.users()
    before = reader.recommend(users[0], k=5)
    assert before["items"] and reader.store.videos.count() == 36

    (tmp_path / "new").mkdir()
    clips = [write_clip(tmp_path / "new" / f"new{i}.mp4", seed=100 + i) for i in range(3)]
    report = Vidrec(data_dir).ingest(clips)
    assert report.ingested == 3
    everything = reader.store.videos.count()
    new_ids = [v.video_id for v in reader.store.videos.all() if v.path in {str(c.resolve()) for c in clips}]
    assert len(new_ids) == 3

    for user in (users[0], "someone-new"):  # a known user and a cold start, on the same objects as before
        listed = reader.recommend(user, k=everything)["items"]
        assert listed and all(item["title"] is not None for item in listed)
    assert all(reader.recommender.model.knows(v) for v in new_ids)  # scored from their content
    scores = reader.recommender.model.score(users[0], new_ids, reader.context(users[0]))
    assert all(0.0 <= p <= 1.0 for p in scores["click"])
    similar = reader.similar(new_ids[0], k=everything)
    assert {item["video_id"] for item in similar} >= set(new_ids[1:])
    assert new_ids[0] in {item["video_id"] for item in reader.search("a bright square sliding", k=everything)}

    gone = new_ids[1]
    Vidrec(data_dir).remove([gone])
    for user in (users[0], "someone-new"):
        assert gone not in {item["video_id"] for item in reader.recommend(user, k=everything)["items"]}
    assert gone not in {item["video_id"] for item in reader.similar(new_ids[0], k=everything)}
    assert gone not in {item["video_id"] for item in reader.search("a bright square sliding", k=everything)}


def test_readers_never_write_nor_wait_for_a_writer(trained_catalog, tmp_path, cli):
    data_dir = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    writer = Store(data_dir)
    with writer.transaction():  # another connection holds a write transaction all along
        writer.set_meta("held", "yes")
        code, status = cli("--data-dir", data_dir, "status", "--json")
        assert code == 0 and status["videos"] == 36
        code, found = cli("--data-dir", data_dir, "search", "a cooking video", "--json")
        assert code == 0 and found["items"]
        video_id = found["items"][0]["video_id"]
        code, similar = cli("--data-dir", data_dir, "similar", video_id, "--json")
        assert code == 0 and similar["items"]
        code, listed = cli("--data-dir", data_dir, "recommend", "--user", "someone", "--json")
        assert code == 0 and listed["items"]
    reader = Store(data_dir, read_only=True)
    with pytest.raises(Exception, match="readonly"):
        reader.set_meta("x", "y")


def hold_the_writer_lock(data_dir: Path):
    """Another thread (as another process would) holds the data dir's writer lock until the event is set."""
    taken, release = threading.Event(), threading.Event()

    def hold():
        store = Store(data_dir)
        with store.writing("a long job"):
            taken.set()
            release.wait(60)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(30)
    return release, thread


WRITING_COMMANDS = [
    ("ingest", "{clip}"),
    ("import-interactions", "{log}"),
    ("remove", "{video}"),
    ("tune-clip", "--epochs", "1"),
    ("train", "--epochs", "1"),
    ("index",),
    ("eval", "--ablations", "--epochs", "1"),
]


def writing_commands(catalog: Path, tmp_path: Path, tiny_world) -> list[list[str]]:
    clip = write_clip(tmp_path / "one.mp4", seed=7)
    video = Store(catalog, read_only=True).videos.video_ids()[0]
    values = {"clip": str(clip), "log": str(tiny_world.interactions), "video": video}
    return [[part.format(**values) for part in command] for command in WRITING_COMMANDS]


def test_every_job_fails_in_one_json_line_when_another_holds_the_lock_past_the_timeout(
    trained_catalog, tiny_world, tmp_path, cli, monkeypatch
):
    data_dir = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    monkeypatch.setenv(lock.LOCK_TIMEOUT_ENV, "0.2")
    commands = writing_commands(data_dir, tmp_path, tiny_world)
    revision = Store(data_dir, read_only=True).revision
    release, thread = hold_the_writer_lock(data_dir)
    try:
        for command in commands:
            code, out = cli("--data-dir", data_dir, *command, "--json")
            assert code == 1 and "another job kept writing" in out["error"], (command, out)
        code, out = cli("--data-dir", data_dir, "status", "--json")  # readers go on
        assert code == 0
        ui = Vidrec(data_dir, read_only=True)  # and the UI's feedback is kept, without the lock
        video = ui.store.videos.video_ids()[0]
        ui.feedback("a-viewer", video, "like", ui.context("a-viewer", hour=20))
        assert ui.store.interactions.clicks("a-viewer") == [video]
    finally:
        release.set()
        thread.join(30)
    assert Store(data_dir, read_only=True).revision == revision  # nothing half-done


@pytest.mark.parametrize("failure", ["database locked", "disk full"])
def test_every_job_fails_in_one_json_line_on_a_database_or_disk_failure(
    failure, trained_catalog, tiny_world, tmp_path, cli, monkeypatch
):
    data_dir = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    commands = writing_commands(data_dir, tmp_path, tiny_world)
    shutil.rmtree(DataDir(data_dir).indexes)  # so that `index` has something to write
    if failure == "disk full":

        def full(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Database, "transaction", full)
        monkeypatch.setattr(Path, "write_text", full)  # the files beside the database (eval's table)
        expected = "the disk is full"
    else:
        commands = [c for c in commands if c[0] != "eval"]  # it writes a file, not the database
        monkeypatch.setattr("ingest.store.database.BUSY_TIMEOUT_SECONDS", 0.2)
        other = Store(data_dir)
        other.db.execute("BEGIN IMMEDIATE")  # another program holds SQLite's write lock
        expected = "database is locked"
    for command in commands:
        code, out = cli("--data-dir", data_dir, *command, "--json")
        assert code == 1 and expected in out["error"], (command, out)


def test_index_after_tune_clip_reports_the_stale_model_as_skipped(trained_catalog, tmp_path, cli):
    data_dir = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    code, tuned = cli("--data-dir", data_dir, "tune-clip", "--epochs", "1", "--force", "--json")
    assert code == 0 and tuned["replaced"]
    code, out = cli("--data-dir", data_dir, "index", "--json")
    assert code == 0
    names = {i["name"]: i for i in out["indexes"]}
    assert names["fused"]["size"] == 36
    assert names["model"]["action"] == "skipped" and "retrain" in names["model"]["reason"]


def test_only_a_job_holding_the_lock_writes_index_files(catalog_copy):
    files = DataDir(catalog_copy).index_files("fused")
    assert not files.data.exists()
    reader = Vidrec(catalog_copy, read_only=True)
    assert reader.search("a bright square", k=3)  # built in memory
    writer = Vidrec(catalog_copy)
    assert writer.search("a bright square", k=3)  # a job's object, outside a job: in memory too
    assert not files.data.exists()
    described = {i["name"]: i for i in writer.refresh_indexes()}
    assert described["fused"]["stamp"]["revision"] == writer.store.revision
    assert files.data.exists() and not list(files.data.parent.glob("*.tmp"))


def test_threads_serving_while_a_job_ingests_and_removes_see_no_error(trained_catalog, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data_dir)
    reader = Vidrec(data_dir, read_only=True)
    users = reader.store.interactions.users()
    videos = reader.store.videos.video_ids()
    errors: list[str] = []
    calls = [0]
    stop = threading.Event()

    def client(seed: int) -> None:
        turn = seed
        while not stop.is_set():
            try:
                if turn % 3 == 0:
                    reader.recommend(users[turn % len(users)] if turn % 2 else f"new-{turn}", k=10)
                elif turn % 3 == 1:
                    reader.search("a bright square sliding", k=10)
                else:
                    reader.similar(videos[turn % len(videos)], k=10)
                calls[0] += 1
            except SearchError as exc:
                if not str(exc).startswith("unknown video id"):  # the right answer for a removed one
                    errors.append(f"SearchError: {exc}")
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            turn += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        (tmp_path / "new").mkdir()
        writer = Vidrec(data_dir)
        for i in range(3):
            writer.ingest([write_clip(tmp_path / "new" / f"n{i}.mp4", seed=200 + i)])
        writer.remove(videos[-2:])  # ones the clients keep asking for
        served, deadline = calls[0], time.monotonic() + 60
        while calls[0] < served + 20 and time.monotonic() < deadline:  # and go on asking a while
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert calls[0] > 0 and not errors, errors[:3]
