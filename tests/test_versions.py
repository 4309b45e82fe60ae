"""Choosing and rolling back models and CLIP versions: a pinned model serves whatever is newer, `--model` picks
one for a call, `clip use` goes back to the previous CLIP (the same search results as before tuning) and
forward again, models follow the CLIP version, and `clip prune` deletes what no version in use needs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from model_copies import add_model_copy, flip

from index.api import Vidrec
from ingest.learning.checkpoint import pin_model, serving_model_id
from ingest.store import Store

RECOMMEND = ("recommend", "--user", "u0001", "--hour", "8", "--weekday", "2", "--json")


@pytest.fixture
def trained_copy(trained_catalog, tmp_path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(trained_catalog[0], target)
    return target


@pytest.fixture
def tuned_copy(tuned_catalog, tmp_path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(tuned_catalog[0], target)
    return target


def items(out: dict) -> list[tuple[str, float]]:
    return [(i["video_id"], i["similarity"]) for i in out["items"]]


def same_results(a: dict, b: dict) -> bool:
    return [v for v, _ in items(a)] == [v for v, _ in items(b)] and all(
        abs(x - y) < 1e-3 for (_, x), (_, y) in zip(items(a), items(b))
    )


def test_a_pinned_model_serves_until_unpinned_and_model_picks_one_for_a_call(trained_copy, tiny_world, cli):
    older = add_model_copy(trained_copy, "newer")
    reader = Vidrec(trained_copy, read_only=True)  # a long-running reader, as the web UI's
    context = reader.context("u0001", 8, 2)
    assert reader.recommend("u0001", context)["model_id"] == "newer"  # the newest serves
    assert serving_model_id(Store(trained_copy, read_only=True)) == "newer"

    code, out = cli("--data-dir", trained_copy, "models", "use", older, "--json")
    assert code == 0 and out == {"pinned": older, "serving": older}
    assert reader.recommend("u0001", context)["model_id"] == older  # picked up on the next request
    code, out = cli("--data-dir", trained_copy, *RECOMMEND)
    assert code == 0 and out["model_id"] == older and out["warnings"] == [] and out["items"]
    code, out = cli("--data-dir", trained_copy, *RECOMMEND, "--model", "newer")
    assert code == 0 and out["model_id"] == "newer"
    code, out = cli("--data-dir", trained_copy, "models", "--json")
    assert code == 0 and [(m["model_id"], m["pinned"], m["serving"], m["usable"]) for m in out["models"]] == [
        ("newer", False, False, True),
        (older, True, True, True),
    ]
    assert "auc" in out["models"][0]["metrics"]["click"]

    scored = trained_copy / "scored.csv"
    args = ("--data-dir", trained_copy, "score", "--interactions", tiny_world.interactions, "--out", scored)
    code, out = cli(*args, "--model", "newer", "--json")
    assert code == 0 and out["model_id"] == "newer"
    code, out = cli("--data-dir", trained_copy, "eval", "--ablations", "--model", "newer", "--json")
    assert code == 2 and "--model" in out["error"]

    code, out = cli("--data-dir", trained_copy, "models", "use", "no-such-model", "--json")
    assert code == 1 and "no-such-model" in out["error"]
    code, out = cli("--data-dir", trained_copy, *RECOMMEND, "--model", "no-such-model")
    assert code == 1 and "no-such-model" in out["error"]

    flip(trained_copy / "models" / older / "weights.safetensors")  # the pinned model is damaged: the pin is ignored
    code, out = cli("--data-dir", trained_copy, *RECOMMEND)
    assert code == 0 and out["model_id"] == "newer"
    assert any("pin is ignored" in w for w in out["warnings"]) and any("damaged" in w for w in out["warnings"])
    code, out = cli("--data-dir", trained_copy, "models", "--json")
    listed = {m["model_id"]: m for m in out["models"]}
    assert not listed[older]["usable"] and "damaged" in listed[older]["reason"] and listed["newer"]["serving"]

    code, out = cli("--data-dir", trained_copy, "models", "use", "--newest", "--json")
    assert code == 0 and out == {"pinned": None, "serving": "newer"}
    code, out = cli("--data-dir", trained_copy, "models", "use", "newer", "--newest", "--json")
    assert code == 2


def test_models_follow_the_clip_version(trained_copy, cli):
    served = add_model_copy(trained_copy, "on-clip-1", clip_version=1)  # as if trained before tune-clip
    code, out = cli("--data-dir", trained_copy, "models", "use", "on-clip-1", "--json")
    assert code == 1 and "CLIP version 1" in out["error"]
    assert cli("--data-dir", trained_copy, "models", "use", served, "--json")[0] == 0

    code, out = cli("--data-dir", trained_copy, "clip", "use", "1", "--json")
    assert code == 0 and out["clip"]["version"] == 1 and out["previous"] == 2 and out["model"] == "on-clip-1"
    code, out = cli("--data-dir", trained_copy, *RECOMMEND)
    assert code == 0 and out["model_id"] == "on-clip-1"
    assert any(served in w and "pin is ignored" in w for w in out["warnings"])
    code, out = cli("--data-dir", trained_copy, *RECOMMEND, "--model", served)
    assert code == 1 and "retrain" in out["error"]

    code, out = cli("--data-dir", trained_copy, "clip", "use", "2", "--json")
    assert code == 0 and out["model"] == served and out["embedded"] == 0
    code, out = cli("--data-dir", trained_copy, *RECOMMEND)
    assert code == 0 and out["model_id"] == served and out["warnings"] == []


def test_clip_use_goes_back_to_the_search_results_before_tuning_and_forward_again(
    tiny_catalog, tuned_catalog, tuned_copy, cli
):
    query = ("search", "cooking in the kitchen", "-k", "8", "--json")
    code, untuned = cli("--data-dir", tiny_catalog, *query)
    assert code == 0 and untuned["items"]
    code, tuned = cli("--data-dir", tuned_catalog[0], *query)
    assert code == 0 and not same_results(untuned, tuned)

    code, out = cli("--data-dir", tuned_copy, "clip", "list", "--json")
    assert code == 0
    assert [(v["version"], v["current"], v["videos"], v["tuned_from"]) for v in out["versions"]] == [
        (1, False, 36, None),
        (2, True, 36, 1),
    ]
    assert out["versions"][1]["after"]["recall_at_5"] >= 0 and out["versions"][0]["after"] is None

    store = Store(tuned_copy)
    lacking = store.videos.all()[0]
    with store.transaction():  # as if ingested after tuning: the video has only the current version's embeddings
        store.db.execute("DELETE FROM embeddings WHERE video = ? AND version = 1", (lacking.id,))
    store.close()

    code, out = cli("--data-dir", tuned_copy, "clip", "use", "1", "--json")
    assert code == 0 and out["clip"] == {"version": 1, "spec": "tiny", "tuned": False} and out["embedded"] == 1
    assert out["model"] is None  # no model yet
    code, back = cli("--data-dir", tuned_copy, *query)
    assert code == 0 and same_results(back, untuned), (items(back), items(untuned))

    code, out = cli("--data-dir", tuned_copy, "clip", "use", "2", "--json")
    assert code == 0 and out["clip"]["version"] == 2 and out["embedded"] == 0
    code, forward = cli("--data-dir", tuned_copy, *query)
    assert code == 0 and same_results(forward, tuned)
    code, out = cli("--data-dir", tuned_copy, "clip", "use", "7", "--json")
    assert code == 1 and "no CLIP version 7" in out["error"]


def test_clip_prune_deletes_the_versions_not_in_use(tuned_copy, cli):
    store = Store(tuned_copy)
    store.models.add("old", 1, "mmoe", "models/old", {}, {})  # a model trained on version 1 keeps it
    store.close()
    code, out = cli("--data-dir", tuned_copy, "clip", "prune", "--json")
    assert code == 0 and out == {"pruned": [], "kept": [1, 2], "current": 2}

    store = Store(tuned_copy)
    store.models.remove("old")
    assert store.embeddings.videos_per_version() == {1: 36, 2: 36}
    store.close()
    code, out = cli("--data-dir", tuned_copy, "clip", "prune", "--json")
    assert code == 0 and out == {"pruned": [1], "kept": [2], "current": 2}
    store = Store(tuned_copy, read_only=True)
    assert store.embeddings.videos_per_version() == {2: 36}
    assert not (tuned_copy / "clip" / "v1.safetensors").exists() and (tuned_copy / "clip" / "v2.safetensors").is_file()
    code, out = cli("--data-dir", tuned_copy, "clip", "list", "--json")
    assert [(v["version"], v["pruned"], v["videos"]) for v in out["versions"]] == [(1, True, 0), (2, False, 36)]
    code, out = cli("--data-dir", tuned_copy, "clip", "use", "1", "--json")
    assert code == 1 and "pruned" in out["error"]
    code, out = cli("--data-dir", tuned_copy, "search", "cooking", "--json")
    assert code == 0 and out["items"]


def test_pin_model_is_a_job_refusing_what_cannot_serve(trained_copy):
    store = Store(trained_copy)
    (model,) = store.models.all()
    assert pin_model(store, model.model_id) == {"pinned": model.model_id, "serving": model.model_id}
    assert store.models.pinned() == model.model_id
    with pytest.raises(Exception, match="read-only"):
        pin_model(Store(trained_copy, read_only=True), None)
