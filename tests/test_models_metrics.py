"""models/metrics.py against scikit-learn (or a hand count) on small random data; undefined metrics are None."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, ndcg_score, roc_auc_score

from models.metrics import (
    EPS,
    auc,
    binary_metrics,
    dot_ranking_metrics,
    gauc,
    multiclass_metrics,
    ranking_metrics,
    regression_metrics,
)

pytestmark = pytest.mark.unit

SEEDS = (0, 1, 2)


def labels_and_scores(seed: int, n: int = 400, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.float64)
    p = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)  # informative but imperfect
    return y, (np.round(p, 1) if ties else p)


def sklearn_gauc(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> float | None:
    """Each group's roc_auc_score weighted by its size, over groups that have both classes."""
    total = weight = 0.0
    for g in np.unique(groups):
        rows = groups == g
        if len(np.unique(y[rows])) == 2:
            total += roc_auc_score(y[rows], p[rows]) * rows.sum()
            weight += rows.sum()
    return total / weight if weight else None


# ---- AUC and per-user AUC ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_auc_equals_sklearn_roc_auc(seed, ties):
    y, p = labels_and_scores(seed, ties=ties)
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


@pytest.mark.parametrize("y", [np.zeros(5), np.ones(5), np.zeros(0)])
def test_auc_is_none_without_both_classes(y):
    assert auc(y, np.linspace(0, 1, len(y))) is None


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_gauc_equals_size_weighted_sklearn_auc_per_group(seed, ties):
    y, p = labels_and_scores(seed, ties=ties)
    groups = np.random.default_rng(seed + 100).integers(0, 25, len(y))  # some groups end up with one class
    assert gauc(y, p, groups) == pytest.approx(sklearn_gauc(y, p, groups), abs=1e-12)


def test_gauc_does_not_depend_on_row_order():
    y, p = labels_and_scores(0, ties=True)
    groups = np.random.default_rng(7).integers(0, 10, len(y))
    shuffled = np.random.default_rng(8).permutation(len(y))
    assert gauc(y[shuffled], p[shuffled], groups[shuffled]) == pytest.approx(gauc(y, p, groups), abs=1e-12)


def test_gauc_skips_single_class_groups():
    y = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    p = np.array([0.9, 0.1, 0.2, 0.8, 0.5, 0.6, 0.5, 0.4])
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 3])  # groups 2 (all clicks) and 3 (none) do not count
    assert gauc(y, p, groups) == pytest.approx(0.5)  # group 0 perfect, group 1 inverted, equal sizes


def test_gauc_is_none_when_no_group_has_both_classes():
    assert gauc(np.array([1, 1, 0, 0]), np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 0, 1, 1])) is None


# ---- binary, regression, multiclass ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_metrics_agree_with_sklearn(seed):
    y, p = labels_and_scores(seed)
    groups = np.arange(len(y)) % 7
    out = binary_metrics(y, p, groups)
    assert out["logloss"] == pytest.approx(log_loss(y, np.clip(p, EPS, 1 - EPS)), rel=1e-9)
    assert out["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert out["gauc"] == pytest.approx(sklearn_gauc(y, p, groups), abs=1e-12)
    assert (out["positive_rate"], out["n"]) == (pytest.approx(y.mean()), len(y))


def test_binary_metrics_log_loss_stays_finite_for_certain_wrong_predictions():
    out = binary_metrics(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert np.isfinite(out["logloss"]) and out["logloss"] > 10
    assert "gauc" not in out  # only with groups


def test_binary_metrics_of_nothing_are_none():
    out = binary_metrics(np.zeros(0), np.zeros(0), np.zeros(0))
    assert out == {"auc": None, "logloss": None, "positive_rate": None, "n": 0, "gauc": None}


def test_regression_metrics_mae_equals_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.random(50), rng.random(50)
    assert regression_metrics(y, p) == {"mae": pytest.approx(mean_absolute_error(y, p)), "n": 50}
    assert regression_metrics(np.zeros(0), np.zeros(0)) == {"mae": None, "n": 0}


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_metrics_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 300)
    probabilities = rng.dirichlet(np.ones(4), 300) + 0.5 * np.eye(4)[y]  # better than chance
    predicted = probabilities.argmax(1)
    out = multiclass_metrics(y, probabilities)
    assert out["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert out["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert 0.25 < out["accuracy"] < 1 and out["n"] == 300


def test_multiclass_macro_f1_averages_over_the_true_classes():
    y = np.array([0, 0, 1, 1])
    probabilities = np.eye(3)[[0, 1, 1, 2]]  # class 2 is predicted but never true
    out = multiclass_metrics(y, probabilities)
    # class 0: precision 1, recall 1/2 -> F1 2/3; class 1: precision 1/2, recall 1/2 -> F1 1/2
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_multiclass_metrics_of_nothing_are_none():
    assert multiclass_metrics(np.zeros(0, int), np.zeros((0, 3))) == {"accuracy": None, "macro_f1": None, "n": 0}


# ---- ranking ----------------------------------------------------------------------------------------------


def reference_recall(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean(np.take_along_axis(relevant, top, 1).sum(1) / relevant.sum(1)))


@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("seed", SEEDS)
def test_ranking_metrics_agree_with_sklearn_ndcg_on_binary_relevance(seed, k):
    rng = np.random.default_rng(seed)
    scores = rng.random((40, 25))  # continuous: no ties
    relevant = rng.random((40, 25)) < 0.1
    relevant[0] = False  # a row with nothing relevant is left out of the average
    rows = relevant.any(1)
    out = ranking_metrics(scores, relevant, k)
    assert out[f"ndcg_at_{k}"] == pytest.approx(ndcg_score(relevant[rows], scores[rows], k=k), abs=1e-12)
    assert out[f"recall_at_{k}"] == pytest.approx(reference_recall(scores[rows], relevant[rows], k), abs=1e-12)
    assert out["n"] == rows.sum() < 40


def test_ranking_metrics_hand_computed_case():
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    relevant = np.array([[False, True, False, True], [False, False, False, True]])
    out = ranking_metrics(scores, relevant, k=2)
    # row 0: top 2 = items 0, 1; one hit at rank 2 of two relevant -> DCG 1/log2(3), ideal 1 + 1/log2(3)
    row0 = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert out["ndcg_at_2"] == pytest.approx((row0 + 1.0) / 2)  # row 1: its one relevant item is first
    assert out["recall_at_2"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["n"] == 2


def test_ranking_metrics_are_none_when_nothing_is_relevant():
    out = ranking_metrics(np.random.default_rng(0).random((3, 5)), np.zeros((3, 5), bool), k=10)
    assert out == {"ndcg_at_10": None, "recall_at_10": None, "n": 0}


def test_dot_ranking_metrics_in_blocks_equal_the_whole_matrix(monkeypatch):
    rng = np.random.default_rng(3)
    queries, items = rng.standard_normal((30, 8)), rng.standard_normal((50, 8))
    clicked = rng.integers(0, 50, 30)
    relevant = np.zeros((30, 50), bool)
    relevant[np.arange(30), clicked] = True
    whole = ranking_metrics(queries @ items.T, relevant, 10)
    monkeypatch.setattr("models.metrics.RANKING_CELLS", 7 * 50)  # blocks of 7 queries, the last one short
    assert dot_ranking_metrics(queries, items, clicked, 10) == whole
