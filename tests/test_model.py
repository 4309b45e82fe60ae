"""The multi-task model: every architecture and balancing method learns, sample spaces and history are
right, checkpoints round-trip and are refused when stale or mismatched, and the commands keep their contract."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from ingest.interactions import import_interactions
from ingest.learning import DEFAULT_ARCH, ModelError, TrainOptions, load_model, save_model
from ingest.learning.evaluation import ablation_table, popularity_in_context
from ingest.learning.features import build_features, click_histories
from ingest.learning.ranking import ranking_eval
from ingest.learning.split import split_categories
from ingest.learning.training import train_model
from ingest.store import Store
from models.context import Context
from models.metrics import auc
from models.trainer import task_losses

EPOCHS = 12


@pytest.fixture(scope="session")
def model_data(tuned_catalog, tmp_path_factory):
    """A private copy of the tuned tiny catalog that the session's models are trained on and saved into."""
    data_dir = tmp_path_factory.mktemp("model") / "data"
    shutil.copytree(tuned_catalog[0], data_dir)
    return data_dir


@pytest.fixture(scope="session")
def features(model_data):
    return build_features(Store(model_data))


@pytest.fixture(scope="session")
def trained(model_data, features):
    """trained(arch, balance, pcgrad): a model trained once per session for each setting asked for."""
    cache = {}

    def get(arch=DEFAULT_ARCH, balance="uncertainty", pcgrad=False):
        key = (arch, balance, pcgrad)
        if key not in cache:
            options = TrainOptions(arch=arch, balance=balance, pcgrad=pcgrad, epochs=EPOCHS, progress=False)
            cache[key] = train_model(Store(model_data), options, features=features)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def saved(model_data, trained):
    """The default model, saved into the store, and its model_id."""
    model = trained()
    return model, save_model(Store(model_data), model)


def popularity_auc(model) -> float:
    split = model.split
    y = model.features.impressions.click[torch.from_numpy(split.test)].numpy()
    return auc(y, popularity_in_context(model.features, split, split.test))


@pytest.mark.parametrize("arch", ["single-task", "shared-bottom", "mmoe", "ple"])
def test_every_architecture_beats_popularity_in_context(trained, arch):
    model = trained(arch)
    assert model.metrics["click"]["auc"] > popularity_auc(model) + 0.03
    assert set(model.metrics) >= {"click", "like", "watch", "category", "context", "retrieval", "ranking"}
    if arch == "single-task":
        assert set(model.nets) == {"click", "like", "watch", "category", "context", "retrieval"}


@pytest.mark.parametrize(
    "balance,pcgrad", [("fixed", False), ("gradnorm", False), ("dwa", False), ("uncertainty", True)]
)
def test_every_balancing_method_beats_popularity_in_context(trained, balance, pcgrad):
    model = trained("shared-bottom", balance, pcgrad)  # the cheapest network: balancing is the same code for all
    assert model.metrics["click"]["auc"] > popularity_auc(model) + 0.03
    weights = model.curves["all"][-1]["task_weights"]
    assert set(weights) == {"click", "like", "watch", "category", "context", "retrieval"}
    if balance != "fixed":
        assert len({round(w, 6) for w in weights.values()}) > 1  # the method did move the weights


