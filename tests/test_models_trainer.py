"""Training and evaluation (models/trainer.py) on tiny random tensors: the best epoch is the one kept, every
balancing method trains, predictions and metrics have the shape the rest of vidrec reads; the listwise ranking
loss over a visit's impressions (models/ranking_loss.py) and the visits themselves (ingest/learning/features.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_models_multitask import N_CATEGORIES, N_DEVICES, V, labelled_videos, tiny_catalog, tiny_net

from ingest.learning.features import visits
from models.balancing import BALANCERS
from models.context import HOUR_SLOTS
from models.data import Impressions
from models.multitask import GROUPS, MultiTaskNet
from models.ranking_loss import listwise_loss
from models.trainer import (
    PRIMARY,
    TrainConfig,
    class_weights,
    effective_batch_size,
    evaluate,
    fit,
    mark_seen,
    predict,
    task_losses,
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
        visit=user * 10 + torch.arange(n) * 10 // n,  # a user's rows in ten visits, by position
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


# ---- the ranking loss over a visit's impressions ---------------------------------------------------------------
def test_visits_break_at_a_pause_over_30_minutes_and_never_span_users():
    users = np.array([0, 0, 0, 1, 0, 1])
    minute = 60
    ts = np.array([0, 29, 60, 30, 120, 31 + 30]) * minute  # rows out of time order, as a log may be
    visit = visits(users, ts)
    assert visit[0] == visit[1]  # 29 minutes apart
    assert visit[2] != visit[1]  # 31 minutes after the previous one
    assert visit[4] != visit[2]  # an hour later
    assert visit[3] != visit[5]  # user 1's two rows, 31 minutes apart
    assert not set(visit[users == 0]) & set(visit[users == 1])  # another user's rows at the same time
    assert sorted(set(visit.tolist())) == list(range(5))


def test_listwise_loss_prefers_each_visits_clicked_row_and_reads_only_visits_that_chose():
    visit = torch.tensor([7, 7, 7, 3, 3, 42, 42, 5, 5])  # ids need not be 0..n-1
    click = torch.tensor([1.0, 0, 0, 0, 0, 1, 1, 0, 1])  # visit 3: no click; 42: nothing passed over
    right = torch.tensor([2.0, 0, 0, 1, 0, 0, 1, 0, 2])  # the clicked rows on top of their visits
    wrong = torch.tensor([0.0, 2, 0, 1, 0, 0, 1, 2, 0])
    assert listwise_loss(right, click, visit) < listwise_loss(wrong, click, visit)
    expected = -(right[[0, 1, 2]].log_softmax(0)[0] + right[[7, 8]].log_softmax(0)[1]) / 2
    assert listwise_loss(right, click, visit).item() == pytest.approx(expected.item())
    others = right.clone()
    others[3:7] = torch.tensor([-5.0, 9, 3, -3])  # the visits that did not choose move: nothing changes
    assert listwise_loss(others, click, visit).item() == pytest.approx(expected.item())
    assert listwise_loss(right, torch.zeros(9), visit).item() == 0  # no visit chose

    logits = torch.zeros(9, requires_grad=True)
    listwise_loss(logits, click, visit).backward()
    grad = logits.grad
    assert grad[0] < 0 and grad[8] < 0  # descent raises the clicked rows
    assert (grad[[1, 2, 7]] > 0).all()  # and lowers the rows passed over beside them
    assert (grad[3:7] == 0).all()  # other visits untouched


def choice_visits(n_visits: int, seed: int, kinds: tuple[str, ...] = ("choice", "bounce", "all")) -> Impressions:
    """Visits of four or two rows, one user each, context random: "choice" shows one even video and three odd
    ones and clicks the even one; "bounce" shows four even videos and clicks none; "all" shows two odd ones and
    clicks both. Odd videos are clicked more often overall (2 in 5 rows against 1 in 5), yet every visit that
    chose between the two preferred the even one."""
    g = torch.Generator().manual_seed(seed)
    even, odd = torch.arange(0, V, 2), torch.arange(1, V, 2)

    def pick(pool: torch.Tensor, k: int) -> torch.Tensor:
        return pool[torch.randint(0, len(pool), (k,), generator=g)]

    shown = {"choice": lambda: (torch.cat([pick(even, 1), pick(odd, 3)]), [1.0, 0, 0, 0])}
    shown |= {"bounce": lambda: (pick(even, 4), [0.0] * 4), "all": lambda: (pick(odd, 2), [1.0, 1])}
    videos, clicks, visit = [], [], []
    for i in range(n_visits):
        v, c = shown[kinds[i % len(kinds)]]()
        videos.append(v)
        clicks += c
        visit += [i] * len(v)
    video, click, visit_index = torch.cat(videos), torch.tensor(clicks), torch.tensor(visit)
    n, user = len(video), 1 + visit_index % 5
    return Impressions(
        user=user,
        video=video,
        history=torch.full((n, 4), -1),
        hour=torch.randint(0, 24, (n,), generator=g),
        weekday=torch.randint(0, 7, (n,), generator=g),
        device=torch.randint(0, N_DEVICES, (n,), generator=g),
        region=torch.randint(0, 3, (n,), generator=g),
        click=click,
        like=torch.where(click > 0, 1.0, float("nan")),
        watch=torch.where(click > 0, 0.5, float("nan")),
        group=user,
        visit=visit_index,
    )


def clicked_first(net: MultiTaskNet, data: Impressions) -> float:
    """The share of visits whose clicked video has the highest predicted click probability."""
    p = torch.from_numpy(predict(net, data)["click"])
    return float(
        np.mean([float(data.click[data.visit == v][p[data.visit == v].argmax()]) for v in data.visit.unique()])
    )


def test_the_ranking_loss_prefers_the_clicked_video_of_a_visit():
    """Where the pointwise loss follows the overall click rate (odd videos), the visits that chose preferred the
    even one: with the listwise loss the held-out visits' clicked video comes first, without it last."""
    labelled = labelled_videos()
    first = {}
    for ranking in (0.0, 1.0):
        net = tiny_net(tasks=("click",))
        config = TrainConfig(epochs=6, patience=6, lr=1e-2, batch_size=64, ranking=ranking, progress=False)
        train_set, val = choice_visits(150, 0), choice_visits(30, 1, ("choice",))
        fit(net, train_set, val, tiny_catalog(), labelled[:6], labelled[6:], config)
        first[ranking] = clicked_first(net, choice_visits(60, 2, ("choice",)))
    assert first[1.0] >= 0.9 and first[0.0] <= 0.3, first


