"""Metrics of the multi-task model, on numpy arrays (sklearn wherever it has them).

A metric that is undefined on the given rows (an AUC over one class, nothing to rank) is None, so
that JSON reports stay valid and a missing number never looks like a bad one.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, roc_auc_score

EPS = 1e-7
RANKING_CELLS = 2**24  # scores held at once when ranking queries against a catalog (64 MB of float32)


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
    return ranking_summary([ranking_rows(scores, relevant, k)], k)


def ranking_rows(scores: np.ndarray, relevant: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(NDCG@k, recall@k) of each row that has something relevant, and the k used (at most the items)."""
    rows = relevant.any(1)
    scores, relevant = scores[rows], relevant[rows]
    k = min(k, scores.shape[1])
    if not len(scores):
        return np.zeros(0), np.zeros(0), k
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1), 1)
    hits = np.take_along_axis(relevant, top, 1).astype(np.float64)
    discounts = 1 / np.log2(np.arange(2, k + 2))
    ideal = np.array([discounts[: min(n, k)].sum() for n in relevant.sum(1)])
    return (hits * discounts).sum(1) / ideal, hits.sum(1) / relevant.sum(1), k


def ranking_summary(parts: list[tuple[np.ndarray, np.ndarray, int]], k: int) -> dict:
    """`ranking_metrics` from the `ranking_rows` of one or more blocks of rows."""
    ndcg = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
    if not len(ndcg):
        return {f"ndcg_at_{k}": None, f"recall_at_{k}": None, "n": 0}
    k = parts[0][2]
    return {
        f"ndcg_at_{k}": float(np.mean(ndcg)),
        f"recall_at_{k}": float(np.mean(np.concatenate([p[1] for p in parts]))),
        "n": int(len(ndcg)),
    }


def dot_ranking_metrics(queries: np.ndarray, items: np.ndarray, relevant: np.ndarray, k: int = 10) -> dict:
    """`ranking_metrics` of every query against every item by inner product, one relevant item per query (its
    index in `relevant`). The [queries, items] matrix is made a block of rows at a time: whole, it was 4 bytes
    a cell and several copies of it (11 GB for 2,400 queries at a 1M catalog)."""
    step = max(1, RANKING_CELLS // max(1, len(items)))
    parts = []
    for start in range(0, len(queries), step):
        scores = queries[start : start + step] @ items.T
        hit = np.zeros_like(scores, dtype=bool)
        hit[np.arange(len(scores)), relevant[start : start + step]] = True
        parts.append(ranking_rows(scores, hit, k))
    return ranking_summary(parts, k)