def test_training_is_reproducible(model_data, features):
    runs = [
        train_model(
            Store(model_data), TrainOptions(epochs=2, seed=3, progress=False, diagnostics=False), features=features
        )
        for _ in range(2)
    ]
    assert runs[0].metrics == runs[1].metrics
    first, second = (r.nets["all"].state_dict() for r in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_like_and_watch_learn_only_from_clicked_rows(trained, features):
    net = trained().nets["all"]
    net.eval()
    batch = features.impressions.batch(torch.arange(400))
    clicked = batch["click"] > 0.5
    assert 0 < clicked.sum() < len(clicked)
    torch.manual_seed(0)
    before = task_losses(net, batch, None)
    tampered = dict(batch)
    tampered["like"] = torch.where(clicked, batch["like"], torch.ones_like(batch["like"]))
    tampered["watch"] = torch.where(clicked, batch["watch"], torch.full_like(batch["watch"], 0.9))
    torch.manual_seed(0)
    after = task_losses(net, tampered, None)
    for task in ("like", "watch", "click"):
        assert torch.equal(before[task], after[task]), task
    tampered["like"] = torch.where(clicked, 1 - torch.nan_to_num(batch["like"]), batch["like"])
    torch.manual_seed(0)
    assert not torch.equal(task_losses(net, tampered, None)["like"], before["like"])


def test_history_holds_only_strictly_earlier_clicks():
    users = np.array([0, 0, 0, 0, 1])
    ts = np.array([10, 20, 20, 30, 15])
    videos = np.array([5, 6, 7, 8, 9])
    clicked = np.array([1, 1, 1, 0, 1])
    history = click_histories(users, ts, videos, clicked, length=3)
    assert history.tolist() == [[-1, -1, -1], [-1, -1, 5], [-1, -1, 5], [5, 6, 7], [-1, -1, -1]]


def test_a_planted_future_click_is_not_seen_before_it_happens(catalog_copy, tmp_path):
    store = Store(catalog_copy)
    before = build_features(store)
    user, planted = before.user_ids[0], int(before.ts.max()) + 3600
    video = before.catalog.video_ids[0]
    log = tmp_path / "future.csv"
    log.write_text(
        "user_id,video_id,timestamp,device,region,clicked,liked,watch_seconds\n"
        f"{user},{video},{planted},mobile,us,1,1,3.0\n"
        f"{user},{before.catalog.video_ids[1]},{planted + 60},mobile,us,0,,\n",
        encoding="utf-8",
    )
    assert import_interactions(store, log).imported == 2
    after = build_features(store)
    earlier = torch.from_numpy(np.flatnonzero(after.ts < planted))
    assert torch.equal(after.impressions.history[earlier], before.impressions.history)  # nothing earlier sees it
    mine = before.impressions.group.numpy() == 0
    clicks = before.impressions.video.numpy()[mine & (before.impressions.click.numpy() > 0)].tolist()
    at_planted = after.impressions.history[int(np.flatnonzero(after.ts == planted)[0])].tolist()
    assert [v for v in at_planted if v >= 0] == clicks[-len(at_planted) :]  # not even its own row sees it
    later = after.impressions.history[int(np.flatnonzero(after.ts == planted + 60)[0])].tolist()
    assert later[-1] == 0  # catalog index of the planted video: seen once it is in the past


def test_a_category_with_one_labelled_video_keeps_it_for_training():
    category = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, -1, 2, 2])
    train, val, test = split_categories(category, 0.15, seed=0)
    assert 7 in train.tolist() and 8 not in train.tolist() + val.tolist() + test.tolist()
    assert len(val) == len(test) == 1 and set(train.tolist()) | set(val.tolist()) | set(test.tolist()) == {
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        9,
        10,
    }


def test_checkpoint_round_trip_scores_identically(saved, model_data):
    model, model_id = saved
    loaded = load_model(Store(model_data))
    assert loaded.model_id == model_id and loaded.clip_version == 2 and loaded.metrics["click"]["auc"] is not None
    feats = model.features
    rows = torch.from_numpy(model.split.test[:50])
    batch = feats.impressions.batch(rows)
    net = model.nets["all"]
    net.eval()
    with torch.no_grad():
        expected = net.probabilities(net(batch))
    for i in range(0, 50, 10):  # one request per row: the same user, history, video and context
        context = Context(
            int(batch["hour"][i]),
            int(batch["weekday"][i]),
            feats.vocabulary.devices[int(batch["device"][i]) - 1],
            feats.vocabulary.regions[int(batch["region"][i]) - 1],
        )
        history = [feats.catalog.video_ids[v] for v in batch["history"][i].tolist() if v >= 0]
        user = feats.user_ids[int(batch["group"][i])]
        scores = loaded.score(user, [feats.catalog.video_ids[int(batch["video"][i])]], context, history=history)
        for task in ("click", "like", "watch"):
            assert scores[task][0] == pytest.approx(float(expected[task][i]), abs=1e-6)


