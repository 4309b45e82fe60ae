"""tune-clip: the catalog's CLIP learns the catalog, survives a reload, and its re-embedding resumes."""

from __future__ import annotations

import numpy as np
import pytest
from media import write_clip

from ingest.catalog_clip import load_catalog_version
from ingest.store import Store
from ingest.store.embeddings import Embeddings
from ingest.tune import TuneError, TuneOptions, tune_catalog_clip


def test_tuning_improves_held_out_retrieval(tuned_catalog):
    data_dir, report = tuned_catalog
    before, after = report["before"], report["after"]
    assert report["replaced"] and report["clip"] == {"version": 2, "spec": "tiny", "tuned": True}
    assert after["recall_at_5"] + after["category_p10"] > before["recall_at_5"] + before["category_p10"]
    assert after["category_p10"] >= 0.5
    losses = [h["loss"] for h in report["history"]]
    assert losses[-1] < losses[0]


def test_the_tuned_clip_survives_a_reload_and_made_the_catalog_embeddings(tuned_catalog):
    data_dir, _ = tuned_catalog
    store = Store(data_dir, create=False)
    assert store.clips.current().version == 2 and (data_dir / "clip" / "v2.safetensors").is_file()
    assert store.embeddings.videos_per_version() == {1: 36, 2: 36}  # switched whole, version 1 kept for `clip use`
    clip = load_catalog_version(store, 2)
    _, video_ids, stored = store.embeddings.matrix("title_emb")
    titles = [store.videos.get(v).title for v in video_ids]
    np.testing.assert_allclose(clip.encode_texts(titles), stored, atol=1e-5)
    untuned = load_catalog_version(store, 1)
    assert not np.allclose(untuned.encode_texts(titles), stored, atol=1e-3)


def test_an_interrupted_re_embedding_resumes(catalog_copy, monkeypatch):
    store = Store(catalog_copy)
    calls = {"n": 0}
    original = Embeddings.put

    def dying_put(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 20:  # batches of 8: two committed, the third dies half-way
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Embeddings, "put", dying_put)
    monkeypatch.setattr("ingest.tune.WRITE_BATCH", 8)
    with pytest.raises(KeyboardInterrupt):
        tune_catalog_clip(store, TuneOptions(epochs=2, force=True, progress=False))
    monkeypatch.setattr(Embeddings, "put", original)
    assert store.clips.current().version == 1  # readers still see version 1, whole
    written = store.db.execute("SELECT COUNT(*) FROM embeddings WHERE version = 2").fetchone()[0]
    assert written == 16
    report = tune_catalog_clip(store, TuneOptions(progress=False))
    assert report["resumed"] and store.clips.current().version == 2
    assert store.db.execute("SELECT COUNT(*) FROM embeddings WHERE version = 2").fetchone()[0] == 36
    assert store.db.execute("SELECT COUNT(*) FROM embeddings WHERE version != 2").fetchone()[0] == 36  # v1 kept


def test_a_catalog_without_two_titled_videos_is_refused(tmp_path, cli):
    from ingest.pipeline import IngestOptions, ingest

    manifest = tmp_path / "m.csv"
    write_clip(tmp_path / "a.mp4", seed=1)
    write_clip(tmp_path / "b.mp4", seed=2)
    manifest.write_text("path,title\na.mp4,\nb.mp4,only one with a title\n", encoding="utf-8")
    ingest(Store(tmp_path / "data"), manifest=manifest, options=IngestOptions(clip="tiny", progress=False))
    code, out = cli("--data-dir", tmp_path / "data", "tune-clip", "--json")
    assert code == 1 and "at least two videos with a title" in out["error"]
    with pytest.raises(TuneError, match="empty"):
        tune_catalog_clip(Store(tmp_path / "empty"), TuneOptions(progress=False))
