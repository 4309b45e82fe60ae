"""The click graph (LightGCN): co-clicks alone carry "people who watch what you watch also watch", training is
deterministic, a trained model keeps its graph and serves it, and a damaged, missing or older graph file is
handled like the weights (one line naming the model; an older model takes over; no graph before graphs)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from model_copies import add_model_copy, flip
from safetensors import safe_open
from safetensors.torch import save_file

from index.api import Vidrec
from ingest.forget import forget_user
from ingest.learning import GraphEmbeddings, ModelError, load_model, train_and_save
from ingest.store import Store
from models.context import Context
from models.graph import GraphConfig, train_graph

A, B = 0, 1  # co-clicked by the same users, and by nobody else
THEIRS = 15  # a video only the other community clicks


def planted_graph() -> tuple[np.ndarray, np.ndarray, int, int]:
    """40 users in two communities of 20 over 20 videos (0-9 the first's, 10-19 the second's); users 0-9 click
    both A and B beside three other videos of theirs, the rest of the first community neither; user 40 clicks A
    only. Videos carry no content here: whatever links A to B is the clicks."""
    rng = np.random.default_rng(0)
    users, videos = [], []
    for user in range(40):
        own = np.arange(10) if user < 20 else np.arange(10, 20)
        others = [v for v in own if v not in (A, B)]
        for video in rng.choice(others, 3, replace=False).tolist() + ([A, B] if user < 10 else []):
            users.append(user)
            videos.append(video)
    users.append(40)
    videos.append(A)
    return np.array(users), np.array(videos), 41, 20


def planted_embeddings(seed: int = 0) -> GraphEmbeddings:
    users, videos, n_users, n_videos = planted_graph()
    user_vectors, video_vectors = train_graph(users, videos, n_users, n_videos, GraphConfig(seed=seed))
    names = [f"v{i:02d}" for i in range(n_videos)]
    return GraphEmbeddings.of_users(
        [f"u{i:02d}" for i in range(n_users)], names, user_vectors, video_vectors, GraphConfig()
    )


@pytest.mark.unit
def test_a_video_co_clicked_with_yours_is_among_your_candidates():
    graph = planted_embeddings()
    for user in ("u40", "someone-new"):  # the user's own vector; a new user's from the history alone
        ranked = graph.candidates(user, ["v00"], k=20)
        order = [video for video, _ in ranked]
        assert "v00" not in order and len(order) == 19  # the history is left out
        assert order[0] == "v01", (user, order)
        assert set(order[:9]) == {f"v{i:02d}" for i in range(1, 10)}, (user, order)  # then the rest of theirs
        assert order.index(f"v{THEIRS}") >= 9, (user, order)  # the other community's come last
        scores = [score for _, score in ranked]
        assert scores == sorted(scores, reverse=True)
    assert graph.candidates("someone-new", [], k=5) == []  # nothing known: nothing to say
    assert graph.candidates("someone-new", ["not-in-the-graph"], k=5) == []


@pytest.mark.unit
def test_the_graph_round_trips_and_narrows_to_a_catalog(tmp_path):
    graph = planted_embeddings()
    graph = GraphEmbeddings(
        graph.user_keys, ["vidéo 動画", *graph.video_ids[1:]], graph.users, graph.videos, graph.config
    )
    tensors, metadata = graph.to_tensors()
    save_file(tensors, str(tmp_path / "graph.safetensors"), metadata=metadata)
    with safe_open(str(tmp_path / "graph.safetensors"), "pt") as f:
        back = GraphEmbeddings.from_tensors({k: f.get_tensor(k) for k in f.keys()}, f.metadata())
    assert back.video_ids == graph.video_ids and np.array_equal(back.user_keys, graph.user_keys)
    assert np.array_equal(back.users, graph.users) and np.array_equal(back.videos, graph.videos)
    assert back.config == graph.config and back.candidates("u40", ["vidéo 動画"], 5) == graph.candidates(
        "u40", ["vidéo 動画"], 5
    )
    narrowed = graph.within({"v01", "v15", "v17"})  # the others were removed from the catalog since
    assert {v for v, _ in narrowed.candidates("u40", [], 10)} == {"v01", "v15", "v17"}
    ((best, score),) = narrowed.candidates("u40", [], 1)
    assert [(best, pytest.approx(score))] == graph.candidates("u40", ["vidéo 動画"], 1)


@pytest.mark.unit
def test_training_is_deterministic_for_a_seed():
    users, videos, n_users, n_videos = planted_graph()
    first = train_graph(users, videos, n_users, n_videos, GraphConfig(seed=3))
    second = train_graph(users, videos, n_users, n_videos, GraphConfig(seed=3))
    other = train_graph(users, videos, n_users, n_videos, GraphConfig(seed=4))
    assert all(np.array_equal(x, y) for x, y in zip(first, second))
    assert not np.array_equal(first[1], other[1])
    assert first[0].shape == (41, 32) and first[1].shape == (20, 32) and first[0].dtype == np.float32


@pytest.fixture
def trained_copy(trained_catalog, tmp_path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(trained_catalog[0], target)
    return target


def test_a_trained_model_keeps_its_graph_and_serves_it(trained_catalog):
    data_dir, report = trained_catalog
    metrics = report["metrics"]["graph"]
    assert 0 < metrics["recall_at_50"] <= metrics["recall_at_100"] <= 1 and metrics["users"] > 0
    assert report["graph_seconds"] > 0
    model = load_model(Store(data_dir, read_only=True))
    assert model.metrics["graph"] == metrics and model.graph is not None
    graph = model.graph
    user = next(u for u in ("u0001", "u0002", "u0003") if graph.knows_user(u))
    history = model.history(user)
    ranked = graph.candidates(user, history, k=10)
    assert len(ranked) == 10 and not {v for v, _ in ranked} & set(history)
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True) and all(np.isfinite(scores))
    assert all(model.knows(v) for v, _ in ranked)
    assert graph.candidates("never-seen", [], k=10) == []
    assert graph.candidates("never-seen", history[:2], k=10)  # a session's history is enough


def test_the_graph_follows_the_catalog(trained_copy):
    store = Store(trained_copy)
    model = load_model(store)
    assert model.graph is not None
    ((best, _),) = model.graph.candidates("u0001", [], 1)
    store.videos.remove([best])
    follower = model.following()  # a removed video is never offered
    assert follower is not model and follower.graph is not None and not follower.graph.knows(best)
    assert best not in {v for v, _ in follower.graph.candidates("u0001", [], 100)}


def test_a_damaged_or_missing_graph_gives_way_to_an_older_model(trained_copy):
    older = add_model_copy(trained_copy, "newer")
    flip(trained_copy / "models" / "newer" / "graph.safetensors")
    with pytest.raises(ModelError, match="model newer's graph is damaged.*retrain") as raised:
        load_model(Store(trained_copy), "newer")
    assert "\n" not in str(raised.value)
    model = load_model(Store(trained_copy))
    assert model.model_id == older and model.graph is not None
    assert any("newer" in w and "graph is damaged" in w for w in model.warnings), model.warnings
    (trained_copy / "models" / "newer" / "graph.safetensors").unlink()
    with pytest.raises(ModelError, match="model newer's graph cannot be read.*retrain"):
        load_model(Store(trained_copy), "newer")


def test_a_model_saved_before_graphs_loads_without_one(trained_copy):
    add_model_copy(trained_copy, "before-graphs", drop=("graph_sha256",))
    (trained_copy / "models" / "before-graphs" / "graph.safetensors").unlink()  # never read
    model = load_model(Store(trained_copy))
    assert model.model_id == "before-graphs" and model.graph is None and not model.warnings
    assert model.following().graph is None


def test_a_forgotten_user_leaves_the_graph(trained_copy):
    user = "u0003"
    graph = load_model(Store(trained_copy)).graph
    assert graph is not None and graph.knows_user(user)
    forget_user(Store(trained_copy), user)
    graph = load_model(Store(trained_copy)).graph
    assert graph is not None and not graph.knows_user(user) and graph.knows_user("u0001")
    assert graph.candidates(user, [], k=5) == []  # a cold start, as far as the graph goes
    assert not any(user.encode() in path.read_bytes() for path in (trained_copy / "models").rglob("*.safetensors"))


def test_a_running_server_drops_a_forgotten_users_graph_row(trained_copy):
    """The UI's process keeps its model loaded; a `forget-user` in another process reaches it at the next request."""
    user = "u0003"
    api = Vidrec(trained_copy)
    context = Context(hour=20, weekday=5, device="tv", region="eu")
    assert api.recommend(user, context, k=5)["items"]
    served = api.recommender.model
    assert served.graph is not None and served.graph.knows_user(user)
    forget_user(Store(trained_copy), user)  # another process: the command line
    now = api.recommender.model
    assert now.model_id == served.model_id  # the same model serves (no retraining asked)
    assert now.graph is not None and not now.graph.knows_user(user) and now.graph.knows_user("u0001")
    assert api.recommend(user, context, k=5)["items"]  # a cold start now


def test_train_without_the_graph(trained_copy, cli, monkeypatch):
    def train(api, options):  # what the command asks for, trained without the diagnostics and indexes (seconds)
        assert options.graph is False
        return train_and_save(api.store, replace(options, diagnostics=False))

    monkeypatch.setattr(Vidrec, "train", train)
    code, out = cli("--data-dir", trained_copy, "train", "--epochs", "1", "--no-graph", "--json")
    assert code == 0, out
    assert "graph" not in out["metrics"] and out["graph_seconds"] is None
    record = next(r for r in Store(trained_copy).models.all() if r.model_id == out["model_id"])
    assert "graph_sha256" not in record.config and not (trained_copy / record.path / "graph.safetensors").exists()
    assert load_model(Store(trained_copy), out["model_id"]).graph is None
