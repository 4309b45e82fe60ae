"""Search and similar videos through the fused FAISS index, and the index kept current and crash-safe."""

from __future__ import annotations

import random
import shutil
import string

import numpy as np
import pytest
from media import write_clip

from app.demo import load_truth
from index.api import Vidrec
from index.search import SearchError, terms
from index.vector_index import TYPES, FaissIndex, IndexConfig, recall_at_k
from ingest.store import Store


@pytest.fixture
def tuned_copy(tuned_catalog, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(tuned_catalog[0], target)
    return target


def test_category_queries_find_their_category(tuned_catalog, tiny_world):
    truth = load_truth(tiny_world.world_dir)
    api = Vidrec(tuned_catalog[0])
    hits = []
    for category in truth.categories:
        size = sum(1 for c in truth.video_category.values() if c == category)
        for query in truth.queries["en"][category]:
            hits += [truth.video_category[i["video_id"]] == category for i in api.search(query, size)]
    assert np.mean(hits) > 0.4  # chance is 1/12


def test_an_untitled_video_is_found_through_its_frames(tuned_catalog, tiny_world):
    truth = load_truth(tiny_world.world_dir)
    store = Store(tuned_catalog[0], create=False)
    api = Vidrec(tuned_catalog[0])
    untitled = [r for r in store.videos.all() if not r.description and not r.tags]
    assert untitled, "the tiny world has videos whose text says nothing"
    for video in untitled:
        category = truth.video_category[video.video_id]
        rank = {c: [i["video_id"] for i in api.search(c, 36)].index(video.video_id) for c in truth.categories}
        assert rank[category] <= 12
        assert rank[category] < np.median([r for c, r in rank.items() if c != category])


def test_similar_videos_share_a_category_and_leave_the_video_out(tuned_catalog, tiny_world):
    truth = load_truth(tiny_world.world_dir)
    api = Vidrec(tuned_catalog[0])
    same = []
    for video_id, category in list(truth.video_category.items()):
        items = api.similar(video_id, 2)
        assert len(items) == 2 and video_id not in [i["video_id"] for i in items]
        same += [truth.video_category[i["video_id"]] == category for i in items]
    assert np.mean(same) > 0.5
    assert len(api.similar(video_id, 10_000_000)) == tiny_world.videos - 1  # k past the catalog: all of it


def test_bad_queries_get_clear_errors(tuned_catalog, cli):
    data = tuned_catalog[0]
    for args, message in [(("similar", "no-such-video"), "unknown video id"), (("search", "   "), "empty query")]:
        code, out = cli("--data-dir", data, *args, "--json")
        assert code == 1 and message in out["error"]
    code, out = cli("--data-dir", data, "search", "golf", "-k", "0", "--json")
    assert code == 2
    code, out = cli("--data-dir", data, "search", "高尔夫球场挥杆", "-k", "3", "--json")
    assert code == 0 and len(out["items"]) == 3
    assert {"video_id", "title", "similarity"} <= set(out["items"][0])


def test_weak_matches_are_marked_against_nonsense_and_the_catalog_words(tuned_catalog, tiny_world, cli):
    data = tuned_catalog[0]
    code, out = cli("--data-dir", data, "search", "zzzzqqq", "-k", "5", "--json")
    assert code == 0 and len(out["items"]) == 5 and all(i["weak"] for i in out["items"])
    code, out = cli("--data-dir", data, "search", "football", "-k", "5", "--json")
    assert code == 0 and not out["items"][0]["weak"]
    assert {"video_id", "title", "similarity", "weak"} == set(out["items"][0])
    api = Vidrec(data)
    rng = random.Random(1)  # not the calibration's own strings
    nonsense = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 12))) for _ in range(50)]
    assert sum(all(i["weak"] for i in api.search(q, 15)) for q in nonsense) >= 45  # the bar: 99% of nonsense
    assert not any(all(i["weak"] for i in api.search(c, 15)) for c in load_truth(tiny_world.world_dir).categories)
    assert all(i["weak"] for i in api.search("the zzzzqqq", 15))  # a stop word found in titles is no evidence


def test_the_words_a_weak_match_is_judged_by():
    assert terms("The Football match, with 足球比赛! VID_0012 a 4K") == {
        "football", "match", "足球", "球比", "比赛", "vid", "0012", "4k"
    }  # fmt: skip
    assert terms("钢") == {"钢"} and terms("  ") == set()


