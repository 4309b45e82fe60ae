"""Faults: a damaged file is found and never served (an index is rebuilt, a newest model gives way to an older
good one, CLIP weights and a catalog database are refused with the way back), a frame that will not decode is
skipped, and a full disk is said in words and leaves nothing half-written."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from media import write_clip

from ingest.store import Store
from models.clip import load_clip

ROOT = Path(__file__).parent.parent
JPEG_START = b"\xff\xd8\xff\xe0\x00\x10JFIF"


def flip(path: Path, at: int | None = None, count: int = 64) -> None:
    """Overwrite `count` bytes in the middle of a file (or at `at`) in place, as `dd ... conv=notrunc` would."""
    size = path.stat().st_size
    at = size // 2 if at is None else at
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(bytes((i * 37 + 11) % 256 for i in range(min(count, size - at))))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def trained_copy(trained_catalog, tmp_path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(trained_catalog[0], target)
    return target


def test_a_damaged_index_is_rebuilt_never_served(trained_copy, cli):
    code, before = cli("--data-dir", trained_copy, "search", "cooking", "--json")
    assert code == 0 and before["items"]
    flip(trained_copy / "indexes" / "fused.faiss")
    code, after = cli("--data-dir", trained_copy, "search", "cooking", "--json")
    assert code == 0 and after == before  # rebuilt in memory from the store: the same answer, not the file's noise
    code, out = cli("--data-dir", trained_copy, "index", "--json")
    assert code == 0 and {i["name"]: i["action"] for i in out["indexes"]}["fused"] == "built"
    code, out = cli("--data-dir", trained_copy, "index", "--json")
    assert {i["action"] for i in out["indexes"]} == {"loaded"}  # the rebuilt files were written and check out
    code, out = cli("--data-dir", trained_copy, "index", "--rebuild", "--json")
    assert code == 0 and {i["action"] for i in out["indexes"]} == {"built"} and len(out["indexes"]) == 2


def test_a_damaged_newest_model_gives_way_to_the_newest_good_one(trained_copy, cli):
    store = Store(trained_copy)
    (good,) = store.models.all()
    newer = "newer-" + good.model_id  # a second model: the same files under another id, saved later
    shutil.copytree(trained_copy / good.path, trained_copy / "models" / newer)
    store.models.add(newer, good.clip_version, good.arch, f"models/{newer}", good.config, good.metrics)
    store.close()
    flip(trained_copy / "models" / newer / "weights.safetensors")
    args = ("--data-dir", trained_copy, "recommend", "--user", "u0001", "--hour", "8", "--weekday", "2", "--json")
    code, out = cli(*args)
    assert code == 0, out
    assert any(newer in w and "damaged" in w for w in out["warnings"]), out["warnings"]
    assert any(good.model_id in w for w in out["warnings"])
    assert out["items"] and all(math.isfinite(i["score"]) for i in out["items"])
    flip(trained_copy / good.path / "weights.safetensors")  # no good model left
    code, out = cli(*args)
    assert code == 1 and "damaged" in out["error"] and "retrain" in out["error"]


def test_damaged_clip_weights_are_refused(trained_copy, tmp_path, cli):
    store = Store(trained_copy, read_only=True)
    clip = store.clips.current()
    videos = store.videos.count()
    store.close()
    assert clip is not None and clip.weights is not None
    flip(clip.weights)
    code, out = cli("--data-dir", trained_copy, "search", "cooking", "--json")
    assert code == 1 and "CLIP weights" in out["error"] and "damaged" in out["error"]
    new = write_clip(tmp_path / "new.mp4", seed=7)
    code, out = cli("--data-dir", trained_copy, "ingest", new, "--json")
    assert code == 1 and "damaged" in out["error"]
    assert Store(trained_copy, read_only=True).videos.count() == videos


@pytest.mark.unit
def test_non_finite_numbers_are_never_taken_in(tmp_path, cli):
    clip = load_clip("tiny")
    with torch.no_grad():
        next(clip.model.parameters()).view(-1)[0] = float("nan")
    weights = tmp_path / "nan.safetensors"
    clip.save(weights)
    video = write_clip(tmp_path / "a.mp4")
    code, out = cli("--data-dir", tmp_path / "data", "ingest", video, "--clip", f"vidrec-tiny:{weights}", "--json")
    assert code == 1 and "non-finite" in out["error"]
    store = Store(tmp_path / "store")
    vectors = {f: np.zeros(4, np.float32) for f in ("video_emb", "title_emb", "desc_emb", "tags_emb", "text_emb")}
    with pytest.raises(ValueError, match="non-finite"):
        store.embeddings.put(1, 1, {**vectors, "frames_emb": np.full((2, 4), np.inf, np.float32)})


def test_a_damaged_catalog_database_is_never_written(catalog_copy, tmp_path, cli, capsys):
    database = catalog_copy / "catalog.db"
    truncated = tmp_path / "truncated"
    shutil.copytree(catalog_copy, truncated)
    with open(truncated / "catalog.db", "r+b") as f:
        f.truncate(database.stat().st_size * 6 // 10)
    code, out = cli("--data-dir", truncated, "status", "--json")
    assert code == 1 and "is damaged" in out["error"] and "backup" in out["error"]
    assert "Traceback" not in capsys.readouterr().err
    assert cli("--data-dir", catalog_copy, "backup", tmp_path / "backup", "--json")[0] == 0
    flip(database, count=16 * 4096)  # 16 pages in the middle
    before = sha(database)
    for job in (("tune-clip", "--epochs", "1"), ("ingest", write_clip(tmp_path / "b.mp4", seed=8)), ("index",)):
        code, out = cli("--data-dir", catalog_copy, *job, "--json")
        assert code == 1 and "is damaged" in out["error"] and "nothing was written" in out["error"], (job, out)
        assert "vidrec restore" in out["error"]
    assert sha(database) == before
    assert not (catalog_copy / "catalog.db-wal").exists() or (catalog_copy / "catalog.db-wal").stat().st_size == 0
    code, out = cli("--data-dir", catalog_copy, "restore", tmp_path / "backup", "--force", "--json")  # the way back
    assert code == 0, out
    assert cli("--data-dir", catalog_copy, "index", "--json")[0] == 0
    assert cli("--data-dir", catalog_copy, "status", "--json")[1]["videos"] == 36


def test_a_kept_frame_that_will_not_decode_is_skipped_and_named(catalog_copy, cli):
    database = catalog_copy / "catalog.db"
    data = database.read_bytes()
    at = data.index(JPEG_START, len(data) // 3)  # one kept frame's JPEG, damaged where it starts
    flip(database, at, len(JPEG_START))
    code, out = cli("--data-dir", catalog_copy, "tune-clip", "--epochs", "1", "--force", "--json")
    assert code == 0, out
    assert len(out["skipped_frames"]) == 1 and out["skipped_frames"][0]["video_id"]
    assert out["replaced"] and Store(catalog_copy, read_only=True).embeddings.count_lacking(out["clip"]["version"]) == 0


FULL_DISK = r"""
import contextlib, io, json, os, shutil, sqlite3, subprocess, sys
from pathlib import Path
from app.cli import main

