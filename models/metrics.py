"""Metrics of the multi-task model, on numpy arrays (sklearn wherever it has them).

A metric that is undefined on the given rows (an AUC over one class, nothing to rank) is None, so
that JSON reports stay valid and a missing number never looks like a bad one.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, roc_auc_score

EPS = 1e-7


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    y = np.asarray(y)
    if len(y) == 0 or y.min() == y.max():
        return None
    return float(roc_auc_score(y, p))


def gauc(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> float | None:
    """Per-user AUC weighted by the user's impressions, over users who have both outcomes: how well each
    user's own list is ordered, which a global AUC mixes up with who clicks a lot. (Rank-sum AUC per
    group: the same number as sklearn's, without its per-call overhead for thousands of users.)"""
    y, p, groups = np.asarray(y), np.asarray(p), np.asarray(groups)
    order = np.lexsort((p, groups))
    y, p, groups = y[order], p[order], groups[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    total, weight = 0.0, 0
    for start, end in zip(starts, np.r_[starts[1:], len(groups)]):
        labels = y[start:end] > 0.5
        positives = int(labels.sum())
        negatives = len(labels) - positives
        if positives and negatives:
            ranks = rankdata(p[start:end])  # ties share their mean rank, as in the Mann-Whitney statistic
            value = (ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives)
            total += value * (end - start)
            weight += end - start
    return float(total / weight) if weight else None


def binary_metrics(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None = None) -> dict:
    y, p = np.asarray(y, np.float64), np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    out = {
        "auc": auc(y, p),
        "logloss": float(log_loss(y, p, labels=[0, 1])) if len(y) else None,
        "positive_rate": float(y.mean()) if len(y) else None,
        "n": int(len(y)),
    }
    if groups is not None:
        out["gauc"] = gauc(y, p, groups)
    return out


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    return {"mae": float(mean_absolute_error(y, p)) if len(y) else None, "n": int(len(y))}


def multiclass_metrics(y: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy and macro F1 of the most probable class; y holds class indices."""
    if len(y) == 0:
        return {"accuracy": None, "macro_f1": None, "n": 0}
    predicted = probabilities.argmax(1)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, average="macro", labels=np.unique(y), zero_division=0)),
        "n": int(len(y)),
    }


def ranking_metrics(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> dict:
    """NDCG@k and recall@k of each row's relevant items (boolean [rows, items]) in its ranked scores,
    averaged over rows that have something relevant."""
    rows = relevant.any(1)
    if not rows.any():
        return {f"ndcg_at_{k}": None, f"recall_at_{k}": None, "n": 0}
    scores, relevant = scores[rows], relevant[rows]
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1), 1)
    hits = np.take_along_axis(relevant, top, 1).astype(np.float64)
    discounts = 1 / np.log2(np.arange(2, k + 2))
    ideal = np.array([discounts[: min(n, k)].sum() for n in relevant.sum(1)])
    return {
        f"ndcg_at_{k}": float(np.mean((hits * discounts).sum(1) / ideal)),
        f"recall_at_{k}": float(np.mean(hits.sum(1) / relevant.sum(1))),
        "n": int(rows.sum()),
    }