def test_similar_to_an_uploaded_image_or_video(tuned_catalog, tiny_world, tmp_path):
    from PIL import Image

    from ingest.store import Store as _Store

    api = Vidrec(tuned_catalog[0])
    video_id = next(iter(load_truth(tiny_world.world_dir).video_category))
    path = tiny_world.world_dir / "videos" / f"{video_id}.mp4"
    assert api.similar_to_file(path, 1)[0]["video_id"] == video_id  # the same clip finds itself first
    frame = _Store(tuned_catalog[0], create=False).videos.thumbnails([video_id])[video_id]
    (tmp_path / "frame.jpg").write_bytes(frame)
    assert len(api.similar_to_file(tmp_path / "frame.jpg", 5)) == 5
    (tmp_path / "junk.bin").write_bytes(b"nothing here")
    with pytest.raises(SearchError, match="neither an image nor a video"):
        api.similar_to_file(tmp_path / "junk.bin")
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    assert len(api.similar_to_file(tmp_path / "tiny.png", 3)) == 3


def test_ingest_updates_the_index_in_place_and_remove_follows(tuned_copy, tmp_path, cli):
    api = Vidrec(tuned_copy)
    first = api.refresh_indexes()[0]
    assert first["size"] == 36
    clip = write_clip(tmp_path / "new clip.mp4", seed=5)
    code, out = cli("--data-dir", tuned_copy, "ingest", clip, "--json")
    assert code == 0 and out["ingested"] == 1
    api = Vidrec(tuned_copy)
    info = api.refresh_indexes()[0]
    assert info["size"] == 37 and info["action"] == "loaded"  # the CLI's ingest already brought it up to date
    assert api.search("new clip", 37)  # the new video is searchable
    new_id = Store(tuned_copy, create=False).videos.video_ids()[-1]
    assert new_id in [i["video_id"] for i in api.similar(new_id, 36) + api.search("new clip", 37)]
    code, out = cli("--data-dir", tuned_copy, "remove", new_id, "--json")
    api = Vidrec(tuned_copy)
    assert api.refresh_indexes()[0]["size"] == 36
    assert new_id not in [i["video_id"] for i in api.search("new clip", 36)]


def test_a_damaged_or_foreign_index_file_is_rebuilt(tuned_copy, tiny_catalog):
    api = Vidrec(tuned_copy)
    api.refresh_indexes()
    folder = api.store.paths.indexes
    data = api.store.paths.index_files("fused").data
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # truncated on disk
    info = Vidrec(tuned_copy).refresh_indexes()[0]
    assert info["action"] == "built" and info["size"] == 36
    assert len(Vidrec(tuned_copy).search("cooking", 5)) == 5
    # an index from another catalog (the untuned one: another CLIP version) is not used
    foreign = tuned_copy.parent / "foreign"
    shutil.copytree(tiny_catalog, foreign)
    shutil.rmtree(foreign / "indexes", ignore_errors=True)
    shutil.copytree(folder, foreign / "indexes")
    info = Vidrec(foreign).refresh_indexes()[0]
    assert info["action"] == "built" and info["stamp"]["clip_version"] == 1


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim)).astype(np.float32)
    x = centres[rng.integers(0, 50, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", TYPES)
def test_each_index_type_is_measured_against_exact_search(kind):
    vectors = _clustered(12_000, 32)
    ids = np.arange(len(vectors), dtype=np.int64) * 7 + 3
    index = FaissIndex.build("t", vectors, ids, IndexConfig(force_type=kind, sample_queries=200))
    info = index.info
    assert info.type == kind and info.size == len(vectors)
    queries = vectors[:100]
    _, found = index.search(queries, 10)
    exact = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    measured = recall_at_k(found, exact)
    assert abs(measured - info.recall) < 0.1  # the reported recall is what a user gets
    assert info.recall >= (0.9 if kind != "ivfpq" else 0.3)  # PQ trades recall for 16x less memory


def test_an_unreachable_recall_target_does_not_search_every_list():
    """PQ codes cap recall below the target: the tuning settles on the cheapest setting that is within
    the plateau of the best, not on probing every list for the same recall."""
    vectors = _clustered(12_000, 32)
    ids = np.arange(len(vectors), dtype=np.int64)
    config = IndexConfig(force_type="ivfpq", sample_queries=200, target_recall=1.01)
    info = FaissIndex.build("t", vectors, ids, config).info
    strict = FaissIndex.build(
        "t", vectors, ids, IndexConfig(force_type="ivfpq", sample_queries=200, target_recall=1.01, recall_plateau=0.0)
    ).info
    assert info.search["nprobe"] <= strict.search["nprobe"]
    assert info.recall >= strict.recall - config.recall_plateau
    assert info.search["nprobe"] < info.params["nlist"]