mount, catalog, video, out = map(Path, sys.argv[1:5])
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={sys.argv[5]}", "tmpfs", str(mount)], check=True)
data, filler = mount / "data", mount / "filler"
shutil.copytree(catalog, data)
reader = sqlite3.connect(data / "catalog.db")  # a reader (the UI, say) has the catalog open: -wal and -shm exist
reader.execute("SELECT COUNT(*) FROM videos").fetchone()
with open(filler, "wb") as f:  # then the disk fills, but for 16 kB
    f.write(bytes(shutil.disk_usage(mount).free - 16384))


def run(name, *args):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.suppress(SystemExit):
        main(["--data-dir", str(data), *args, "--json"])
    (out / f"{name}.json").write_text(stdout.getvalue())


run("index-full", "index", "--rebuild")
run("ingest-full", "ingest", str(video))
(out / "files-full.txt").write_text("\n".join(str(p) for p in data.rglob("*")))
run("status-full", "status")
reader.close()  # the last connection: -wal and -shm go, and there is no room to make them again
for name in ("catalog.db-wal", "catalog.db-shm"):
    (data / name).unlink(missing_ok=True)
with open(mount / "filler-2", "wb") as f:
    f.write(bytes(max(0, shutil.disk_usage(mount).free - 16384)))
run("status-no-wal", "status")
run("ingest-no-wal", "ingest", str(video))
filler.unlink()
(mount / "filler-2").unlink()
run("ingest-after", "ingest", str(video))
"""


def test_a_full_disk_is_said_in_words_and_leaves_nothing_half_written(catalog_copy, tmp_path):
    """A real small file system: a tmpfs mounted in a private mount namespace (no root needed where user
    namespaces are allowed)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("no private mount namespace here (unshare -rm)")
    mount, out = tmp_path / "small-disk", tmp_path / "out"
    mount.mkdir()
    out.mkdir()
    size = sum(f.stat().st_size for f in catalog_copy.rglob("*") if f.is_file()) + (4 << 20)
    video = write_clip(tmp_path / "new.mp4", seed=7)
    args = [sys.executable, "-c", FULL_DISK, mount, catalog_copy, video, out, str(size)]
    done = subprocess.run(["unshare", "-rm", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    read = lambda name: json.loads((out / f"{name}.json").read_text())  # noqa: E731
    assert "the disk is full" in read("index-full")["error"]
    assert "the disk is full" in read("ingest-full")["error"]
    assert "Traceback" not in done.stderr
    assert ".tmp" not in (out / "files-full.txt").read_text()
    assert read("status-full")["videos"] == 36  # the catalog held
    assert read("status-no-wal")["videos"] == 36  # a reader needs no -wal or -shm file of its own
    assert "the disk is full" in read("ingest-no-wal")["error"] and "-shm" in read("ingest-no-wal")["error"]
    assert read("ingest-after")["ingested"] == 1  # more space: the rerun goes on
