"""Ingest on Ray (`vidrec ingest --engine ray`): the same catalog as the local engine, and nothing lost or
doubled when a task fails, an actor dies or the driver is killed (docs/architecture.md, "Scaling out").

One Ray cluster serves the whole test session (conftest's `ray_cluster`: 2 CPUs, temp files under the
test's tmp path); every test has a timeout, and the work asks for fractions of a CPU so the actor pool never waits
behind a task holding a whole one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from media import make_bad_files, write_clip

from ingest import ray_ingest
from ingest.pipeline import IngestOptions, ingest
from ingest.ray_ingest import RayOptions
from ingest.ray_workers import ShardEmbedder, prepare_shard
from ingest.staging import Staging
from ingest.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHARD = 3  # videos per shard: the corpora below make several shards
CORPUS = (7, 1, 6)  # what the corpus gives: (ingested, duplicates, refused)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Seven clips, one of them twice (a duplicate), and the bad files every ingest must refuse one by one."""
    folder = tmp_path_factory.mktemp("corpus")
    for i in range(7):
        write_clip(folder / f"clip{i}.mp4", seed=20 + i)
    shutil.copy(folder / "clip2.mp4", folder / "clip2-copy.mp4")
    make_bad_files(folder / "bad")
    return folder


def on_ray(store: Store, inputs, staging: str | None = None) -> dict:
    options = IngestOptions(
        clip="tiny", progress=False, engine="ray", ray=RayOptions(workers=1, shard_videos=SHARD, staging=staging)
    )
    return ingest(store, inputs, options=options).to_json()


def catalog(data_dir: Path) -> dict:
    """Everything a catalog holds of its videos: rows, kept frames, thumbnails, embeddings, failures."""
    store = Store(data_dir, read_only=True)
    videos = {}
    for video in store.videos.all():
        videos[video.video_id] = {
            "path": video.path,
            "title": video.title,
            "frames": store.videos.kept_frames(video.id),
            "thumbnail": store.videos.thumbnails([video.video_id])[video.video_id],
            "vectors": store.embeddings.of_video(video.id),
        }
    failures = sorted((f["path"], f["reason"]) for f in store.failures.all())
    store.close()
    return {"videos": videos, "failures": failures}


@pytest.mark.timeout(120)
def test_ray_ingest_gives_the_catalog_a_local_ingest_gives(ray_cluster, corpus, tmp_path, cli):
    local = ingest(Store(tmp_path / "local"), [corpus], options=IngestOptions(clip="tiny", progress=False)).to_json()
    report = on_ray(Store(tmp_path / "ray"), [corpus])

    assert (report["ingested"], report["duplicates"], len(report["failed"])) == CORPUS
    assert (local["ingested"], local["duplicates"], len(local["failed"])) == CORPUS
    assert sorted(map(str, report["failed"])) == sorted(map(str, local["failed"]))
    shards = report["shards"]
    inputs = local["ingested"] + local["duplicates"] + len(local["failed"])
    assert shards["total"] == shards["made"] == shards["merged"] == -(-inputs // SHARD) > 1
    assert shards["reused"] == 0
    assert Staging.open(tmp_path / "ray" / "staging").shards() == {}  # merged shards are removed

    want, got = catalog(tmp_path / "local"), catalog(tmp_path / "ray")
    assert got["failures"] == want["failures"]
    assert sorted(got["videos"]) == sorted(want["videos"])
    for video_id, mine in got["videos"].items():
        theirs = want["videos"][video_id]
        assert (mine["path"], mine["title"]) == (theirs["path"], theirs["title"])
        assert mine["frames"] == theirs["frames"] and mine["thumbnail"] == theirs["thumbnail"]
        assert sorted(mine["vectors"]) == sorted(theirs["vectors"])
        for field, vector in mine["vectors"].items():
            np.testing.assert_allclose(vector, theirs["vectors"][field], atol=1e-5, err_msg=field)

    code, status = cli("--data-dir", tmp_path / "ray", "status", "--json")
    assert code == 0 and status["staged"]["shards"] == 0 and status["videos"] == 7


def failing_once(marker: Path):
    """A prepare task that raises the first time it is run (then works)."""

    def prepare(row, **kwargs):
        if not marker.exists():
            marker.touch()
            raise RuntimeError("a prepare task failing once")
        return prepare_shard(row, **kwargs)

    return prepare


def dying_once(marker: Path):
    """A CLIP actor whose process dies on its second shard, once (Ray starts another)."""

    class DyingEmbedder(ShardEmbedder):
        calls = 0

        def __call__(self, row):
            self.calls += 1
            if self.calls == 2 and not marker.exists():
                marker.touch()
                os._exit(1)
            return super().__call__(row)

    return DyingEmbedder


@pytest.mark.timeout(150)
def test_a_failing_task_and_a_dying_actor_lose_nothing_and_double_nothing(ray_cluster, corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(ray_ingest, "prepare_shard", failing_once(tmp_path / "prepare-failed"))
    monkeypatch.setattr(ray_ingest, "ShardEmbedder", dying_once(tmp_path / "actor-died"))
    staging = f"file://{tmp_path / 'elsewhere'}"  # a pyarrow filesystem URI
    report = on_ray(Store(tmp_path / "data"), [corpus], staging=staging)

    assert report["shards"]["location"] == staging and Staging.open(staging).shards() == {}
    assert (tmp_path / "prepare-failed").exists() and (tmp_path / "actor-died").exists()  # both faults happened
    assert (report["ingested"], report["duplicates"], len(report["failed"])) == CORPUS
    store = Store(tmp_path / "data", read_only=True)
    assert store.videos.count() == 7 and len(store.failures.all()) == 6
    assert sum(store.embeddings.videos_per_version().values()) == 7  # one set of embeddings each


DRIVER = """
import sys, time
from ingest import ray_ingest
from ingest.pipeline import IngestOptions, ingest
from ingest.ray_ingest import RayOptions
from ingest.ray_workers import prepare_shard
from ingest.store import Store

def slow_after_the_first_shards(row, **kwargs):
    if any('/late' in entry for entry in row["entries"]):
        time.sleep(120)
    return prepare_shard(row, **kwargs)

ray_ingest.prepare_shard = slow_after_the_first_shards
options = IngestOptions(clip="tiny", progress=False, engine="ray", ray=RayOptions(workers=1, shard_videos=2))
ingest(Store(sys.argv[1]), [sys.argv[2]], options=options)
"""


@pytest.mark.timeout(150)
def test_a_rerun_after_the_driver_was_killed_makes_only_the_missing_shards(ray_cluster, tmp_path, monkeypatch, cli):
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(4):  # in input order: two shards of early clips, then two of late ones
        write_clip(folder / f"early{i}.mp4", seed=40 + i)
        write_clip(folder / f"late{i}.mp4", seed=50 + i)
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address}
    driver = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "data"), str(folder)], cwd=ROOT, env=env, start_new_session=True
    )
    staging = Staging.open(tmp_path / "data" / "staging")
    deadline = time.monotonic() + 90
    while len(staging.shards()) < 2 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver dies between shards
    driver.wait()
    staged = set(staging.shards())
    assert len(staged) == 2
    code, status = cli("--data-dir", tmp_path / "data", "status", "--json")
    assert code == 0 and status["staged"]["shards"] == 2 and status["videos"] == 0  # staged, not yet merged

    asked = tmp_path / "asked"

    def recording(row, **kwargs):
        with open(asked, "a") as out:
            out.write(row["shard"] + "\n")
        return prepare_shard(row, **kwargs)

    monkeypatch.setattr(ray_ingest, "prepare_shard", recording)
    store = Store(tmp_path / "data")
    report = ingest(
        store, [folder], options=IngestOptions(progress=False, engine="ray", ray=RayOptions(workers=1, shard_videos=2))
    ).to_json()

    made = set(asked.read_text().split())
    shards = {k: v for k, v in report["shards"].items() if not k.endswith("_seconds")}
    assert shards == {
        "location": str(tmp_path / "data" / "staging"),
        "total": 4,
        "reused": 2,
        "made": 2,
        "merged": 4,
    }
    assert made.isdisjoint(staged) and len(made) == 2  # only the missing shards were made again
    assert (report["ingested"], report["duplicates"], report["failed"]) == (8, 0, [])
    assert store.videos.count() == 8 and staging.shards() == {}


