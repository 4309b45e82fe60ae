"""Ingest: real files in, a consistent catalog out, whatever the files are."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from media import make_bad_files, make_odd_files, write_clip
from PIL import Image

from ingest.store import Store

FRAMES = 8


def _manifest_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_manifest(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_tiny_world_is_ingested_whole(tiny_catalog, tiny_world):
    store = Store(tiny_catalog, create=False)
    rows = {r["video_id"]: r for r in _manifest_rows(tiny_world.manifest)}
    videos = {v.video_id: v for v in store.videos.all()}
    assert set(videos) == set(rows)
    for video_id, row in rows.items():
        video = videos[video_id]
        assert video.title == row["title"] and video.description == row["description"]
        assert video.tags == row["tags"] and (video.category or "") == row["category"]
        assert video.codec == "h264" and 2 <= video.duration <= 20.5
        frames = store.videos.kept_frames(video.id)
        assert len(frames) == FRAMES
        assert [t for t, _ in frames] == sorted(t for t, _ in frames)
        assert Image.open(io.BytesIO(frames[0][1])).size == (128, 128)
        assert Image.open(io.BytesIO(store.videos.thumbnails([video_id])[video_id])).format == "JPEG"
    ids, video_ids, video_emb = store.embeddings.matrix("video_emb")
    _, _, text_emb = store.embeddings.matrix("text_emb")
    assert len(ids) == len(rows) and video_emb.shape == (len(rows), 128)
    np.testing.assert_allclose(np.linalg.norm(video_emb, axis=1), 1, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(text_emb, axis=1), 1, atol=1e-4)
    frames_emb = store.embeddings.frames(store.clips.current().version)
    assert all(f.shape == (FRAMES, 128) for f in frames_emb.values())
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in v.title) for v in videos.values())
    assert store.status()["failed"] == 0


def test_odd_but_valid_files_are_ingested(tmp_path, cli):
    odd = make_odd_files(tmp_path / "odd")
    code, out = cli("--data-dir", tmp_path / "data", "ingest", tmp_path / "odd", "--clip", "tiny", "--json")
    assert code == 0, out
    assert out["ingested"] == len(odd) and out["failed"] == [] and out["duplicates"] == 0
    store = Store(tmp_path / "data", create=False)
    by_path = {Path(v.path).name: v for v in store.videos.all()}
    assert {by_path[p.name].codec for p in odd.values()} == {"hevc", "vp9", "av1", "mpeg4", "mjpeg", "h264"}
    portrait = by_path["portrait.mp4"]
    assert portrait.rotation == 90 and (portrait.width, portrait.height) == (96, 64)
    upright = Image.open(io.BytesIO(store.videos.kept_frames(portrait.id)[0][1]))
    assert upright.height > upright.width  # shown as portrait
    assert by_path["视频 ünïcode clip.mp4"].title == "视频 ünïcode clip"
    assert all(len(store.videos.kept_frames(v.id)) == FRAMES for v in by_path.values())


def test_bad_files_are_refused_one_by_one_and_the_batch_goes_on(tmp_path, cli):
    bad = make_bad_files(tmp_path / "bad")
    good = write_clip(tmp_path / "good.mp4", seed=42)
    code, out = cli("--data-dir", tmp_path / "data", "ingest", *bad.values(), good, "--clip", "tiny", "--json")
    assert code == 0, out
    assert out["ingested"] == 1
    reasons = {Path(f["path"]).name: f["reason"] for f in out["failed"]}
    assert set(reasons) == {p.name for p in bad.values()}
    assert all(r and "\n" not in r and len(r) < 300 for r in reasons.values())
    assert reasons["empty.mp4"] == "empty file"
    assert "audio only" in reasons["sound.m4a"]
    assert "still image" in reasons["picture.png"]
    assert "single frame" in reasons["one_frame.mp4"]
    assert "no such file" in reasons["missing.mp4"].lower()
    code, status = cli("--data-dir", tmp_path / "data", "status", "--json")
    assert status["videos"] == 1 and status["failed"] == len(bad)
    # nothing usable at all: exit 1, the reasons still reported
    code, out = cli("--data-dir", tmp_path / "data2", "ingest", bad["text"], bad["empty"], "--clip", "tiny", "--json")
    assert code == 1 and len(out["failed"]) == 2


def test_rerun_adds_nothing_but_new_metadata_updates(catalog_copy, tiny_world, tmp_path, cli):
    code, out = cli("--data-dir", catalog_copy, "ingest", "--manifest", tiny_world.manifest, "--json")
    assert code == 0 and out["ingested"] == 0 and out["updated"] == 0
    assert out["duplicates"] == tiny_world.videos
    store = Store(catalog_copy, create=False)
    before = dict(zip(*store.embeddings.matrix("title_emb")[1:]))
    rows = _manifest_rows(tiny_world.manifest)
    for row in rows:
        row["path"] = str(tiny_world.world_dir / row["path"])
    rows[0]["title"] = "a brand new title about dancing robots"
    code, out = cli(
        "--data-dir", catalog_copy, "ingest", "--manifest", _write_manifest(tmp_path / "m.csv", rows), "--json"
    )
    assert code == 0 and out["ingested"] == 0 and out["updated"] == 1
    store = Store(catalog_copy, create=False)
    assert store.videos.get(rows[0]["video_id"]).title == "a brand new title about dancing robots"
    after = dict(zip(*store.embeddings.matrix("title_emb")[1:]))
    assert not np.allclose(after[rows[0]["video_id"]], before[rows[0]["video_id"]])
    np.testing.assert_array_equal(after[rows[1]["video_id"]], before[rows[1]["video_id"]])
    assert store.videos.count() == tiny_world.videos


def test_same_bytes_under_another_name_or_id_are_one_video(catalog_copy, tiny_world, tmp_path, cli):
    row = _manifest_rows(tiny_world.manifest)[0]
    copy = tmp_path / "renamed copy.mp4"
    copy.write_bytes((tiny_world.world_dir / row["path"]).read_bytes())
    manifest = _write_manifest(tmp_path / "m.csv", [dict(row, path=str(copy), video_id="another-id")])
    code, out = cli("--data-dir", catalog_copy, "ingest", copy, "--manifest", manifest, "--json")
    assert code == 0 and out["ingested"] == 0 and out["duplicates"] == 2
    assert Store(catalog_copy, create=False).videos.get("another-id") is None


def test_an_id_that_names_another_file_is_refused(catalog_copy, tiny_world, tmp_path, cli):
    taken = _manifest_rows(tiny_world.manifest)[0]["video_id"]
    clip = write_clip(tmp_path / "new.mp4", seed=99)
    manifest = _write_manifest(tmp_path / "m.csv", [{"path": str(clip), "video_id": taken, "title": "x"}])
    code, out = cli("--data-dir", catalog_copy, "ingest", "--manifest", manifest, "--json")
    assert code == 1 and "already names another file" in out["failed"][0]["reason"]


def test_manifest_rows_with_errors_are_reported_by_line(tmp_path, cli):
    write_clip(tmp_path / "good.mp4", seed=1)  # the manifest's one good row
    huge_title = "long title " * 3000
    csv_manifest = tmp_path / "m.csv"
    csv_manifest.write_text(
        "path,video_id,title,published_at\n"
        f"good.mp4,ok1,{huge_title},2026-01-02T03:04:05+08:00\n"
        ",noid,missing path,\n"
        "good.mp4,bad date,x,yesterday\n"
        "nowhere.mp4,gone,x,\n"
        "good.mp4,ok2,x,,surplus\n",
        encoding="utf-8",
    )
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        '{"path": "good.mp4", "video_id": "j1", "tags": ["a", "b"]}\n{not json\n[1, 2]\n', encoding="utf-8"
    )
    code, out = cli("--data-dir", tmp_path / "data", "ingest", "--manifest", csv_manifest, "--clip", "tiny", "--json")
    assert code == 0 and out["ingested"] == 1
    reasons = sorted(f["reason"] for f in out["failed"])
    assert any("line 3" in r and "missing path" in r for r in reasons)
    assert any("line 4" in r and "bad video_id" in r for r in reasons)
    assert any("no such file" in r.lower() for r in reasons)
    assert any("line 6" in r and "more field" in r for r in reasons)
    store = Store(tmp_path / "data", create=False)
    assert store.videos.get("ok1").title == huge_title.strip()  # kept whole, not cut
    code, out = cli("--data-dir", tmp_path / "data", "ingest", "--manifest", jsonl, "--json")
    assert code == 0 and out["duplicates"] == 1  # the same bytes as ok1
    assert any("line 2" in f["reason"] and "invalid JSON" in f["reason"] for f in out["failed"])
    assert any("line 3" in f["reason"] and "JSON object" in f["reason"] for f in out["failed"])


def test_a_second_clip_is_refused(catalog_copy, tmp_path, cli):
    clip = write_clip(tmp_path / "new.mp4", seed=7)
    code, out = cli(
        "--data-dir", catalog_copy, "ingest", clip, "--clip", "ViT-B-32:/no/such/weights.safetensors", "--json"
    )
    assert code == 1 and "made with CLIP tiny" in out["error"]
    assert Store(catalog_copy, create=False).videos.count() == 36


def test_killed_ingest_resumes_without_duplicates(tiny_world, tmp_path, cli):
    data = tmp_path / "data"
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "--data-dir",
        str(data),
        "ingest",
        "--manifest",
        str(tiny_world.manifest),
        "--clip",
        "tiny",
        "--batch-size",
        "1",
        "--workers",
        "1",
        "--json",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).parent.parent,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent)),
    )
    committed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (data / "catalog.db").exists():
            try:  # a reader beside the writer (WAL): sees whole videos only
                with sqlite3.connect(data / "catalog.db", timeout=5) as db:
                    committed = db.execute("SELECT COUNT(*) FROM videos").fetchone()[0]
                    frames = db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
                    assert frames == committed * FRAMES
            except sqlite3.OperationalError:
                committed = 0
        if committed >= 3:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 3 <= committed < tiny_world.videos, "the ingest was not caught half-way"
    code, out = cli("--data-dir", data, "ingest", "--manifest", tiny_world.manifest, "--json")
    assert code == 0 and out["failed"] == []
    store = Store(data, create=False)
    assert store.videos.count() == tiny_world.videos
    assert out["ingested"] + out["duplicates"] == tiny_world.videos and out["duplicates"] >= 3
    assert store.db.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == tiny_world.videos * FRAMES
    assert store.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == tiny_world.videos


def test_remove_takes_everything_a_video_owns(catalog_copy, cli):
    store = Store(catalog_copy, create=False)
    video_id = max(store.videos.video_ids(), key=lambda v: store.interactions.audience(v)[0])
    interactions = store.interactions.count()
    code, out = cli("--data-dir", catalog_copy, "remove", video_id, "nope", "--json")
    assert code == 0 and out["removed"] == [video_id] and out["unknown"] == ["nope"]
    store = Store(catalog_copy, create=False)
    assert store.videos.get(video_id) is None and store.videos.count() == 35
    assert store.interactions.count() < interactions
    assert store.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 35
    assert store.db.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 35 * FRAMES
    code, out = cli("--data-dir", catalog_copy, "remove", "nope", "--json")
    assert code == 1 and "unknown video id" in out["error"]