def test_loaded_model_answers_the_recommender(saved, model_data):
    loaded = load_model(Store(model_data))
    ids, video_ids, vectors = loaded.video_vectors()
    assert len(ids) == len(video_ids) == vectors.shape[0] == 36 and ids.dtype == np.int64
    context = Context(20, 5, "tv", "eu")
    query = loaded.user_vector("u0001", context)
    assert query.shape == (vectors.shape[1],) and abs(np.linalg.norm(query) - 1) < 1e-5
    scores = loaded.score("u0001", video_ids, context)
    assert all(scores[t].shape == (36,) for t in ("click", "like", "watch"))
    assert ((scores["click"] > 0) & (scores["click"] < 1)).all()
    morning = loaded.score("u0001", video_ids, Context(7, 1, "mobile", "eu"))
    assert not np.allclose(morning["click"], scores["click"])  # the context changes the ranking inputs
    cold = loaded.score("nobody-ever", video_ids[:5], context)  # cold start: no error
    assert cold["click"].shape == (5,)
    session = loaded.score("u0001", video_ids, context, history=video_ids[:3])
    assert not np.allclose(session["click"], scores["click"])
    names, probabilities = loaded.category_probabilities(video_ids[:4])
    assert probabilities.shape == (4, len(names)) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    with pytest.raises(ModelError, match="not-a-video"):
        loaded.score("u0001", ["not-a-video"], context)