def test_an_unknown_engine_is_a_usage_error_and_a_missing_ray_says_how_to_install_it(tmp_path, cli, monkeypatch):
    code, _ = cli("--data-dir", tmp_path, "ingest", tmp_path, "--engine", "spark", "--json")
    assert code == 2
    code, _ = cli("--data-dir", tmp_path, "ingest", tmp_path, "--ray-workers", "2", "--json")  # forgot --engine ray
    assert code == 2
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    code, out = cli("--data-dir", tmp_path / "data", "ingest", tmp_path, "--engine", "ray", "--json")
    assert code == 1 and "pip install 'vidrec[distributed]'" in out["error"]


@pytest.mark.timeout(60)
def test_more_actors_than_the_cluster_holds_are_refused_before_anything_runs(ray_cluster, corpus, tmp_path, cli):
    code, out = cli(
        "--data-dir", tmp_path, "ingest", corpus, "--clip", "tiny", "--engine", "ray", "--ray-workers", "9", "--json"
    )
    assert code == 1 and "--ray-workers 3 or fewer" in out["error"]
    assert cli("--data-dir", tmp_path, "status", "--json")[1]["videos"] == 0


@pytest.mark.unit
def test_a_worker_that_cannot_read_the_catalogs_clip_weights_says_where_and_what_to_do(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    from ingest.ray_workers import ClipSource
    from models.clip import ClipError

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", hub.HF_HUB_OFFLINE)  # a worker sets it; this process gets it back

    with pytest.raises(ClipError, match="on Ray node .*missing.*storage every node reads at the same path"):
        ClipSource("tiny", str(tmp_path / "v1.safetensors"), None).load("cpu")
    (tmp_path / "v1.safetensors").write_bytes(b"other bytes")
    with pytest.raises(ClipError, match="on Ray node .*damaged"):
        ClipSource("tiny", str(tmp_path / "v1.safetensors"), "0" * 64).load("cpu")


@pytest.mark.timeout(150)
def test_the_command_starts_a_private_local_cluster_and_leaves_nothing_behind(corpus, tmp_path):
    """`vidrec ingest --engine ray` in a fresh process without RAY_ADDRESS: its own cluster, one JSON document
    on stdout, and no temp files left (Ray's socket paths must stay short, hence a short TMPDIR of our own)."""
    temp = Path(tempfile.mkdtemp(prefix="vr-", dir="/tmp"))
    try:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"TMPDIR": str(temp)}
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path / "data"), "ingest", str(corpus / "clip0.mp4")]
            + ["--clip", "tiny", "--engine", "ray", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=140,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout)
        assert report["ingested"] == 1 and report["shards"]["merged"] == 1
        assert list(temp.iterdir()) == []  # the cluster's temp dir went with it
    finally:
        shutil.rmtree(temp, ignore_errors=True)