def recorded_batches(monkeypatch, data: Impressions, **config) -> list[torch.Tensor]:
    """The rows of every training batch `fit` takes from `data`, in order."""
    seen: list[torch.Tensor] = []
    batch = Impressions.batch

    def recording(self, rows=None):
        if self is data and rows is not None:
            seen.append(torch.as_tensor(rows).clone())
        return batch(self, rows)

    monkeypatch.setattr(Impressions, "batch", recording)
    labelled = labelled_videos()
    fit(tiny_net(), data, tiny_impressions(64, 1), tiny_catalog(), labelled[:6], labelled[6:], TrainConfig(**config))
    return seen


def test_ranking_off_trains_on_the_same_batches_as_before(monkeypatch):
    """ranking=0 draws exactly what training drew before the ranking loss: each epoch a permutation of the rows,
    then a category batch a step, from one generator seeded with the config's seed."""
    data = tiny_impressions(128, 0)
    seen = recorded_batches(monkeypatch, data, epochs=2, patience=2, seed=3, progress=False)
    rng, expected = np.random.default_rng(3), []
    size = effective_batch_size(TrainConfig().batch_size, len(data))
    for _ in range(2):
        order = rng.permutation(len(data))
        for step in range(math.ceil(len(data) / size)):
            expected.append(order[step * size : (step + 1) * size])
            rng.integers(0, 6, TrainConfig().category_batch)  # the step's category batch
    assert [b.tolist() for b in seen] == [e.tolist() for e in expected]


def test_ranking_batches_hold_whole_visits_in_the_same_number_of_steps(monkeypatch):
    data = tiny_impressions(128, 0)
    seen = recorded_batches(monkeypatch, data, epochs=2, patience=2, ranking=1.0, progress=False)
    steps = math.ceil(len(data) / effective_batch_size(TrainConfig().batch_size, len(data)))
    assert len(seen) == 2 * steps
    epochs = [torch.cat(seen[:steps]), torch.cat(seen[steps:])]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(len(data)))
        visit = data.visit[order]
        assert int((visit[1:] != visit[:-1]).sum()) + 1 == len(data.visit.unique())  # each visit's rows together
    assert not torch.equal(epochs[0], epochs[1])  # the visits reshuffled every epoch


def test_with_ranking_retrieval_takes_no_click_of_the_same_user_for_a_negative():
    net = tiny_net()
    batch = tiny_impressions(40, 6).batch()
    batch["group"] = torch.ones(40, dtype=torch.long)  # one user: every other click is the user's own
    assert task_losses(net, batch, None)["retrieval"] > 0
    assert task_losses(net, batch, None, ranking=1.0)["retrieval"].item() == pytest.approx(0, abs=1e-6)
