"""Training and evaluation (models/trainer.py) on tiny random tensors: the best epoch is the one kept, every
balancing method trains, predictions and metrics have the shape the rest of vidrec reads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_models_multitask import N_CATEGORIES, N_DEVICES, V, labelled_videos, tiny_catalog, tiny_net

from models.balancing import BALANCERS
from models.context import HOUR_SLOTS
from models.data import Impressions
from models.multitask import GROUPS, MultiTaskNet
from models.trainer import (
    PRIMARY,
    TrainConfig,
    class_weights,
    effective_batch_size,
    evaluate,
    fit,
    mark_seen,
    predict,
    validation_score,
)

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]


R = 8  # the tiny network's retrieval width


def tiny_impressions(n: int, seed: int) -> Impressions:
    """Users click the videos of category 0 (mostly), like half their clicks and watch most of them."""
    g = torch.Generator().manual_seed(seed)
    video = torch.randint(0, V, (n,), generator=g)
    category = tiny_catalog().category[video]
    click = ((category == 0) ^ (torch.rand(n, generator=g) < 0.1)).float()
    nan = torch.full((n,), float("nan"))
    user = torch.randint(1, 6, (n,), generator=g)
    return Impressions(
        user=user,
        video=video,
        history=torch.randint(-1, V, (n, 4), generator=g),
        hour=torch.randint(0, 24, (n,), generator=g),
        weekday=torch.randint(0, 7, (n,), generator=g),
        device=torch.randint(0, N_DEVICES, (n,), generator=g),
        region=torch.randint(0, 3, (n,), generator=g),
        click=click,
        like=torch.where(click > 0, (torch.rand(n, generator=g) < 0.5).float(), nan),
        watch=torch.where(click > 0, torch.rand(n, generator=g), nan),
        group=user,
    )


def train(net: MultiTaskNet, rows: int = 128, **config) -> tuple:
    """fit on `rows` impressions (batches of 32) and validate on 64; returns (FitResult, validation videos)."""
    labelled = labelled_videos()
    result = fit(
        net,
        tiny_impressions(rows, 0),
        tiny_impressions(64, 1),
        tiny_catalog(),
        labelled[:6],
        labelled[6:],
        TrainConfig(**({"epochs": 4, "progress": False, "lr": 1e-2} | config)),
    )
    return result, labelled[6:]


def test_fit_keeps_the_weights_of_the_best_validation_epoch():
    net = tiny_net(id_dropout=0.1)
    torch.set_num_threads(2)
    result, category_val = train(net, epochs=5, patience=5)
    assert torch.get_num_threads() == 2  # fit trains on one thread and gives the others back
    assert result.epochs_run == len(result.curves) == 5 and 1 <= result.best_epoch <= 5
    scores = [c["validation_score"] for c in result.curves]
    assert result.curves[result.best_epoch - 1]["validation_score"] == max(scores)
    again = validation_score(evaluate(net, tiny_impressions(64, 1), category_val, per_user=False))
    assert again == pytest.approx(max(scores), abs=1e-6)
    assert not net.training and result.examples_per_second > 0


def test_fit_learns_the_click_signal():
    net = tiny_net()
    result, _ = train(net, rows=256, epochs=6, patience=6)
    first, best = result.curves[0], result.curves[result.best_epoch - 1]
    assert result.curves[-1]["train_loss"]["click"] < first["train_loss"]["click"]
    assert best["validation"]["click"]["auc"] > 0.8


def test_fit_stops_early_when_validation_does_not_improve():
    result, _ = train(tiny_net(), epochs=20, patience=1, lr=0.0)  # nothing changes after epoch 1
    assert result.best_epoch == 1 and result.epochs_run == 2


@pytest.mark.parametrize("pcgrad", [False, True])
@pytest.mark.parametrize("balance", BALANCERS)
def test_fit_trains_with_every_balancing_method(balance, pcgrad):
    result, _ = train(tiny_net(), epochs=2, balance=balance, pcgrad=pcgrad)
    curve = result.curves[-1]
    assert set(curve["train_loss"]) == set(curve["task_weights"]) == set(tiny_net().config.tasks)
    assert all(math.isfinite(v) for v in curve["train_loss"].values())
    assert all(math.isfinite(w) and w > 0 for w in curve["task_weights"].values())
    assert set(curve["gates"]) == set(GROUPS)


def test_predict_answers_every_task_with_its_shape():
    net = tiny_net()
    net.set_catalog(tiny_catalog())
    data = tiny_impressions(50, 2)
    p = predict(net, data, batch_size=16)  # batches of 16, 16, 16, 2 put back together
    shapes = {k: v.shape for k, v in p.items()}
    assert shapes == {
        "click": (50,),
        "like": (50,),
        "watch": (50,),
        "hour_slot": (50, HOUR_SLOTS),
        "device": (50, N_DEVICES),
        "user_vector": (50, R),
        "category": (V, N_CATEGORIES),
        "video_vector": (V, R),
    }
    for k in ("hour_slot", "device", "category"):
        assert np.allclose(p[k].sum(1), 1, atol=1e-5)
    assert net.video_cache is None  # the catalog cache predict built is dropped again
    assert np.allclose(predict(net, data)["click"], p["click"], atol=1e-6)  # the batch size does not matter


def test_evaluate_reports_each_tasks_primary_metric():
    net = tiny_net()
    metrics = evaluate(net, tiny_impressions(80, 3), labelled_videos())
    assert set(metrics) == set(net.config.tasks)
    for task, (name, _) in PRIMARY.items():
        assert name in metrics[task], task
    assert "gauc" in metrics["click"]  # per_user=True
    assert metrics["retrieval"]["n"] == int(tiny_impressions(80, 3).click.sum())


def test_validation_score_adds_primary_metrics_with_mae_counted_against():
    metrics = {
        "click": {"auc": 0.75},
        "watch": {"mae": 0.25},
        "like": {"auc": None},
        "retrieval": {"recall_at_10": 0.5},
    }
    assert validation_score(metrics) == pytest.approx(0.75 - 0.25 + 0.5)


def test_class_weights_lift_the_rare_class():
    data = tiny_impressions(200, 4)
    videos = labelled_videos()
    weights = class_weights(data, tiny_catalog(), videos, N_CATEGORIES, enabled=True)
    p = data.click.mean().item()
    assert weights.pos_weight["click"] == pytest.approx(math.sqrt((1 - p) / p))
    counts = torch.bincount(tiny_catalog().category[videos], minlength=N_CATEGORIES).float()
    assert torch.allclose(weights.category, counts.sum() / (N_CATEGORIES * counts))  # balanced: n / (C * n_c)
    disabled = class_weights(data, tiny_catalog(), videos, N_CATEGORIES, enabled=False)
    assert disabled.pos_weight == {} and disabled.category is None


@pytest.mark.parametrize("configured, rows, expected", [(1024, 100_000, 1024), (1024, 3200, 100), (1024, 100, 32)])
def test_effective_batch_size_keeps_enough_steps_per_epoch(configured, rows, expected):
    assert effective_batch_size(configured, rows) == expected


def test_mark_seen_leaves_unseen_ids_to_the_unknown_bucket():
    net = tiny_net()
    data = tiny_impressions(30, 5)
    mark_seen(net, data, tiny_catalog())
    assert net.user_seen.tolist() == [u > 0 and u in set(data.user.tolist()) for u in range(len(net.user_seen))]
    seen_buckets = set(tiny_catalog().bucket[data.video].tolist())
    assert net.video_seen.tolist() == [b > 0 and b in seen_buckets for b in range(len(net.video_seen))]
