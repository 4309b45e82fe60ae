"""Sharded indexes (`vidrec index --shards N [--engine ray]`): the same answers as one index over the same vectors
with the same parameters, in this process (faiss IndexShards) and from one Ray actor per shard, through search,
similar and recommend; kept up to date as videos come and go."""

from __future__ import annotations

import json
import shutil

import faiss
import numpy as np
import pytest

from index.api import Vidrec
from index.ray_shards import NAMESPACE
from index.shards import ShardedIndex, load_index, shard_of
from index.vector_index import FaissIndex, IndexConfig
from ingest.store import DataDir

USERS = ("u1", "u5", "u9", "someone-new")


def vectors(n: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    faiss.normalize_L2(x)
    return x, rng.permutation(10 * n)[:n].astype(np.int64)


def answers(api: Vidrec) -> dict:
    """What a user sees of the catalog: a text search, similar videos, and recommendations in a context."""
    video = sorted(api.store.videos.video_ids())[3]
    out = {
        "search": [(i["video_id"], round(i["similarity"], 4)) for i in api.search("people cooking food", 10)],
        "similar": [(i["video_id"], round(i["similarity"], 4)) for i in api.similar(video, 10)],
    }
    for user in USERS:
        context = api.context(user, 20, 5, "tv", None)
        out[user] = [(i["video_id"], round(i["score"], 4)) for i in api.recommend(user, context, 8)["items"]]
    return out


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_a_sharded_index_finds_what_one_index_finds(kind, tmp_path):
    x, ids = vectors(4000)
    config = IndexConfig(force_type=kind)
    sharded = ShardedIndex.build_sharded("t", x, ids, 3, config)
    one = FaissIndex.build("t", x, ids, config)
    assert (sharded.info.type, sharded.info.search) == (one.info.type, one.info.search)
    for k, part in enumerate(sharded.parts):  # global ids, each in its own shard
        held = faiss.vector_to_array(part.id_map) if kind == "flat" else ids[shard_of(ids, 3) == k]
        assert part.ntotal == len(held) and set(shard_of(held, 3)) == {k}

    def same(a, b) -> None:
        (sa, ia), (sb, ib) = a.search(x[:200], 10), b.search(x[:200], 10)
        assert (ia == ib).all() and np.allclose(sa, sb, atol=1e-5)

    same(sharded, one)
    files = DataDir(tmp_path).index_files("t")
    files.data.parent.mkdir()
    sharded.save(files)
    loaded = load_index(files)
    assert isinstance(loaded, ShardedIndex) and loaded.describe()["shards"] == 3
    same(loaded, one)
    gone, new = ids[:300], vectors(50, seed=1)
    for index in (loaded, one):  # videos removed and added, in place
        index.remove(gone)
        index.add(new[1] + 10**7, new[0])
    same(loaded, one)
    assert loaded.info.size == one.info.size == 3750 and sum(e["size"] for e in loaded.info.shards) == 3750


def test_index_shards_command_serves_the_same_answers(trained_catalog, tmp_path, cli):
    data = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data)
    before = answers(Vidrec(data, read_only=True))
    code, out = cli("--data-dir", data, "index", "--shards", "3", "--json")
    assert code == 0 and [len(i["shards"]) for i in out["indexes"]] == [3, 3]  # fused and the model's
    files = DataDir(data).index_files("fused")
    assert not files.data.exists() and [p.name for p in files.shard_files()] == [
        f"fused.shard-{k}-of-3.faiss" for k in range(3)
    ]
    assert answers(Vidrec(data, read_only=True)) == before
    status = Vidrec(data, read_only=True).status()
    assert {i["name"]: i["shards"] for i in status["indexes"]}["fused"] == 3
    code, out = cli("--data-dir", data, "backup", tmp_path / "backup", "--json")  # a backup holds the shards
    assert code == 0 and not out["warnings"]
    assert len(DataDir(tmp_path / "backup").index_files("fused").shard_files()) == 3

    api = Vidrec(data)  # videos removed: the shards follow, and the count is kept
    gone = before["similar"][0][0]
    api.remove([gone])
    assert gone not in {i["video_id"] for i in Vidrec(data, read_only=True).similar(before["similar"][1][0], 50)}
    code, out = cli("--data-dir", data, "index", "--json")
    assert code == 0 and {i["action"] for i in out["indexes"]} == {"loaded"}
    assert [len(i["shards"]) for i in out["indexes"]] == [3, 3] and out["indexes"][0]["size"] == 35

    code, out = cli("--data-dir", data, "index", "--shards", "1", "--json")  # one index again
    assert code == 0 and [i["shards"] for i in out["indexes"]] == [[], []]
    assert files.data.exists() and not files.shard_files()


@pytest.mark.timeout(180)
def test_shard_actors_on_ray_answer_as_one_index(ray_cluster, trained_catalog, tmp_path, cli):
    data = tmp_path / "data"
    shutil.copytree(trained_catalog[0], data)
    assert cli("--data-dir", data, "index", "--shards", "3", "--json")[0] == 0
    files = DataDir(data).index_files("fused")
    local_files = json.loads(files.description.read_text())["shards"]
    before = answers(Vidrec(data, read_only=True))

    code, out = cli("--data-dir", data, "index", "--rebuild", "--engine", "ray", "--json")  # shards filled on Ray
    assert code == 0 and [len(i["shards"]) for i in out["indexes"]] == [3, 3]
    assert json.loads(files.description.read_text())["shards"] == local_files  # the same bytes

    api = Vidrec(data, read_only=True, engine="ray")
    assert answers(api) == before
    fused = api.indexes["fused"].index
    assert fused is not None and fused.info.device == "ray/cpu" and len(fused.actors) == 3
    names = {a["name"] for a in ray_cluster.util.list_named_actors(all_namespaces=True)}
    assert {f"shard-{e['sha256'][:32]}" for e in local_files} <= names

    ray_cluster.kill(fused.actors[1])  # a shard actor dies: the next search starts it again
    assert answers(api) == before

    updated = fused.copy()  # a serving process follows the catalog in actors of its own
    x, ids = vectors(5, dim=fused.info.dim, seed=2)
    updated.add(ids + 10**7, x)
    updated.remove(fused.ids[:4])
    assert updated.search(x, 1)[1][:, 0].tolist() == (ids + 10**7).tolist()
    assert updated.info.size == fused.info.size + 1 and fused.search(x, 1)[1][0, 0] < 10**7
    for actor in ray_cluster.util.list_named_actors(all_namespaces=True):  # free the cluster for other tests
        if actor["namespace"] == NAMESPACE:
            ray_cluster.kill(ray_cluster.get_actor(actor["name"], namespace=NAMESPACE))
