"""How a ranked pool becomes a list that is not ten copies of one thing.

Two ways, chosen by `RecommendConfig.diversity`:
- `calibrated` (the default): the list's category mix follows the user's own (calibrated recommendations,
  Steck 2018). Greedily, each slot goes to the candidate with the best (1 - w) x relevance - w x KL(target ||
  list's mix so far with it), where the target is the user's click mix in this context with a floor spread over
  every category (room to explore). A narrow user gets a narrow list, a broad one a broad list.
- `cap`: MMR over CLIP vectors with one cap on any category's share, the same for everyone (the earlier way,
  kept for the comparison in bench/bench_recommend.py).
Both keep MMR's near-duplicate term: a candidate too like one already chosen waits.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

KL_SMOOTHING = 0.01  # the list's mix is mixed with this much of the target, so that KL stays finite (Steck)
DIVERSITY = ("calibrated", "cap", "none")


def mix_of(categories: Sequence[str | None], weights: Sequence[float] | None = None) -> dict[str, float]:
    """The share of each category among these (weighted) videos; videos without a category are left out."""
    total: dict[str, float] = {}
    for i, category in enumerate(categories):
        if category:
            total[category] = total.get(category, 0.0) + (1.0 if weights is None else float(weights[i]))
    whole = sum(total.values())
    return {c: n / whole for c, n in total.items()} if whole > 0 else {}


def target_mix(
    history: Sequence[str | None],
    everyone: Mapping[str, float],
    lift: Mapping[str, float],
    prior_clicks: float,
    floor: float,
    categories: Sequence[str],
) -> dict[str, float]:
    """The mix a user's list should follow here: their clicks' categories, pulled toward everyone's mix by
    `prior_clicks` pseudo-clicks (a user with three clicks is not known yet), times how this context shifts
    every category for everyone (`lift`), with `floor` of the whole spread evenly over `categories`."""
    counts = Counter(c for c in history if c)
    seen = sum(counts.values())
    names = sorted(set(categories) | set(counts) | set(everyone))
    mix = {c: (counts[c] + prior_clicks * everyone.get(c, 0.0)) * lift.get(c, 1.0) for c in names}
    total = sum(mix.values())
    if total <= 0 or seen + prior_clicks <= 0:
        mix = {c: 1.0 for c in names}
        total = float(len(names))
    spread = set(categories) or set(names)
    return {c: (1 - floor) * mix[c] / total + (floor / len(spread) if c in spread else 0.0) for c in names}


def calibration_kl(target: Mapping[str, float], listed: Sequence[str | None]) -> float:
    """KL(target || the list's mix), the list's mix smoothed with a little of the target."""
    mix = mix_of(listed)
    kl = 0.0
    for c, p in target.items():
        if p > 0:
            q = (1 - KL_SMOOTHING) * mix.get(c, 0.0) + KL_SMOOTHING * p
            kl += p * math.log(p / q)
    return kl


def calibrated(
    relevance: np.ndarray,
    categories: Sequence[str | None],
    vectors: np.ndarray,
    target: Mapping[str, float],
    k: int,
    weight: float,
    mmr_lambda: float,
) -> list[int]:
    """Indices of k candidates, greedily: (1 - weight) x MMR's relevance-minus-redundancy - weight x KL."""
    names = sorted(target)
    position = {c: i for i, c in enumerate(names)}
    p = np.array([target[c] for c in names])
    column = np.array([position.get(c, -1) if c else -1 for c in categories])  # -1: counts toward no category
    counts = np.zeros(len(names))
    added = np.vstack([np.eye(len(names)), np.zeros(len(names))])  # row c: one more of category c; last: of none
    kept = p > 0
    chosen: list[int] = []
    best_sim = np.zeros(len(relevance))
    while len(chosen) < min(k, len(relevance)):
        mix = (counts + added) / (len(chosen) + 1)  # the list's mix with each kind of candidate added
        q = (1 - KL_SMOOTHING) * mix + KL_SMOOTHING * p
        kl_with = (p[kept] * np.log(p[kept] / q[:, kept])).sum(axis=1)
        value = (1 - weight) * (mmr_lambda * relevance - (1 - mmr_lambda) * best_sim) - weight * kl_with[column]
        value[chosen] = -np.inf
        pick = int(np.argmax(value))
        chosen.append(pick)
        if column[pick] >= 0:
            counts[column[pick]] += 1
        best_sim = np.maximum(best_sim, vectors @ vectors[pick])
    return chosen


def capped(
    relevance: np.ndarray,
    categories: Sequence[str | None],
    vectors: np.ndarray,
    k: int,
    share: float,
    mmr_lambda: float,
) -> list[int]:
    """MMR over the candidates' CLIP vectors, with at most `share` of the list from any one category."""
    k = min(k, len(relevance))
    cap = max(1, math.ceil(share * k))
    per_category: Counter[str | None] = Counter()
    chosen: list[int] = []
    best_sim = np.full(len(relevance), -np.inf)
    while len(chosen) < k:
        mmr = mmr_lambda * relevance - (1 - mmr_lambda) * np.where(np.isfinite(best_sim), best_sim, 0.0)
        mmr[chosen] = -np.inf
        full = {c for c, n in per_category.items() if n >= cap and c is not None}
        allowed = np.where([c in full for c in categories], -np.inf, mmr)
        pick = int(np.argmax(allowed)) if np.isfinite(allowed).any() else int(np.argmax(mmr))
        chosen.append(pick)
        per_category[categories[pick]] += 1
        best_sim = np.maximum(best_sim, vectors @ vectors[pick])
    return chosen
