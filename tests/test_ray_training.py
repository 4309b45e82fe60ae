"""Training on Ray (`vidrec train --engine ray --ray-workers N`): the same model, saved the same way, as local
training; a dead worker fails the run with one line and leaves nothing behind (docs/architecture.md,
"Scaling out").

The Ray tests share the session's Ray cluster (conftest's `ray_cluster`: 2 CPUs); the tests of the pieces
(shards, Parquet, the data-parallel hook with one worker) need no cluster.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from index.api import Vidrec
from ingest.learning.distributed import TEST_EXIT, read_impressions, shard_by_user, write_impressions
from ingest.learning.features import build_features, visits
from ingest.learning.training import TrainOptions, net_configs, train_config, train_model
from ingest.store import Store
from models.multitask import MultiTaskNet
from models.parallel import DataParallel
from models.trainer import class_weights, fit, mark_seen

EPOCHS = 2  # few: the tests compare engines, not models


def models_in(data_dir: Path) -> list[str]:
    store = Store(data_dir, read_only=True)
    found = [m.model_id for m in store.models.all()]
    store.close()
    return found


def leftovers(data_dir: Path) -> list[str]:
    """What a training run may have left: its staging folder, a model folder without a row, a partial one."""
    staging = list((data_dir / "staging").glob("train-*")) if (data_dir / "staging").exists() else []
    folders = list((data_dir / "models").glob("*")) if (data_dir / "models").exists() else []
    return [str(p) for p in staging + [f for f in folders if f.is_dir()]]


def test_shards_keep_each_users_rows_together_and_are_about_equal():
    users = torch.tensor([5, 1, 5, 2, 3, 3, 3, 1, 4, 5, 2, 6])
    shards = shard_by_user(users, 2)
    assert sorted(int(r) for rows in shards for r in rows) == list(range(len(users)))
    owners = [{int(users[r]) for r in rows} for rows in shards]
    assert not owners[0] & owners[1]
    assert abs(len(shards[0]) - len(shards[1])) <= 1
    assert all(list(rows) == sorted(rows) for rows in shards)  # the log's order within a shard
    visit = visits(users.numpy(), np.arange(len(users)) * 600)  # the log's rows ten minutes apart
    assert not {int(visit[r]) for r in shards[0]} & {int(visit[r]) for r in shards[1]}  # the ranking loss's lists


def test_impressions_round_trip_through_parquet(tuned_catalog, tmp_path):
    features = build_features(Store(tuned_catalog[0], read_only=True))
    data = features.impressions.take(torch.arange(50))
    write_impressions(tmp_path / "rows.parquet", data)
    back = read_impressions(tmp_path / "rows.parquet")
    for name, value in data.batch().items():
        assert torch.equal(back.batch()[name].nan_to_num(-7), value.nan_to_num(-7)), name
        assert back.batch()[name].dtype == value.dtype


@pytest.mark.timeout(120)
def test_one_data_parallel_worker_trains_exactly_as_local_training(tuned_catalog, one_torch_thread):
    """The hook itself (broadcast, averaged gradients and GradNorm weights, summed losses, rank 0's score) changes
    nothing with one worker: the same weights as local training, bit for bit."""
    store = Store(tuned_catalog[0], read_only=True)
    options = TrainOptions(epochs=1, progress=False, balance="gradnorm", pcgrad=True)
    features = build_features(store)
    split = options.split(features)
    train, val = features.impressions.take(split.train), features.impressions.take(split.val)
    config = train_config(options)
    net_config = net_configs(features, options)["all"]
    catalog = features.catalog.tensors
    states = []
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        for parallel in (False, True):
            torch.manual_seed(0)
            net = MultiTaskNet(net_config)
            hook = None
            if parallel:
                seen = MultiTaskNet(net_config)
                mark_seen(seen, train, catalog)
                weights = class_weights(train, catalog, split.category_train, net_config.n_categories, True)
                batch = max(32, min(config.batch_size, len(train) // 32))
                steps = -(-len(train) // batch)
                hook = DataParallel(0, 1, batch, steps, seen.user_seen, seen.video_seen, weights)
            result = fit(net, train, val, catalog, split.category_train, split.category_val, config, parallel=hook)
            states.append((net.state_dict(), result.curves))
    finally:
        dist.destroy_process_group()
    (local, local_curves), (one, one_curves) = states
    assert all(torch.equal(local[k], one[k]) for k in local)
    assert [c["validation"] for c in local_curves] == [c["validation"] for c in one_curves]


def test_ray_workers_go_with_the_ray_engine(catalog_copy, cli):
    code, _ = cli("--data-dir", catalog_copy, "train", "--ray-workers", 2, "--json")
    assert code == 2


@pytest.mark.timeout(180)
def test_two_ray_workers_train_the_model_local_training_trains(ray_cluster, tuned_catalog, tmp_path, cli):
    data = tmp_path / "data"
    shutil.copytree(tuned_catalog[0], data)
    local = train_model(Store(data, read_only=True), TrainOptions(epochs=EPOCHS, progress=False, diagnostics=False))

    code, too_many = cli("--data-dir", data, "train", "--engine", "ray", "--ray-workers", 5, "--json")
    assert code == 1, too_many
    assert "--ray-workers 5" in too_many["error"] and "use --ray-workers 4 or fewer" in too_many["error"]

    code, result = cli("--data-dir", data, "train", "--engine", "ray", "--ray-workers", 2, "--epochs", EPOCHS, "--json")
    assert code == 0, result
    assert (result["engine"], result["workers"]) == ("ray", 2)
    assert models_in(data) == [result["model_id"]]
    assert not list((data / "staging").glob("train-*"))
    # two epochs on the tiny world: the two workers' batches and dropout draws differ from local training's, and
    # so does the AUC (by 0.026 before the id priors, 0.035 with them); equal algorithms are checked bit for bit
    # with one worker above
    assert abs(result["metrics"]["click"]["auc"] - local.metrics["click"]["auc"]) <= 0.05
    assert 1 <= result["best_epochs"]["all"] <= EPOCHS

    api = Vidrec(data, read_only=True)
    user = api.store.interactions.user_ids()[0]
    recommended = api.recommend(user, k=5)
    assert recommended["model_id"] == result["model_id"] and len(recommended["items"]) == 5


@pytest.mark.timeout(180)
def test_a_worker_killed_mid_epoch_fails_the_run_and_leaves_nothing(
    ray_cluster, tuned_catalog, tmp_path, cli, monkeypatch
):
    data = tmp_path / "data"
    shutil.copytree(tuned_catalog[0], data)
    before = leftovers(data)
    monkeypatch.setenv(TEST_EXIT, "1")  # rank 1 ends in the middle of epoch 2
    code, result = cli("--data-dir", data, "train", "--engine", "ray", "--ray-workers", 2, "--epochs", 2, "--json")
    assert code == 1, result
    assert result["error"].startswith("the Ray training failed: ") and "\n" not in result["error"]
    assert models_in(data) == []
    assert leftovers(data) == before