def test_a_model_of_another_clip_version_is_refused(saved, model_data, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(model_data, data_dir)
    store = Store(data_dir)
    store.set_meta("clip_version", "1")  # as if the catalog had been re-embedded since training
    with pytest.raises(ModelError, match="CLIP version.*retrain"):
        load_model(store)


def test_model_files_that_are_not_the_ones_saved_are_refused(saved, model_data, tmp_path):
    _, model_id = saved
    data_dir = tmp_path / "data"
    shutil.copytree(model_data, data_dir)
    weights = data_dir / "models" / model_id / "weights.safetensors"
    state = load_file(weights)  # another net's weights in its place: the same format, other shapes
    save_file({k: v[..., :1].contiguous() if v.ndim else v for k, v in state.items()}, weights)
    with pytest.raises(ModelError, match=f"{model_id}'s weights are damaged.*retrain"):
        load_model(Store(data_dir))
    weights.unlink()
    with pytest.raises(ModelError, match="cannot be read.*retrain"):
        load_model(Store(data_dir))


def test_nan_watch_seconds_are_masked_not_learnt(features):
    watch = features.impressions.watch
    clicked = features.impressions.click > 0.5
    assert torch.isnan(watch[~clicked]).all()  # no click: no watch label
    known = watch[clicked & ~torch.isnan(watch)]
    assert len(known) and known.min() >= 0 and known.max() <= 1


def test_train_eval_score_commands(cli, saved, model_data, tmp_path, tiny_world):
    code, out = cli("--data-dir", model_data, "train", "--epochs", "2", "--seed", "1", "--json")
    assert code == 0, out
    assert out["clip"] == 2 and out["model_id"] and out["arch"] == DEFAULT_ARCH
    assert {"auc", "gauc", "logloss"} <= set(out["metrics"]["click"]) and "mae" in out["metrics"]["watch"]
    assert {"accuracy", "macro_f1"} <= set(out["metrics"]["category"]) and "accuracy" in out["metrics"]["context"]
    assert {"ndcg_at_10", "recall_at_10"} <= set(out["metrics"]["ranking"])
    assert out["diagnostics"]["all"]["importance"]["click"]
    folder = model_data / "models" / out["model_id"]
    assert {p.name for p in folder.iterdir()} >= {"weights.safetensors", "config.json", "metrics.json", "curves.json"}

    code, out = cli("--data-dir", model_data, "eval", "--json")
    assert code == 0 and {"name", "task", "metric", "value", "delta_vs_single_task"} <= set(out["rows"][0])
    assert any(r["name"] == "popularity in context" for r in out["rows"])
    assert not any(r["name"].startswith("oracle") for r in out["rows"])  # no demo world here, no oracle

    demo = tmp_path / "demo"  # a data dir that holds its demo world (as `vidrec demo` leaves it): the oracle shows
    shutil.copytree(model_data, demo)
    shutil.copytree(tiny_world.world_dir, Store(demo).paths.demo_world)
    code, out = cli("--data-dir", demo, "eval", "--json")
    oracle = {
        r["metric"]: r["value"] for r in out["rows"] if r["name"] == "oracle (demo truth)" and r["task"] == "click"
    }
    assert code == 0 and oracle["auc"] > 0.5
    ratio = [r["value"] for r in out["rows"] if r["metric"] == "auc_vs_oracle"]
    assert ratio and 0 < ratio[0] < 1.5

    log = tmp_path / "log.csv"
    log.write_text(
        "user_id,video_id,timestamp,device,region\n"
        "u0001,v0001,2026-10-01T20:00:00+01:00,tv,eu\n"
        "u0001,no-such-video,2026-10-01T20:00:00+01:00,tv,eu\n"
        "someone-new,v0002,1790000000,,\n",
        encoding="utf-8",
    )
    out_file = tmp_path / "scored.csv"
    code, out = cli("--data-dir", model_data, "score", "--interactions", log, "--out", out_file, "--json")
    assert code == 0 and out["scored"] == 2 and out["unknown"] == 1
    with open(out_file, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["user_id", "video_id", "timestamp", "pred_click", "pred_like", "pred_watch", "pred_category"]
    assert [r[:2] for r in rows[1:]] == [["u0001", "v0001"], ["u0001", "no-such-video"], ["someone-new", "v0002"]]
    assert rows[2][3:] == ["", "", "", ""]
    for r in (rows[1], rows[3]):
        assert all(0 <= float(x) <= 1 for x in r[3:6]) and r[6]


def test_eval_ablations_lists_every_variant_against_single_task(cli, model_data):
    code, out = cli("--data-dir", model_data, "eval", "--ablations", "--epochs", "1", "--json")
    assert code == 0, out
    names = {r["name"] for r in out["rows"]}
    assert {
        "single-task",
        "shared-bottom",
        "mmoe",
        "ple",
        f"{DEFAULT_ARCH} without context",
        f"{DEFAULT_ARCH} video only",
        f"{DEFAULT_ARCH} text only",
        "popularity in context",
    } <= names
    mmoe_click = next(r for r in out["rows"] if r["name"] == "mmoe" and r["task"] == "click" and r["metric"] == "auc")
    single = next(
        r for r in out["rows"] if r["name"] == "single-task" and r["task"] == "click" and r["metric"] == "auc"
    )
    assert mmoe_click["delta_vs_single_task"] == pytest.approx(mmoe_click["value"] - single["value"])
    saved_rows = json.loads((model_data / "models" / "ablations.json").read_text())["rows"]
    assert len(saved_rows) == len(out["rows"])  # kept for the UI's Model page


def test_ranking_a_large_catalog_samples_it_and_keeps_the_clicked_video(trained):
    """Above `max_videos` the held-out clicks are ranked among a sample of the catalog that keeps each
    clicked video: with fewer competitors a click can only rank as high or higher."""
    model = trained()
    full = ranking_eval(model.nets, model.features, model.split)["ranking"]
    sampled = ranking_eval(model.nets, model.features, model.split, max_videos=8)["ranking"]
    assert sampled["n"] == full["n"] > 0
    assert full["recall_at_10"] <= sampled["recall_at_10"] <= 1.0


def test_ablation_variants_may_choose_their_own_balancing(model_data):
    """A comparison of balancing methods (bench/bench_model.py) is a list of extra variants that set
    `balance` themselves, over the table's default."""
    rows = ablation_table(
        Store(model_data),
        epochs=1,
        progress=False,
        only=["shared-bottom dwa"],
        extra=[("shared-bottom dwa", {"arch": "shared-bottom", "balance": "dwa"})],
    )
    assert any(r["name"] == "shared-bottom dwa" and r["task"] == "click" and r["metric"] == "auc" for r in rows)


def test_nothing_to_learn_and_no_model_yet_are_clear_failures(cli, catalog_copy, tmp_path):
    code, out = cli(
        "--data-dir", catalog_copy, "score", "--interactions", tmp_path / "x.csv", "--out", tmp_path / "y.csv", "--json"
    )
    assert code == 1 and out["error"] == "no trained model: run `vidrec train`"
    store = Store(catalog_copy)
    store.db.execute("UPDATE interactions SET clicked = 0, liked = NULL, watch_seconds = NULL")
    code, out = cli("--data-dir", catalog_copy, "train", "--json")
    assert code == 1 and "nothing to learn" in out["error"] and "click" in out["error"]
    store.db.execute("DELETE FROM interactions")
    code, out = cli("--data-dir", catalog_copy, "train", "--json")
    assert code == 1 and "no interactions" in out["error"]
    code, out = cli("--data-dir", tmp_path / "nothing", "train", "--json")
    assert code == 1 and "error" in out
